"""Which files are the shards: paths/folders/globs -> files, the shard sets a folder holds, and
the manifest beside them (for `inspect`, the reader and the trainer alike)."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace

from tfrec_tools import fs, naming
from tfrec_tools.errors import ShardError
from tfrec_tools.manifest import SUFFIX, Manifest, read_manifest
from tfrec_tools.quiet import import_tensorflow
from tfrec_tools.records import check_frames

SHARD_PATTERNS = ("*.tfrec", "*.tfrecord", "*.tfrecords")
ROLES = ("train", "predict")  # what a folder of several shard sets is asked for
_GLOB_CHARS = "*?["


def is_glob(path: str) -> bool:
    return any(c in path for c in _GLOB_CHARS)


def is_folder(path: str) -> bool:
    """A folder argument (not a glob that happens to name one)."""
    return not is_glob(path) and fs.isdir(path)


@dataclass(frozen=True)
class ShardSet:
    """The shards of one build in a folder (those its manifest lists), or foreign shards that
    share a name prefix (no manifest)."""

    name: str
    folder: str
    files: tuple[str, ...]
    manifest_path: str | None
    labeled: bool | None  # None: foreign shards, unknown
    folds: int

    @property
    def pattern(self) -> str:
        """The glob that names this set alone (quote it in a shell): the name, then the shard
        index's digit, so ``train`` does not also take ``train_b``; the files' own extension."""
        extension = "." + self.files[0].rsplit(".", 1)[-1] if self.files else ".tfrec"
        return fs.join(self.folder, naming.set_glob(self.name, extension))

    def describe(self) -> str:
        kind = {True: "labeled", False: "unlabeled", None: "no manifest"}[self.labeled]
        folds = f", {self.folds} folds" if self.folds else ""
        files = f"{len(self.files)} file{'s' if len(self.files) > 1 else ''}"
        return f"{self.pattern} ({files}, {kind}{folds})"


def resolve_files(
    paths: str | Sequence[str], role: str | None = None, *, check: bool = True
) -> list[str]:
    """Shard files named by ``paths``: files, folders (their ``*.tfrec``/``*.tfrecord(s)``),
    or glob patterns; local or ``gs://``. Sorted, without duplicates. A folder holding several
    shard sets gives the set ``role`` asks for (see ``pick_set``).

    ``check``: walk each file's frame headers before TensorFlow reads it (``check_frames``;
    TensorFlow segfaults on a length it cannot hold), once per file and process: every frame
    of a local file (0.07 s per 300 MB cached, 0.2 s not), the first frame of a remote one
    (TensorFlow reads gs:// in 64 MB blocks: a full walk would download every byte once more).

    Raises:
        ShardError: a path matches nothing, no shard is found at all, a folder holds several
            sets and ``role`` does not pick one, or (``check``) a file's framing is broken.
    """
    tf = import_tensorflow()
    found: list[str] = []
    for path in [paths] if isinstance(paths, str) else list(paths):
        path = str(path)
        if is_glob(path):
            matches = tf.io.gfile.glob(path)
        elif fs.isdir(path):
            matches = list(pick_set(shard_sets(path), role, path).files)
        elif fs.exists(path):
            matches = [path]
        else:
            raise ShardError(f"{path}: no such file or folder")
        if not matches:
            raise ShardError(f"{path}: no shard files (*.tfrec, *.tfrecord) found")
        found.extend(matches)
    files = sorted(set(found))
    for file in files if check else ():
        _check_once(file, fs.size(file), _mtime(file))
    return files


@functools.lru_cache(maxsize=4096)
def _check_once(path: str, size: int, mtime: int | None) -> int:
    """``check_frames`` once per version of a file (the K-fold loop resolves the same files
    once per fold): every frame of a local file, the first of a remote one."""
    return check_frames(path, limit=1 if fs.is_remote(path) else None)


def _mtime(path: str) -> int | None:
    return None if fs.is_remote(path) else os.stat(path).st_mtime_ns


def shard_sets(folder: str) -> list[ShardSet]:
    """The shard sets in ``folder``: one per readable manifest (the files it lists that
    exist), then the other shard files grouped by name prefix. Empty when there is no shard."""
    tf = import_tensorflow()
    files = sorted({m for p in SHARD_PATTERNS for m in tf.io.gfile.glob(fs.join(folder, p))})
    by_name = {naming.base_name(f): f for f in files}
    sets, claimed = [], set()
    for entry in sorted(fs.listdir(folder)):
        if not entry.endswith(SUFFIX):
            continue
        try:
            manifest = read_manifest(fs.join(folder, entry))
        except ShardError:  # a damaged manifest: its shards count as foreign below
            continue
        own = tuple(by_name[s.file] for s in manifest.shards if s.file in by_name)
        claimed.update(own)
        labeled = bool(manifest.labels)
        sets.append(
            ShardSet(manifest.name, folder, own, fs.join(folder, entry), labeled, manifest.folds)
        )
    foreign: dict[str, list[str]] = {}
    for path in (f for f in files if f not in claimed):
        parsed = naming.parse_shard_name(path)
        foreign.setdefault(parsed[0] if parsed else "", []).append(path)
    # Files named like a build but not in its manifest (renamed, copied in) stay with it, so
    # `inspect` reports them there instead of as a second set of the same name.
    sets = [replace(s, files=tuple(sorted(s.files + tuple(foreign.pop(s.name, ()))))) for s in sets]
    sets += [ShardSet(n, folder, tuple(f), None, None, 0) for n, f in sorted(foreign.items())]
    return sorted((s for s in sets if s.files), key=lambda s: (s.labeled is not True, s.name))


def pick_set(sets: list[ShardSet], role: str | None, folder: str) -> ShardSet:
    """The one set of a folder that ``role`` means: "train" the labeled, fold-assigned set
    (else the labeled one, else the one without a manifest); "predict" the unlabeled one.
    A folder with a single set gives it whatever the role.

    Raises:
        ShardError: no set, or several that the role cannot tell apart.
    """
    if not sets:
        raise ShardError(
            one_build_per_size(folder) or f"{folder}: no shard files (*.tfrec, *.tfrecord) found"
        )
    if len(sets) == 1:
        return sets[0]
    if role == "train":
        tiers = ([s for s in sets if s.labeled and s.folds], [s for s in sets if s.labeled])
        tiers += ([s for s in sets if s.labeled is None],)
    elif role == "predict":
        tiers = ([s for s in sets if s.labeled is False], [s for s in sets if not s.labeled])
    else:
        tiers = ()
    for tier in tiers:
        if len(tier) == 1:
            return tier[0]
        if tier:
            break
    listed = "; ".join(s.describe() for s in sets)
    want = {"train": "a labeled set", "predict": "an unlabeled set"}.get(role or "", "one set")
    raise ShardError(
        f"{folder} holds {len(sets)} shard sets: {listed}; pass the glob of {want} "
        f'(quoted), e.g. "{sets[0].pattern}"'
    )


def size_folders(folder: str) -> list[str]:
    """The folders of a pass of several sizes in ``folder`` (``tfrec build --size 256,384``
    writes ``OUT/256/``, ``OUT/384/``): sub-folders named like a size that hold a manifest."""
    if not fs.isdir(folder):
        return []
    found = []
    for entry in fs.listdir(folder):
        path = fs.join(folder, entry)
        is_size = naming.is_size_folder(entry) and fs.isdir(path)
        if is_size and any(n.endswith(SUFFIX) for n in fs.listdir(path)):
            found.append(path)
    return sorted(found, key=lambda p: [int(n) for n in naming.base_name(p).split("x")])


def one_build_per_size(folder: str) -> str | None:
    """The message for a command given the folder of a pass of several sizes instead of one
    of its builds (``OUT holds one build per size (256, 384): pass OUT/256 or OUT/384``)."""
    sizes = size_folders(folder)
    if not sizes:
        return None
    shown = " or ".join(sizes[:3]) + (" ..." if len(sizes) > 3 else "")
    names = ", ".join(map(naming.base_name, sizes))
    return f"{folder} holds one build per size ({names}): pass {shown}"


def find_manifest(files: Sequence[str]) -> str | None:
    """The ``*.manifest.json`` in the shards' folder whose shard list holds every one of the
    files (by base name), or None."""
    folders = {naming.folder_name(f) for f in files}
    if len(folders) != 1:
        return None
    folder = folders.pop()
    names = {naming.base_name(f) for f in files}
    for entry in fs.listdir(folder) if fs.isdir(folder) else []:
        if entry.endswith(SUFFIX):
            try:
                manifest = read_manifest(fs.join(folder, entry))
            except ShardError:  # another set's damaged manifest must not block this one
                continue
            if names <= {s.file for s in manifest.shards}:
                return fs.join(folder, entry)
    return None


def load_manifest(files: Sequence[str], manifest: str | Manifest | None = None) -> Manifest | None:
    """The manifest given (path or object), else the one found beside the files, else None."""
    if isinstance(manifest, Manifest):
        return manifest
    path = manifest or find_manifest(files)
    return read_manifest(path) if path else None
