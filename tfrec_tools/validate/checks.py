"""Checks beside the record scan: counts stated by file names, keys asked for that the records
lack, record index files against their shards, and leftovers of interrupted builds."""

from __future__ import annotations

from collections.abc import Sequence

from tfrec_tools import fs, naming
from tfrec_tools.index import index_problem
from tfrec_tools.manifest import SUFFIX as MANIFEST_SUFFIX
from tfrec_tools.manifest import Manifest
from tfrec_tools.validate.report import InspectConfig, InspectReport


def check_keys(
    config: InspectConfig, manifest: Manifest | None, files: Sequence[str], report: InspectReport
) -> None:
    """Keys asked for that the records lack; what the absence of a manifest or group means."""
    given = {
        "--image-key": config.image_key,
        "--id-key": config.id_key,
        "--label-key": config.label_key,
        "--group-key": config.group_key,
    }
    for option, key in given.items():
        if key and key not in report.schema:
            report.problems.append(
                f"{option} {key!r}: the records have no such key; they hold "
                f"{', '.join(report.schema)}"
            )
    if manifest and manifest.group_col and manifest.group_col not in report.schema:
        report.notes.append(
            f"groups ({manifest.group_col}) are not stored in the records, so leakage across "
            "folds is not re-checked here (the build kept each group in one shard); add "
            f"--feature-col {manifest.group_col} to the build to store them"
        )
    if manifest is None:
        folder = naming.folder_name(files[0])
        others = [e for e in fs.listdir(folder) if e.endswith(MANIFEST_SUFFIX)]
        if others:
            report.notes.append(
                f"no manifest beside the shards lists all of them ({', '.join(others)} there "
                "does not): renamed or foreign files? pass --manifest to compare anyway"
            )


def check_names(report: InspectReport) -> None:
    """Names that state no record count, or another count than the file holds."""
    for file in report.files:
        if file.name_count is None:
            report.problems.append(
                f"{file.path}: the name states no record count (expected '<name>-<count>.tfrec'), "
                f"so count_data_items cannot use it; it holds {file.records} records"
            )
        elif file.name_count != file.records and not file.damaged:  # reported as such
            report.problems.append(
                f"{file.path}: the name says {file.name_count} records, the file holds "
                f"{file.records}"
            )


def check_indexes(
    files: Sequence[str], manifest: Manifest | None, sound: set[str], report: InspectReport
) -> None:
    """Each index beside a shard whose framing is ``sound``, against its frames; an index the
    manifest lists that is missing; a note on shards without one (not a fault)."""
    listed = {s.file for s in manifest.shards if s.index_file} if manifest else set()
    bare = []
    for path in files:
        index = naming.index_name(path)
        if fs.exists(index):
            problem = index_problem(path, index) if path in sound else None  # else: reported
            if problem:
                report.problems.append(problem)
        elif naming.base_name(path) in listed:
            report.problems.append(
                f"{index}: listed in {report.manifest_path} but missing; write it with "
                f"`tfrec index {path}`"
            )
        else:
            bare.append(path)
    if bare:
        report.notes.append(
            f"{len(bare)} of {len(files)} files have no record index (FILE.idx, which DALI and "
            "the tfrecord package read); `tfrec index` writes them"
        )


def check_leftovers(files: Sequence[str], report: InspectReport) -> None:
    """Partial shards and state folders of interrupted builds beside the files: those of the
    builds the files' names belong to (all of them for foreign names)."""
    names = {parsed[0] for parsed in map(naming.parse_shard_name, files) if parsed}
    for folder in sorted({naming.folder_name(f) for f in files}):
        for entry in fs.listdir(folder):
            leftover = entry.endswith(naming.PARTIAL_SUFFIX) or naming.is_state_dir(entry)
            if leftover and _belongs(entry, names):
                report.problems.append(
                    f"{fs.join(folder, entry)}: left over from an interrupted build; finish it "
                    "with `tfrec build ... --resume` or rebuild with --overwrite"
                )


def _belongs(entry: str, names: set[str]) -> bool:
    if not names:
        return True
    return any(naming.is_partial_of(entry, n) or entry == naming.state_dir_name(n) for n in names)
