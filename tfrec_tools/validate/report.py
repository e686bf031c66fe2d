"""What `tfrec inspect` reports: the options of a check, one file's counts, the whole report."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class InspectConfig:
    """What to check beyond the always-on scan."""

    deep: bool = False  # decode every image (slower)
    manifest: str | None = None  # None: the one beside the shards, if any
    label_key: str | None = None  # None: from the manifest, else record_keys.guess_key
    id_key: str | None = None
    group_key: str | None = None
    image_key: str | None = None


@dataclass
class FileReport:
    path: str
    name_count: int | None
    records: int = 0
    bytes: int = 0
    folds: list[int] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)  # label value (tag) -> records
    image_shapes: dict[str, int] = field(default_factory=dict)  # "HxWxC" -> records (--deep)
    damaged: bool = False  # a record could not be read: ``records`` counts those before it


@dataclass
class InspectReport:
    files: list[FileReport]
    schema: dict[str, dict[str, Any]]  # key -> kind, length, example
    keys: dict[str, str | None]  # role -> key used (image, id, label, group)
    manifest_path: str | None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    class_names: dict[int, str] = field(default_factory=dict)  # label value -> class name
    multi_label: bool = False  # the label is multi-hot: ``labels`` count records per tag

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def records(self) -> int:
        return sum(f.records for f in self.files)

    @property
    def name_total(self) -> int | None:
        """count_data_items over the set; None when some name states no count."""
        counts = [f.name_count for f in self.files]
        return None if None in counts else sum(counts)

    def fold_table(self) -> dict[str, dict[str, int]]:
        """Fold (or "-" when unknown) -> label value (or tag) -> records."""
        table: dict[str, Counter] = defaultdict(Counter)
        for report in self.files:
            table[_fold_of(report)].update(report.labels)
        return {fold: dict(sorted(c.items())) for fold, c in sorted(table.items())}

    def fold_records(self) -> dict[str, int]:
        """Fold (or "-" when unknown) -> records."""
        counts: Counter = Counter()
        for report in self.files:
            counts[_fold_of(report)] += report.records
        return dict(sorted(counts.items()))

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "name_total": self.name_total,
            "manifest": self.manifest_path,
            "keys": self.keys,
            "schema": self.schema,
            "files": [vars(f) for f in self.files],
            "folds": self.fold_table(),
            "multi_label": self.multi_label,
            "problems": self.problems,
            "notes": self.notes,
        }


def _fold_of(report: FileReport) -> str:
    return str(report.folds[0]) if len(report.folds) == 1 else "-"
