"""Two builds compared record by record, by ``image_id``: ids added and removed, moved between
folds, images whose bytes changed, and other values that changed (labels and feature columns
as class and vocabulary names, so a renumbering alone is no change)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tfrec_tools import fs
from tfrec_tools.errors import ShardError
from tfrec_tools.manifest import Manifest
from tfrec_tools.quiet import import_tensorflow
from tfrec_tools.records import check_frames, feature_values, iter_examples
from tfrec_tools.schema import FOLD, IMAGE, IMAGE_ID

# id -> (fold, sha256 of the image bytes, the other values in key order)
Records = dict[str, tuple[int | None, bytes, tuple[Any, ...]]]


@dataclass(frozen=True)
class RecordDiff:
    added: list[str] = field(default_factory=list)  # ids in B only
    removed: list[str] = field(default_factory=list)  # ids in A only
    moved: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)  # id -> folds
    image_changed: list[str] = field(default_factory=list)
    values_changed: dict[str, dict[str, tuple[Any, Any]]] = field(default_factory=dict)

    KINDS = ("added", "removed", "moved", "image_changed", "values_changed")

    @property
    def identical(self) -> bool:
        return not any(getattr(self, kind) for kind in self.KINDS)

    def to_json(self) -> dict[str, Any]:
        found = {kind: getattr(self, kind) for kind in self.KINDS}
        found["moved"] = {i: list(f) for i, f in self.moved.items()}
        changed = self.values_changed.items()
        found["values_changed"] = {i: {k: list(v) for k, v in c.items()} for i, c in changed}
        return found


def record_diff(a: tuple[str, Manifest], b: tuple[str, Manifest]) -> RecordDiff:
    """Every record of build ``a`` and of build ``b`` (each ``(folder, manifest)``) by id.

    Raises:
        ShardError: a shard a manifest lists is missing, damaged or cut short.
    """
    keys = _common_keys(a[1], b[1])
    one, other = _read(*a, keys), _read(*b, keys)
    both = sorted(set(one) & set(other))
    return RecordDiff(
        added=sorted(set(other) - set(one)),
        removed=sorted(set(one) - set(other)),
        moved={i: (one[i][0], other[i][0]) for i in both if one[i][0] != other[i][0]},
        image_changed=[i for i in both if one[i][1] != other[i][1]],
        values_changed={
            i: _changed_values(keys, one[i][2], other[i][2])
            for i in both
            if one[i][2] != other[i][2]
        },
    )


def _common_keys(one: Manifest, other: Manifest) -> tuple[str, ...]:
    """The keys compared as values: those both schemas hold, but the id, image and fold."""
    skip = {IMAGE, IMAGE_ID, FOLD}
    theirs = set(other.schema.names)
    return tuple(k for k in one.schema.names if k in theirs and k not in skip)


def _changed_values(keys, one: tuple, other: tuple) -> dict[str, tuple[Any, Any]]:
    return {k: (x, y) for k, x, y in zip(keys, one, other, strict=True) if x != y}


def _read(folder: str, manifest: Manifest, keys: tuple[str, ...]) -> Records:
    tf = import_tensorflow()
    decode = _decoders(manifest)
    records: Records = {}
    for path in manifest.files(folder):
        if not fs.exists(path):
            raise ShardError(f"{path}: listed in the {manifest.name!r} manifest but missing")
        check_frames(path)
        try:
            for example in iter_examples(path):
                feature = example.features.feature
                values = tuple(decode[k](list(feature_values(feature[k]))) for k in keys)
                fold = list(feature_values(feature[FOLD])) if FOLD in feature else []
                image = hashlib.sha256(b"".join(feature_values(feature[IMAGE]))).digest()
                record_id = b"".join(feature_values(feature[IMAGE_ID])).decode("utf-8", "replace")
                records[record_id] = (fold[0] if fold else None, image, values)
        except tf.errors.OpError as err:
            raise ShardError(f"{path}: cannot be read ({err.message}): rebuild it") from err
    return records


def _decoders(manifest: Manifest) -> dict[str, Callable[[list], Any]]:
    """Per key, raw values -> what they mean: class, tag and vocabulary names for codes; a
    missing number (NaN) as None, so two missing values are equal."""
    decoders: dict[str, Callable[[list], Any]] = {name: _plain for name in manifest.schema.names}
    for label in manifest.labels:
        if label.kind == "classification":
            decoders[label.name] = _named(label.classes)
        elif label.kind == "multilabel":
            classes = label.classes
            decoders[label.name] = lambda v, c=classes: tuple(t for t, on in zip(c, v) if on)
    for column in manifest.features:
        if column.vocabulary:
            decoders[column.name] = _named(column.vocabulary)
    return decoders


def _plain(values: list) -> Any:
    cleaned = [None if isinstance(v, float) and math.isnan(v) else v for v in values]
    return cleaned[0] if len(cleaned) == 1 else tuple(cleaned)


def _named(names: tuple[str, ...]) -> Callable[[list], Any]:
    """A code -> its name (a code outside the names, e.g. -1 for missing, stays a number)."""
    return lambda v: names[v[0]] if v and 0 <= v[0] < len(names) else _plain(v)
