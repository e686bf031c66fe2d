"""What the loader reads: the shards (a manifest, a folder, files or globs; local only), the
folds chosen, each record's place, and the record keys (from the manifest, given, or guessed
for foreign shards as ``tfrec inspect`` guesses them), checked on each shard's first record."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from tfrec_tools import fs, schema
from tfrec_tools.errors import ConfigError, ShardError
from tfrec_tools.loader.example import Features, decode_example
from tfrec_tools.loader.offsets import RecordReader, record_offsets
from tfrec_tools.manifest import SUFFIX, Manifest, read_manifest
from tfrec_tools.record_keys import GUESSES, guess_key
from tfrec_tools.shard_files import SHARD_PATTERNS, find_manifest

_FIELD = {"image": "image", "id": "id", "label": "labels"}  # role -> its field of Keys


@dataclass(frozen=True)
class Keys:
    """The record keys to read: the encoded image, the id, the labels (empty: unlabeled) and
    the tabular features."""

    image: str = schema.IMAGE
    id: str = schema.IMAGE_ID
    labels: tuple[str, ...] = ()
    features: tuple[str, ...] = ()


@dataclass(frozen=True)
class Shards:
    """The files read, each record's frame offset and length, and the keys."""

    files: tuple[str, ...]
    offsets: tuple[np.ndarray, ...]
    lengths: tuple[np.ndarray, ...]
    keys: Keys
    manifest: Manifest | None

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Each key's shape, as the manifest states it ({} for foreign shards)."""
        features = self.manifest.schema.features if self.manifest else ()
        return {spec.name: spec.shape for spec in features}

    @property
    def counts(self) -> list[int]:
        return [len(o) for o in self.offsets]


def open_shards(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    folds: Sequence[int] | None = None,
    keys: Keys | None = None,
    labeled: bool = True,
) -> Shards:
    """The shards of ``source``: a ``*.manifest.json``, a folder holding one manifest (else its
    shard files), or shard files and globs (the manifest beside them is used when it lists
    them all). ``folds`` keeps the shards of those folds (a manifest is needed).

    Raises:
        ConfigError: a remote path, folds without a manifest or outside it, given keys that
            the records lack.
        ShardError: nothing to read, a shard missing or not matching its manifest or index,
            records without the id (or, when ``labeled``, a label).
    """
    manifest_path, files = _locate(source)
    manifest = read_manifest(manifest_path) if manifest_path else None
    if manifest is not None:
        files = _manifest_files(manifest, manifest_path, files, folds)
    elif folds is not None:
        raise ConfigError(
            f"{files[0]}: `folds` needs the shards' manifest, and none lists these files. "
            f"Received: folds={list(folds)}; pass folds=None"
        )
    places = [record_offsets(f) for f in files]
    for file, (offsets, _) in zip(files, places):
        _check_count(file, len(offsets), manifest)
    offsets, lengths = tuple(p[0] for p in places), tuple(p[1] for p in places)
    shards = Shards(tuple(files), offsets, lengths, Keys(), manifest)
    chosen = keys or _keys(shards, manifest_path, labeled=labeled)
    _check_first_records(shards, chosen, given=keys is not None)
    return replace(shards, keys=chosen)


def _locate(source) -> tuple[str | None, list[str]]:
    """The manifest (or None) and the shard files ``source`` names."""
    paths = [os.fspath(source)] if isinstance(source, (str, os.PathLike)) else source
    paths = [os.fspath(p) for p in paths]
    remote = [p for p in paths if fs.is_remote(p)]
    if remote:
        raise ConfigError(
            f"{remote[0]}: the loader reads local files; copy the shards to a local disk "
            "(or mount the bucket, e.g. with gcsfuse)"
        )
    if len(paths) == 1 and paths[0].endswith(SUFFIX):
        return paths[0], []
    if len(paths) == 1 and os.path.isdir(paths[0]):
        return _in_folder(paths[0])
    files = set()
    for path in paths:
        matches = glob.glob(path) if glob.has_magic(path) else [path]
        if not matches or not all(os.path.isfile(m) for m in matches):
            raise ShardError(f"{path}: {'no file matches' if not matches else 'no such file'}")
        files.update(matches)
    return find_manifest(sorted(files)), sorted(files)


