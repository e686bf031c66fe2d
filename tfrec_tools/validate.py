"""`tfrec inspect`: check any set of shards (ours or foreign) before spending TPU hours on it.

Scans every record once: counts vs file names, schema consistency, CRC/truncation, label
distribution per shard and fold (classes, or each tag of a multi-hot label), duplicate ids,
groups that cross folds, identical images under different ids, leftovers of interrupted
builds, and every difference from the manifest.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tfrec_tools import fs, naming
from tfrec_tools.manifest import SUFFIX as MANIFEST_SUFFIX
from tfrec_tools.manifest import Manifest, read_manifest
from tfrec_tools.quiet import import_tensorflow, tf_error_text
from tfrec_tools.read.files import find_manifest, resolve_files
from tfrec_tools.schema import FOLD

ID_GUESSES = ("image_id", "image_name", "id", "filename", "name")
LABEL_GUESSES = ("label", "target", "class", "labels", "category")
GROUP_GUESSES = ("patient_id", "group", "group_id", "subject_id")
IMAGE_GUESSES = ("image", "image_raw", "img", "image/encoded", "jpeg")
_KINDS = {"bytes_list": "bytes", "int64_list": "int64", "float_list": "float"}
_SHOWN = 5  # examples listed per problem


@dataclass(frozen=True)
class InspectConfig:
    """What to check beyond the always-on scan."""

    deep: bool = False  # decode every image (slower)
    manifest: str | None = None  # None: the one beside the shards, if any
    label_key: str | None = None  # None: from the manifest, else the first of LABEL_GUESSES
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


def inspect_shards(
    paths: str | Sequence[str], config: InspectConfig | None = None
) -> InspectReport:
    """Scan every record of the shards named by ``paths`` (files, folders, globs).

    Raises:
        ShardError: no shard found, or the manifest given cannot be read.
    """
    config = config or InspectConfig()
    files = resolve_files(paths)
    manifest_path = config.manifest or find_manifest(files)
    manifest = read_manifest(manifest_path) if manifest_path else None
    schema = _first_schema(files)
    keys = _resolve_keys(config, manifest, schema)
    scan = _Scan(keys, manifest, config.deep)
    reports = [scan.file(path) for path in files]
    report = InspectReport(
        reports,
        schema,
        keys,
        manifest_path,
        problems=scan.problems,
        class_names=scan.classes,
        multi_label=scan.multi_hot,
    )
    _check_names(report)
    _check_keys(config, manifest, files, report)
    scan.check_data(report)
    if manifest:
        _check_manifest(report, manifest, files)
    _check_leftovers(files, report)
    return report


def _get(features, key: str | None, default: Any = None) -> Any:
    """The first value under ``key`` in a record's feature map, else ``default``."""
    if key is None or key not in features:
        return default
    value = _value(features[key])
    return default if value is None else value


def _value(feature) -> Any:
    """The first value of a tf.train.Feature (None when empty)."""
    values = _values(feature)
    return values[0] if len(values) else None


def _values(feature) -> Any:
    """Every value of a tf.train.Feature (a protobuf repeated field; empty when none)."""
    kind = feature.WhichOneof("kind")
    return getattr(feature, kind).value if kind else []


def _fold_of(report: FileReport) -> str:
    return str(report.folds[0]) if len(report.folds) == 1 else "-"


def _first_schema(files: Sequence[str]) -> dict[str, dict[str, Any]]:
    tf = import_tensorflow()
    for path in files:
        try:
            raw = next(iter(tf.data.TFRecordDataset(path).take(1)), None)
        except tf.errors.OpError:
            continue
        if raw is not None:
            example = tf.train.Example.FromString(raw.numpy())
            return {k: _describe(f) for k, f in sorted(example.features.feature.items())}
    return {}


def _describe(feature) -> dict[str, Any]:
    kind = feature.WhichOneof("kind")
    values = list(getattr(feature, kind).value) if kind else []
    example = values[0] if values else None
    if isinstance(example, bytes):
        example = _show_bytes(example)
    return {"kind": _KINDS.get(kind, "empty"), "length": len(values), "example": example}


