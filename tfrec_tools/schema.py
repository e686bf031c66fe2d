"""The record schema: one source of truth for the writer, the reader and `tfrec inspect`.

Every record holds ``image`` (encoded JPEG bytes), ``image_id``, ``height`` and ``width``; a
labeled build adds one feature per label column (a multi-hot vector for a multi-label one),
``fold`` when folds were asked for, and one per tabular feature column. Feature names are
the CSV column names, so Kaggle-style readers that look for ``target`` or ``label`` keep
working.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tfrec_tools.errors import ConfigError
from tfrec_tools.quiet import import_tensorflow

IMAGE, IMAGE_ID, FOLD, HEIGHT, WIDTH = "image", "image_id", "fold", "height", "width"
RESERVED = (IMAGE, IMAGE_ID, FOLD, HEIGHT, WIDTH)
DTYPES = ("bytes", "int64", "float")
LABEL_KINDS = ("classification", "regression", "multilabel")
FEATURE_KINDS = ("numeric", "categorical")
MISSING_CODE = -1  # categorical code of a missing value; numeric missing values are NaN


@dataclass(frozen=True)
class FeatureSpec:
    """One key of a record: its name, dtype (one of DTYPES) and shape (scalars: ``()``)."""

    name: str
    dtype: str
    shape: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ConfigError(
                f"`dtype` of {self.name!r} must be one of {DTYPES}. Received: {self.dtype!r}"
            )


@dataclass(frozen=True)
class LabelSpec:
    """A label column: classification (``classes`` in index order), regression, or
    multilabel (``classes`` are the tags; the label is a multi-hot int64 vector over them,
    so a fixed-length feature that ``tf.io.parse_example`` parses in one batched op)."""

    name: str
    kind: str
    classes: tuple[str, ...] = ()

    @property
    def dtype(self) -> str:
        return "float" if self.kind == "regression" else "int64"

    @property
    def shape(self) -> tuple[int, ...]:
        """``(tags,)`` for a multi-hot label, ``()`` (a scalar) otherwise."""
        return (len(self.classes),) if self.kind == "multilabel" else ()

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclass(frozen=True)
class ColumnSpec:
    """A tabular feature column: numeric (float, NaN when missing) or categorical codes."""

    name: str
    kind: str
    vocabulary: tuple[str, ...] = ()
    missing: int = 0

    @property
    def dtype(self) -> str:
        return "float" if self.kind == "numeric" else "int64"


@dataclass(frozen=True)
class Schema:
    """The ordered features every record of a build carries."""

    features: tuple[FeatureSpec, ...] = field(default_factory=tuple)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.features)

    def to_json(self) -> list[dict[str, Any]]:
        """A list, so the order survives JSON writers that sort keys."""
        return [{"name": s.name, "dtype": s.dtype, "shape": list(s.shape)} for s in self.features]

    @classmethod
    def from_json(cls, data: list[Mapping[str, Any]]) -> Schema:
        return cls(tuple(FeatureSpec(d["name"], d["dtype"], tuple(d["shape"])) for d in data))


def build_schema(
    labels: tuple[LabelSpec, ...], columns: tuple[ColumnSpec, ...], *, with_fold: bool
) -> Schema:
    """The schema of a build with these label and feature columns."""
    specs = [FeatureSpec(IMAGE, "bytes"), FeatureSpec(IMAGE_ID, "bytes")]
    specs += [FeatureSpec(HEIGHT, "int64"), FeatureSpec(WIDTH, "int64")]
    specs += [FeatureSpec(label.name, label.dtype, label.shape) for label in labels]
    if with_fold:
        specs.append(FeatureSpec(FOLD, "int64"))
    specs += [FeatureSpec(column.name, column.dtype) for column in columns]
    return Schema(tuple(specs))


def parse_features(schema: Schema) -> dict[str, Any]:
    """The ``tf.io.parse_example`` spec of a schema (every key fixed-length)."""
    tf = import_tensorflow()

    kinds = {"bytes": tf.string, "int64": tf.int64, "float": tf.float32}
    return {s.name: tf.io.FixedLenFeature(list(s.shape), kinds[s.dtype]) for s in schema.features}


def check_column_names(names: tuple[str, ...]) -> None:
    """Label and feature columns become record keys: they must be distinct and not reserved."""
    for name in names:
        if name in RESERVED:
            raise ConfigError(
                f"column {name!r} would overwrite the record key of the same name; "
                f"rename it in the CSV (reserved keys: {', '.join(RESERVED)})"
            )
    seen = [n for i, n in enumerate(names) if n in names[:i]]
    if seen:
        raise ConfigError(f"column {seen[0]!r} is given twice among label and feature columns")
