"""Every difference between the shards and their manifest: schema, counts, sizes and hashes,
and files it lists that are missing."""

from __future__ import annotations

from collections.abc import Sequence

from tfrec_tools import fs, naming
from tfrec_tools.manifest import Manifest
from tfrec_tools.validate.report import FileReport, InspectReport


def check_manifest(report: InspectReport, manifest: Manifest, files: Sequence[str]) -> None:
    """Keys and kinds, then each listed shard: its count, size and sha256, or its absence."""
    where = report.manifest_path or "the manifest"
    observed = {k: (v["kind"], v["length"]) for k, v in report.schema.items()}
    expected = {s.name: (s.dtype, s.shape[0] if s.shape else 1) for s in manifest.schema.features}
    for key in sorted(set(observed) | set(expected)):
        if observed.get(key) != expected.get(key):
            report.problems.append(
                f"key {key!r}: {where} says {_kind_text(expected.get(key))}, the shards hold "
                f"{_kind_text(observed.get(key))}"
            )
    by_name = {naming.base_name(f.path): f for f in report.files}
    folder = naming.folder_name(files[0])
    for entry in manifest.shards:
        file = by_name.get(entry.file)
        if file is not None:
            _check_entry(report, entry, file, where)
        elif not fs.exists(fs.join(folder, entry.file)):
            report.problems.append(f"{fs.join(folder, entry.file)}: listed in {where} but missing")


def _check_entry(report: InspectReport, entry, file: FileReport, where: str) -> None:
    if entry.count != file.records and not file.damaged:  # its count is unknown
        report.problems.append(
            f"{file.path}: {where} says {entry.count} records, the file holds {file.records}"
        )
    if entry.bytes != file.bytes or entry.sha256 != fs.sha256(file.path):
        report.problems.append(
            f"{file.path}: size or sha256 differs from {where}: the file changed after the build"
        )


def _kind_text(kind: tuple[str, int] | None) -> str:
    return "nothing" if kind is None else f"{kind[0]} x{kind[1]}"
