"""Finding shards and what describes them: paths/folders/globs -> files, the manifest beside
them, or (foreign shards) a schema probed from their first record."""

from __future__ import annotations

from collections.abc import Sequence

from tfrec_tools import fs, naming
from tfrec_tools.errors import ShardError
from tfrec_tools.manifest import SUFFIX, Manifest, read_manifest
from tfrec_tools.quiet import import_tensorflow, tf_error_text
from tfrec_tools.schema import FeatureSpec, Schema

SHARD_PATTERNS = ("*.tfrec", "*.tfrecord", "*.tfrecords")
_GLOB_CHARS = "*?["


def resolve_files(paths: str | Sequence[str]) -> list[str]:
    """Shard files named by ``paths``: files, folders (their ``*.tfrec``/``*.tfrecord(s)``),
    or glob patterns; local or ``gs://``. Sorted, without duplicates.

    Raises:
        ShardError: a path matches nothing, or no shard is found at all.
    """
    tf = import_tensorflow()
    found: list[str] = []
    for path in [paths] if isinstance(paths, str) else list(paths):
        path = str(path)
        if any(c in path for c in _GLOB_CHARS):
            matches = tf.io.gfile.glob(path)
        elif fs.isdir(path):
            matches = [m for p in SHARD_PATTERNS for m in tf.io.gfile.glob(fs.join(path, p))]
        elif fs.exists(path):
            matches = [path]
        else:
            raise ShardError(f"{path}: no such file or folder")
        if not matches:
            raise ShardError(f"{path}: no shard files (*.tfrec, *.tfrecord) found")
        found.extend(matches)
    return sorted(set(found))


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


def probe_schema(path: str) -> Schema:
    """The keys and kinds of the first record of a shard (for shards with no manifest)."""
    tf = import_tensorflow()
    try:
        raw = next(iter(tf.data.TFRecordDataset(path).take(1)), None)
    except tf.errors.OpError as err:
        raise ShardError(f"{path}: cannot read a record ({tf_error_text(err)})") from err
    if raw is None:
        raise ShardError(f"{path}: the file holds no record")
    example = tf.train.Example.FromString(raw.numpy())
    kinds = {"bytes_list": "bytes", "int64_list": "int64", "float_list": "float"}
    specs = []
    for key in sorted(example.features.feature):
        feature = example.features.feature[key]
        kind = feature.WhichOneof("kind")
        if kind is None:
            continue
        length = len(getattr(feature, kind).value)
        specs.append(FeatureSpec(key, kinds[kind], () if length == 1 else (length,)))
    return Schema(tuple(specs))
