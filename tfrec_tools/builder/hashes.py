"""The end of a build's hashing: the ``{name}.hashes.csv`` sidecar (every stored image's
perceptual hash and sha256, in shard and record order) and the duplicate groups it shows,
listed in ``{name}.duplicates.csv``: a warning for the build, never a failure."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from tfrec_tools import fs, naming
from tfrec_tools.builder.write import ShardResult
from tfrec_tools.duplicates import DEFAULT_DISTANCE, Item, duplicates_csv, find_groups, summary
from tfrec_tools.phash import HashRow, hashes_csv


@dataclass(frozen=True)
class DuplicateReport:
    summary: str  # one line (``duplicates.summary``)
    path: str | None  # the groups, listed; None when there are none
    across_folds: int  # groups whose images sit in different folds (leakage)


def write_hashes(out: str, name: str, results: list[ShardResult]) -> tuple[str, str]:
    """Write the hashes sidecar of the shards ``results`` (in index order): (base name,
    sha256 of its bytes), for the manifest."""
    data = hashes_csv([row for r in results for row in _rows(r)])
    path = fs.join(out, naming.hashes_name(name))
    fs.write_bytes_atomic(path, data)
    return naming.base_name(path), hashlib.sha256(data).hexdigest()


def report_duplicates(out: str, name: str, results: list[ShardResult]) -> DuplicateReport:
    """Find the exact and near-duplicate groups of the build (``DEFAULT_DISTANCE`` bits) and
    list them in ``{name}.duplicates.csv`` when there are any."""
    items = [
        Item(name, row.image_id, row.shard, r.entry.fold, row.phash, row.sha256)
        for r in results
        for row in _rows(r)
    ]
    groups = find_groups(items, DEFAULT_DISTANCE)
    path = None
    if groups:
        path = fs.join(out, naming.duplicates_name(name))
        fs.write_bytes_atomic(path, duplicates_csv(groups))
    leaks = sum(1 for g in groups if g.scope == "across folds")
    return DuplicateReport(summary(groups), path, leaks)


def _rows(result: ShardResult) -> tuple[HashRow, ...]:
    assert result.hashes is not None, "output.verified rewrites shards recorded without hashes"
    return result.hashes
