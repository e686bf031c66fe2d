"""The order of an inspection: find the shards and their manifest, resolve the keys, scan every
record, then check names, keys, data, the manifest, record indexes and leftovers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tfrec_tools.errors import ShardError
from tfrec_tools.manifest import Manifest, read_manifest
from tfrec_tools.record_keys import first_features, guess_key
from tfrec_tools.records import feature_values, iter_frames
from tfrec_tools.schema import FOLD
from tfrec_tools.shard_files import find_manifest, resolve_files
from tfrec_tools.validate.checks import check_indexes, check_keys, check_leftovers, check_names
from tfrec_tools.validate.manifest_diff import check_manifest
from tfrec_tools.validate.report import InspectConfig, InspectReport
from tfrec_tools.validate.scan import Scan, kind_of


def inspect_shards(
    paths: str | Sequence[str], config: InspectConfig | None = None
) -> InspectReport:
    """Scan every record of the shards named by ``paths`` (files, folders, globs).

    Raises:
        ShardError: no shard found, or the manifest given cannot be read.
    """
    config = config or InspectConfig()
    files = resolve_files(paths, check=False)  # a broken file is a problem line, below
    manifest_path = config.manifest or find_manifest(files)
    manifest = read_manifest(manifest_path) if manifest_path else None
    framing: list[str] = []
    sound = {path: _sound_records(path, framing) for path in files}
    schema = _first_schema([path for path in files if sound[path] != 0])
    keys = _resolve_keys(config, manifest, schema)
    scan = Scan(keys, manifest, config.deep)
    reports = [scan.file(path, sound[path]) for path in files]
    report = InspectReport(
        reports,
        schema,
        keys,
        manifest_path,
        problems=framing + scan.problems,
        class_names=scan.classes,
        multi_label=scan.multi_hot,
    )
    check_names(report)
    check_keys(config, manifest, files, report)
    scan.check_data(report)
    if manifest:
        check_manifest(report, manifest, files)
    check_indexes(files, manifest, {p for p in files if sound[p] is None}, report)
    check_leftovers(files, report)
    return report


def _sound_records(path: str, problems: list[str]) -> int | None:
    """None when every frame of ``path`` is sound; else the records before the first broken
    one (the only ones TensorFlow may read), the break noted in ``problems``."""
    count = 0
    try:
        for _ in iter_frames(path):
            count += 1
    except ShardError as err:
        problems.append(str(err))
        return count
    return None


def _first_schema(files: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The keys of the first record of the first readable file that holds one."""
    for path in files:
        try:
            features = first_features(path)
        except ShardError:  # reported by the scan, record by record
            continue
        if features is not None:
            return {k: _describe(f) for k, f in sorted(features.items())}
    return {}


def _describe(feature) -> dict[str, Any]:
    values = list(feature_values(feature))
    example = values[0] if values else None
    if isinstance(example, bytes):
        example = _show_bytes(example)
    return {"kind": kind_of(feature), "length": len(values), "example": example}


def _show_bytes(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return f"<{len(data)} bytes: {data[:4].hex()}...>"
    return text if len(text) <= 40 else f"<{len(data)} bytes of text>"


def _resolve_keys(
    config: InspectConfig, manifest: Manifest | None, schema: dict[str, dict[str, Any]]
) -> dict[str, str | None]:
    kinds = {key: spec["kind"] for key, spec in schema.items()}

    def pick(given: str | None, ours: str | None, role: str | None) -> str | None:
        """The key given, else ours (from the manifest), else the guess for ``role``."""
        return given or ours or (guess_key(role, kinds) if role else None)

    ours_label = manifest.labels[0].name if manifest and manifest.labels else None
    ours_group = manifest.group_col if manifest and manifest.group_col in schema else None
    return {
        "image": pick(config.image_key, "image" if manifest else None, "image"),
        "id": pick(config.id_key, "image_id" if manifest else None, "id"),
        "label": pick(config.label_key, ours_label, None if manifest else "label"),
        "group": pick(config.group_key, ours_group, "group"),
        "fold": FOLD if FOLD in schema else None,
    }
