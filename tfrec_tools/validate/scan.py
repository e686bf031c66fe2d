"""The record scan: one pass over every record of every file, counting folds and labels and
noting what is wrong (unreadable records, other keys, duplicate ids, groups across folds,
copied images, undecodable images)."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from typing import Any

from tfrec_tools import fs, naming
from tfrec_tools.errors import ShardError
from tfrec_tools.manifest import Manifest
from tfrec_tools.quiet import import_tensorflow, tf_error_text
from tfrec_tools.records import feature_kind, feature_values, iter_examples
from tfrec_tools.validate.report import FileReport, InspectReport

_SHOWN = 5  # examples listed per problem


class Scan:
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

    def file(self, path: str, limit: int | None = None) -> FileReport:
        """Scan every record of ``path`` (the first ``limit``: those before a broken frame);
        a record that cannot be read ends the file."""
        tf = import_tensorflow()
        report = FileReport(path, naming.parse_count(path), bytes=fs.size(path))
        report.damaged = limit is not None
        folds, labels, shapes = Counter(), Counter(), Counter()
        default_fold = self.shard_folds.get(naming.base_name(path))
        mismatched = 0
        try:
            for example in iter_examples(path, limit):
                features = example.features.feature
                mismatched += self._differs(features)
                fold = self._record(path, report.records, features, default_fold, labels, shapes)
                folds[fold] += 1
                report.records += 1
        except (tf.errors.OpError, ValueError) as err:
            report.damaged = True
            self.problems.append(
                f"{path}: record {report.records}: cannot be read ({_first_line(err)}); the file "
                "is corrupted or cut short: rebuild it"
            )
        except ShardError as err:  # a record that is not an Example
            report.damaged = True
            self.problems.append(str(err))
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
        signature = tuple(sorted((k, kind_of(f), _length(f)) for k, f in features.items()))
        if self.first_signature is None:
            self.first_signature = signature
        return signature != self.first_signature

    def _record(self, path, index, features, default_fold, labels, shapes) -> int | None:
        keys = self.keys
        fold = record_value(features, keys["fold"])
        fold = default_fold if fold is None else fold
        image_id = as_text(record_value(features, keys["id"], f"{naming.base_name(path)}#{index}"))
        if keys["id"] is not None:
            self.id_files[image_id].append(naming.base_name(path))
        self._count_label(features, labels)
        group = record_value(features, keys["group"])
        if group is not None:
            self.group_folds[group].add(fold)
        image = record_value(features, keys["image"])
        if image is not None:
            self._image(path, index, image_id, fold, image, shapes)
        return fold

    def _count_label(self, features, labels: Counter) -> None:
        """The record's class (or value); for a multi-hot label, each of its tags."""
        if self.multi_hot:
            key = self.keys["label"]
            hot = feature_values(features[key]) if key in features else []
            labels.update(self.classes.get(i, i) for i, value in enumerate(hot) if value)
            return
        label = record_value(features, self.keys["label"])
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
        """Problems across files: duplicate ids, groups across folds, copies, bad images."""
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


def record_value(features, key: str | None, default: Any = None) -> Any:
    """The first value under ``key`` in a record's feature map, else ``default``."""
    if key is None or key not in features:
        return default
    value = _value(features[key])
    return default if value is None else value


def _value(feature) -> Any:
    """The first value of a tf.train.Feature (None when empty)."""
    values = feature_values(feature)
    return values[0] if len(values) else None


def kind_of(feature) -> str:
    """The dtype of a feature ("bytes", "int64", "float"), "empty" when no kind is set."""
    return feature_kind(feature) or "empty"


def _length(feature) -> int:
    return len(feature_values(feature))


def _class_names(manifest: Manifest | None, label_key: str | None) -> dict[int, str]:
    """Class (or tag) index -> name, from the manifest's label under ``label_key``."""
    for spec in manifest.labels if manifest else ():
        if spec.name == label_key and spec.kind != "regression":
            return dict(enumerate(spec.classes))
    return {}


def _label_kind(manifest: Manifest | None, label_key: str | None) -> str | None:
    specs = [s for s in manifest.labels if s.name == label_key] if manifest else []
    return specs[0].kind if specs else None


def as_text(value: Any) -> str:
    """An id or value as text (bytes decoded as UTF-8, errors replaced)."""
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