def _in_folder(folder: str) -> tuple[str | None, list[str]]:
    manifests = sorted(glob.glob(os.path.join(glob.escape(folder), "*" + SUFFIX)))
    if len(manifests) > 1:
        names = ", ".join(os.path.basename(m) for m in manifests)
        raise ConfigError(
            f"{folder} holds {len(manifests)} manifests ({names}); pass one of them, e.g. "
            f"{manifests[0]}"
        )
    if manifests:
        return manifests[0], []
    pattern = os.path.join(glob.escape(folder), "{}")
    files = sorted(f for p in SHARD_PATTERNS for f in glob.glob(pattern.format(p)))
    if not files:
        raise ShardError(f"{folder}: no manifest and no shard files (*.tfrec, *.tfrecord)")
    return None, files


def _manifest_files(
    manifest: Manifest, path: str, files: list[str], folds: Sequence[int] | None
) -> list[str]:
    known = sorted({s.fold for s in manifest.shards if s.fold is not None})
    if folds is not None and (not folds or not set(folds) <= set(known)):
        raise ConfigError(
            f"{path}: `folds` must be among the build's folds {known}. Received: "
            f"folds={list(folds)}"
        )
    chosen = manifest.files(
        os.path.dirname(path) or ".", folds=None if folds is None else tuple(folds)
    )
    if files:  # files named by the caller: those, in the folds asked for
        names = {os.path.basename(f) for f in chosen}
        chosen = [f for f in files if os.path.basename(f) in names]
    missing = [f for f in chosen if not os.path.isfile(f)]
    if missing:
        raise ShardError(f"{missing[0]}: listed in {path} but missing; copy it again or rebuild")
    return chosen


def _check_count(file: str, count: int, manifest: Manifest | None) -> None:
    entry = manifest and next(
        (s for s in manifest.shards if s.file == os.path.basename(file)), None
    )
    if entry and entry.count != count:
        raise ShardError(
            f"{file}: {count} records, its manifest says {entry.count}; rebuild the shards"
        )


def _keys(shards: Shards, manifest_path: str | None, *, labeled: bool) -> Keys:
    manifest = shards.manifest
    if manifest is None:
        return _guessed_keys(shards, labeled=labeled)
    labels = tuple(label.name for label in manifest.labels)
    if labeled and not labels:
        raise ShardError(
            f"{manifest_path}: the build has no label column (an unlabeled set); pass "
            "labeled=False to read images and ids"
        )
    features = tuple(column.name for column in manifest.features)
    return Keys(labels=labels if labeled else (), features=features)


def _guessed_keys(shards: Shards, *, labeled: bool) -> Keys:
    """Foreign shards: the keys guessed from the first record, as `tfrec inspect` does."""
    file = next((i for i, count in enumerate(shards.counts) if count), 0)
    path = shards.files[file]
    kinds = {k: kind for k, (kind, _) in first_record(shards, file).items() if kind}
    roles = ("image", "id", "label") if labeled else ("image", "id")
    found = {role: guess_key(role, kinds) for role in roles}
    for role, key in found.items():
        if key is None:
            names, dtypes = GUESSES[role]
            unlabeled = " or pass labeled=False" if role == "label" else ""
            raise ShardError(
                f"{path}: the records have no {role} key (looked for a {' or '.join(dtypes)} "
                f"key named one of {', '.join(names)}; they hold: "
                f"{', '.join(sorted(kinds)) or 'nothing'}); name it with Keys({_FIELD[role]}=...)"
                f"{unlabeled}"
            )
    labels = (found["label"],) if labeled else ()
    return Keys(found["image"], found["id"], labels)  # type: ignore[arg-type]


def first_record(shards: Shards, file: int) -> Features:
    """The features of the first record of ``shards.files[file]`` ({} when it holds none)."""
    if not len(shards.offsets[file]):
        return {}
    path = shards.files[file]
    where = f"{path}: record 0"
    payload = RecordReader().read(
        path, int(shards.offsets[file][0]), int(shards.lengths[file][0]), where
    )
    return decode_example(payload, where)


def _check_first_records(shards: Shards, keys: Keys, *, given: bool) -> None:
    """Every shard's first record holds the keys, the image as bytes."""
    error = ConfigError if given else ShardError
    names = (keys.image, keys.id, *keys.labels, *keys.features)
    for file, path in enumerate(shards.files):
        features = first_record(shards, file)
        if not features:
            continue
        missing = [n for n in names if n not in features]
        if missing or features[keys.image][0] != "bytes":
            held = ", ".join(f"{k} ({kind})" for k, (kind, _) in sorted(features.items()))
            what = f"no key {missing[0]!r}" if missing else f"image key {keys.image!r} not bytes"
            raise error(f"{path}: record 0 has {what} (it holds: {held})")