def _show_bytes(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return f"<{len(data)} bytes: {data[:4].hex()}...>"
    return text if len(text) <= 40 else f"<{len(data)} bytes of text>"


def _resolve_keys(
    config: InspectConfig, manifest: Manifest | None, schema: dict[str, dict[str, Any]]
) -> dict[str, str | None]:
    def pick(given: str | None, ours: str | None, guesses: Sequence[str]) -> str | None:
        if given:
            return given
        if ours:
            return ours
        return next((g for g in guesses if g in schema), None)

    ours_label = manifest.labels[0].name if manifest and manifest.labels else None
    ours_group = manifest.group_col if manifest and manifest.group_col in schema else None
    return {
        "image": pick(config.image_key, "image" if manifest else None, IMAGE_GUESSES),
        "id": pick(config.id_key, "image_id" if manifest else None, ID_GUESSES),
        "label": pick(config.label_key, ours_label, () if manifest else LABEL_GUESSES),
        "group": pick(config.group_key, ours_group, GROUP_GUESSES),
        "fold": FOLD if FOLD in schema else None,
    }


class _Scan:
    """Accumulates what one pass over every record shows."""

    def __init__(self, keys: dict[str, str | None], manifest: Manifest | None, deep: bool):
        self.keys, self.deep = keys, deep
        self.classes = _class_names(manifest, keys["label"])
        self.multi_hot = _label_kind(manifest, keys["label"]) == "multilabel"
        self.shard_folds = {s.file: s.fold for s in manifest.shards} if manifest else {}
        self.problems: list[str] = []
        self.first_signature: tuple | None = None
        self.id_files: dict[str, list[str]] = defaultdict(list)
        self.image_ids: dict[bytes, tuple[str, int | None]] = {}
        self.copies: list[tuple[str, str, int | None, int | None]] = []
        self.group_folds: dict[Any, set] = defaultdict(set)
        self.undecodable: list[str] = []

    def file(self, path: str) -> FileReport:
        tf = import_tensorflow()
        report = FileReport(path, naming.parse_count(path), bytes=fs.size(path))
        folds, labels, shapes = Counter(), Counter(), Counter()
        default_fold = self.shard_folds.get(naming.base_name(path))
        mismatched = 0
        try:
            for raw in tf.data.TFRecordDataset(path):
                example = tf.train.Example.FromString(raw.numpy())
                features = example.features.feature
                mismatched += self._differs(features)
                fold = self._record(path, report.records, features, default_fold, labels, shapes)
                folds[fold] += 1
                report.records += 1
        except (tf.errors.OpError, ValueError) as err:
            self.problems.append(
                f"{path}: record {report.records}: cannot be read ({_first_line(err)}); the file "
                "is corrupted or cut short: rebuild it"
            )
        if mismatched:
            self.problems.append(
                f"{path}: {mismatched} records have other keys or types than the first record "
                f"of the set ({', '.join(k for k, _, _ in self.first_signature)})"
            )
        report.folds = sorted(f for f in folds if f is not None)
        report.labels = {str(k): v for k, v in sorted(labels.items(), key=lambda kv: str(kv[0]))}
        report.image_shapes = dict(shapes)
        return report

    def _differs(self, features) -> bool:
        """Whether this record's keys, kinds or lengths differ from the set's first record."""
        signature = tuple(sorted((k, _kind(f), _length(f)) for k, f in features.items()))
        if self.first_signature is None:
            self.first_signature = signature
        return signature != self.first_signature

    def _record(self, path, index, features, default_fold, labels, shapes) -> int | None:
        keys = self.keys
        fold = _get(features, keys["fold"])
        fold = default_fold if fold is None else fold
        image_id = _text(_get(features, keys["id"], f"{naming.base_name(path)}#{index}"))
        if keys["id"] is not None:
            self.id_files[image_id].append(naming.base_name(path))
        self._count_label(features, labels)
        group = _get(features, keys["group"])
        if group is not None:
            self.group_folds[group].add(fold)
        image = _get(features, keys["image"])
        if image is not None:
            self._image(path, index, image_id, fold, image, shapes)
        return fold

    def _count_label(self, features, labels: Counter) -> None:
        """The record's class (or value); for a multi-hot label, each of its tags."""
        if self.multi_hot:
            hot = _values(features[self.keys["label"]]) if self.keys["label"] in features else []
            labels.update(self.classes.get(i, i) for i, value in enumerate(hot) if value)
            return
        label = _get(features, self.keys["label"])
        if label is not None:
            labels[self.classes.get(label, label)] += 1

    def _image(self, path, index, image_id, fold, image: bytes, shapes: Counter) -> None:
        digest = hashlib.sha1(image).digest()
        owner = self.image_ids.setdefault(digest, (image_id, fold))
        if owner[0] != image_id:
            self.copies.append((owner[0], image_id, owner[1], fold))
        if self.deep:
            shape = _decoded_shape(image)
            if shape is None:
                self.undecodable.append(f"{naming.base_name(path)} record {index} ({image_id})")
            else:
                shapes[shape] += 1

    def check_data(self, report: InspectReport) -> None:
        duplicates = {i: f for i, f in self.id_files.items() if len(f) > 1}
        if duplicates:
            report.problems.append(
                f"{len(duplicates)} ids appear more than once, e.g. {_examples(duplicates)}"
            )
        crossing = {g: sorted(f) for g, f in self.group_folds.items() if len(f - {None}) > 1}
        if crossing:
            report.problems.append(
                f"{len(crossing)} groups ({self.keys['group']}) cross folds (leakage), e.g. "
                f"{_examples(crossing)}"
            )
        leaks = [c for c in self.copies if c[2] != c[3]]
        if leaks:
            shown = ", ".join(
                f"{a} (fold {fa}) = {b} (fold {fb})" for a, b, fa, fb in leaks[:_SHOWN]
            )
            report.problems.append(
                f"{len(leaks)} images appear under different ids in different folds, e.g. {shown}"
            )
        same_fold = len(self.copies) - len(leaks)
        if same_fold:
            report.notes.append(f"{same_fold} images appear twice under different ids (same fold)")
        if self.undecodable:
            report.problems.append(
                f"{len(self.undecodable)} images cannot be decoded, e.g. "
                f"{', '.join(self.undecodable[:_SHOWN])}"
            )


def _kind(feature) -> str:
    return _KINDS.get(feature.WhichOneof("kind"), "empty")


def _length(feature) -> int:
    kind = feature.WhichOneof("kind")
    return len(getattr(feature, kind).value) if kind else 0


def _class_names(manifest: Manifest | None, label_key: str | None) -> dict[int, str]:
    """Class (or tag) index -> name, from the manifest's label under ``label_key``."""
    for spec in manifest.labels if manifest else ():
        if spec.name == label_key and spec.kind != "regression":
            return dict(enumerate(spec.classes))
    return {}


def _label_kind(manifest: Manifest | None, label_key: str | None) -> str | None:
    specs = [s for s in manifest.labels if s.name == label_key] if manifest else []
    return specs[0].kind if specs else None


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _first_line(err: Exception) -> str:
    return tf_error_text(err)


def _examples(mapping: dict) -> str:
    shown = [
        f"{key} ({', '.join(map(str, where))})" for key, where in list(mapping.items())[:_SHOWN]
    ]
    return ", ".join(shown)


def _decoded_shape(image: bytes) -> str | None:
    tf = import_tensorflow()
    try:
        decoded = tf.io.decode_image(image, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError):
        return None
    return "x".join(str(d) for d in decoded.shape)


def _check_keys(
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


def _check_names(report: InspectReport) -> None:
    for file in report.files:
        if file.name_count is None:
            report.problems.append(
                f"{file.path}: the name states no record count (expected '<name>-<count>.tfrec'), "
                f"so count_data_items cannot use it; it holds {file.records} records"
            )
        elif file.name_count != file.records:
            report.problems.append(
                f"{file.path}: the name says {file.name_count} records, the file holds "
                f"{file.records}"
            )


def _check_manifest(report: InspectReport, manifest: Manifest, files: Sequence[str]) -> None:
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
    if entry.count != file.records:
        report.problems.append(
            f"{file.path}: {where} says {entry.count} records, the file holds {file.records}"
        )
    if entry.bytes != file.bytes or entry.sha256 != fs.sha256(file.path):
        report.problems.append(
            f"{file.path}: size or sha256 differs from {where}: the file changed after the build"
        )


def _kind_text(kind: tuple[str, int] | None) -> str:
    return "nothing" if kind is None else f"{kind[0]} x{kind[1]}"


def _check_leftovers(files: Sequence[str], report: InspectReport) -> None:
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


def grid_tiles(report: InspectReport, count: int = 16) -> list[tuple[bytes, str]]:
    """(image bytes, "id\\nlabel · fold") for up to ``count`` records, taken round-robin from
    the files so every shard shows."""
    tf = import_tensorflow()
    keys, per_file = report.keys, max(1, math.ceil(count / max(1, len(report.files))))
    tiles = []
    for file in report.files:
        try:
            for raw in tf.data.TFRecordDataset(file.path).take(per_file):
                features = tf.train.Example.FromString(raw.numpy()).features.feature
                tiles.append(_tile(features, keys, report))
        except tf.errors.OpError:
            continue
    return tiles[:count]


def _tile(features, keys: dict[str, str | None], report: InspectReport) -> tuple[bytes, str]:
    label, fold = _get(features, keys["label"]), _get(features, keys["fold"])
    shown = "" if label is None else report.class_names.get(label, label)
    if report.multi_label and label is not None:
        hot = _values(features[keys["label"]])
        shown = " ".join(str(report.class_names.get(i, i)) for i, v in enumerate(hot) if v)
    caption = f"{_text(_get(features, keys['id'], ''))}\n{shown}"
    caption += "" if fold is None else f" · fold {fold}"
    return _get(features, keys["image"], b""), caption
