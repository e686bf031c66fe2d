"""What a model reads and predicts: an InputSpec and one HeadSpec per label column."""

from __future__ import annotations

from dataclasses import dataclass

from tfrec_tools.errors import ConfigError
from tfrec_tools.manifest import Manifest
from tfrec_tools.read.parse import IMAGE_INPUT

HEAD_KINDS = ("binary", "multiclass", "regression", "multilabel")
DEFAULT_THRESHOLD = 0.5  # multilabel: a tag is predicted when its probability is above this


@dataclass(frozen=True)
class HeadSpec:
    """One output of the model, named like its label column (the reader's ``y`` key)."""

    name: str
    kind: str  # one of HEAD_KINDS
    num_classes: int = 1  # multiclass: classes; multilabel: tags; binary and regression: 1
    threshold: float = DEFAULT_THRESHOLD  # multilabel: tags above it are predicted

    def __post_init__(self) -> None:
        if self.kind not in HEAD_KINDS:
            raise ConfigError(
                f"`kind` of head {self.name!r} must be one of {HEAD_KINDS}. Received: {self.kind!r}"
            )
        if not 0 < self.threshold < 1:
            raise ConfigError(
                f"`threshold` of head {self.name!r} must be in (0, 1). "
                f"Received: threshold={self.threshold}"
            )
        if self.kind == "multiclass" and self.num_classes < 2:
            raise ConfigError(
                f"multiclass head {self.name!r} needs `num_classes` >= 2. "
                f"Received: num_classes={self.num_classes}"
            )
        if self.kind == "multilabel" and self.num_classes < 1:
            raise ConfigError(
                f"multilabel head {self.name!r} needs `num_classes` (tags) >= 1. "
                f"Received: num_classes={self.num_classes}"
            )
        if self.kind in ("binary", "regression") and self.num_classes != 1:
            raise ConfigError(
                f"{self.kind} head {self.name!r} has one output: `num_classes` must be 1. "
                f"Received: num_classes={self.num_classes}"
            )


@dataclass(frozen=True)
class InputSpec:
    """What the model reads: the image size (None: a tabular-only model) and the tabular
    features, numeric (float, NaN when missing) and categorical ((name, vocabulary size),
    int64 codes, -1 when missing)."""

    image_size: tuple[int, int] | None
    numeric: tuple[str, ...] = ()
    categorical: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        if self.image_size is not None and (len(self.image_size) != 2 or min(self.image_size) < 1):
            raise ConfigError(
                "`image_size` must be (height, width) with both >= 1, or None. "
                f"Received: image_size={self.image_size}"
            )
        if self.image_size is None and not self.features:
            raise ConfigError("a model needs an image or at least one tabular feature")
        names = self.features
        repeated = sorted({n for n in names if names.count(n) > 1} | {IMAGE_INPUT} & set(names))
        if repeated:
            raise ConfigError(
                f"feature names must be distinct and not {IMAGE_INPUT!r}. Received: {repeated}"
            )
        bad = [(n, size) for n, size in self.categorical if size < 0]
        if bad:
            raise ConfigError(f"vocabulary sizes must be >= 0. Received: {bad}")

    @property
    def features(self) -> tuple[str, ...]:
        return self.numeric + tuple(name for name, _ in self.categorical)


def heads_from_manifest(
    manifest: Manifest, *, threshold: float = DEFAULT_THRESHOLD
) -> tuple[HeadSpec, ...]:
    """One head per label column: 2 classes -> binary, more -> multiclass, regression, and
    tags -> multilabel (one sigmoid per tag; ``threshold`` decides the predicted tags).

    Raises:
        ConfigError: the build has no labels, or a classification label has < 2 classes.
    """
    if not manifest.labels:
        raise ConfigError(f"the shards of {manifest.name!r} hold no labels: no head to build")
    heads = []
    for label in manifest.labels:
        if label.kind == "regression":
            heads.append(HeadSpec(label.name, "regression"))
        elif label.kind == "multilabel":
            heads.append(HeadSpec(label.name, "multilabel", label.num_classes, threshold))
        elif label.num_classes == 2:
            heads.append(HeadSpec(label.name, "binary"))
        elif label.num_classes > 2:
            heads.append(HeadSpec(label.name, "multiclass", label.num_classes))
        else:
            raise ConfigError(
                f"label {label.name!r} has {label.num_classes} class(es) in {manifest.name!r}: "
                f"a classifier needs at least 2. Classes: {list(label.classes)}"
            )
    return tuple(heads)


def inputs_from_manifest(
    manifest: Manifest, image_size: tuple[int, int] | None = None
) -> InputSpec:
    """The model inputs of a build: its image size (or ``image_size``) and feature columns.
    For a tabular-only model, ``dataclasses.replace(spec, image_size=None)``.

    Raises:
        ConfigError: the shards keep each image's own size and no ``image_size`` is given.
    """
    size = image_size or manifest.image.get("size")
    if size is None:
        raise ConfigError(
            f"the shards of {manifest.name!r} keep each image's own size (fit 'keep'): "
            "pass image_size"
        )
    columns = manifest.features
    return InputSpec(
        image_size=(int(size[0]), int(size[1])),
        numeric=tuple(c.name for c in columns if c.kind == "numeric"),
        categorical=tuple((c.name, len(c.vocabulary)) for c in columns if c.kind == "categorical"),
    )
