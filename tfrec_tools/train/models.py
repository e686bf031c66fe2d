"""Keras models for the shards: a decorator registry of image backbones, one named head per
label column, an optional tabular branch (a wide-and-deep model when there is no image), and
the compile settings and monitored metric that go with the heads.

Inputs are named as the reader yields them: ``image`` (uint8 ``[batch, h, w, 3]``) and one
``[batch]`` tensor per tabular feature. Missing values are handled inside the model: a numeric
NaN (or +-inf) becomes 0 plus a 0/1 was-missing indicator column (values then go through
sign(x) * log1p(|x|) and BatchNorm); a categorical code -1 (or a code outside the vocabulary)
gets its own extra embedding row.

Keras and TensorFlow are imported inside the functions, so importing this module (to list the
registry for ``--help``) stays cheap.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from tfrec_tools import fs
from tfrec_tools.errors import ConfigError
from tfrec_tools.manifest import Manifest
from tfrec_tools.quiet import import_tensorflow
from tfrec_tools.read.augment import AugmentConfig
from tfrec_tools.read.augment_layers import augmentation_layers
from tfrec_tools.read.parse import IMAGE_INPUT
from tfrec_tools.train.schedules import SCHEDULES, ScheduleConfig

logger = logging.getLogger(__name__)

HEAD_KINDS = ("binary", "multiclass", "regression", "multilabel")
DEFAULT_THRESHOLD = 0.5  # multilabel: a tag is predicted when its probability is above this
# How uint8 pixels become a backbone's input: "none" passes 0..255 floats (the backbone
# rescales itself, like Keras' EfficientNets); the others are keras.applications'
# imagenet_utils.preprocess_input modes ("caffe": ResNet50, "tf": [-1, 1], "torch").
PREPROCESSING = ("none", "caffe", "tf", "torch")
# multilabel: one independent sigmoid per tag, binary cross-entropy averaged over the tags
ACTIVATIONS = {
    "binary": "sigmoid",
    "multiclass": "softmax",
    "regression": "linear",
    "multilabel": "sigmoid",
}
LOSSES = {
    "binary": "binary_crossentropy",
    "multiclass": "sparse_categorical_crossentropy",
    "regression": "mean_squared_error",
    "multilabel": "binary_crossentropy",
}
# What Keras 3 logs for the compiled model (checked by a one-step fit in the tests).
# multilabel: micro-F1 at the head's threshold, the score the predicted tag sets get (AUC
# would rank probabilities, not the sets written to the CSVs).
MONITORS = {
    "binary": ("val_auc", "max"),
    "multiclass": ("val_accuracy", "max"),
    "regression": ("val_rmse", "min"),
    "multilabel": ("val_f1_micro", "max"),
}
WEIGHTS_SUFFIXES = (".weights.h5", ".h5")
DOWNLOAD_HINT = (
    "pass --weights none, or --weights PATH to a local .weights.h5 file "
    "(download it on a machine with internet, e.g. from keras.applications)"
)
FUSION_UNITS = 256  # image + tabular features meet here; wide enough not to choke 1280-d+ inputs
DEEP_BLOCKS = 2  # wide-and-deep: two Dense-BN-ReLU-Dropout blocks, the usual tabular MLP depth
MAX_EMBEDDING = 16  # categorical embeddings: fastai's 1.6 * n**0.56 rule, capped small
# keras.applications' EfficientNet (V1) stores the ImageNet std as its Normalization variance
# (tensorflow/tensorflow#49930); see _fold_imagenet_std.
IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)


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


@dataclass(frozen=True)
class TrainingDefaults:
    """The settings `tfrec train` uses for a model unless an option says otherwise (timm's
    per-model ``default_cfg``, for training): one set to fine-tune pretrained weights, one to
    train from random weights. ``lr_max`` is per sample of the global batch, like
    ``ScheduleConfig.lr_max``: the peak is ``lr_max x batch_size x replicas``."""

    lr_max: float  # ScheduleConfig.lr_max
    warmup_epochs: int  # ScheduleConfig.warmup_epochs
    schedule: str  # ScheduleConfig.kind
    batch_size: int  # per replica

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ConfigError(
                f"`schedule` must be one of {SCHEDULES}. Received: schedule={self.schedule!r}"
            )

    def schedule_config(self) -> ScheduleConfig:
        """ScheduleConfig's defaults with this kind, peak and warmup."""
        return replace(
            ScheduleConfig(),
            kind=self.schedule,
            lr_max=self.lr_max,
            warmup_epochs=self.warmup_epochs,
        )


# Why these numbers (the peak is lr_max x global batch; on 8 TPU cores, 8x the per-replica one):
#
# FINE_TUNE is the Kaggle TPU reference recipe (ScheduleConfig's own defaults): 1.25e-6 per
# sample is a peak of 2e-5 at batch 16 and 1.6e-4 at the reference's global batch 128, inside
# the 1e-4..3e-4 usually given to Adam for fine-tuning an ImageNet EfficientNet at batch
# 64-128; 5 warmup epochs from 1e-6 keep the first, large gradients of the new head from
# wrecking the pretrained features, then x0.8 per epoch.
_REFERENCE = ScheduleConfig()
FINE_TUNE = TrainingDefaults(
    lr_max=_REFERENCE.lr_max,
    warmup_epochs=_REFERENCE.warmup_epochs,
    schedule=_REFERENCE.kind,
    batch_size=16,
)
# SCRATCH: random weights have nothing to wreck and everything to learn: the rates Adam is
# used with from scratch (~1e-3), after a short warmup. Measured over 12 epochs on the digits
# (benchmarks/digits.py, 1,500 images, 32 px, 5 folds) and sample_data/ (360 images, 64 px, 4
# folds), where the reference recipe (FINE_TUNE) reached OOF accuracy 0.39 on the digits:
# - the keras.applications backbones: efficientnet_b0, digits fold 0: 1e-4 per sample (a peak
#   of 1.6e-3 at batch 16) reached 0.93 and was still improving; 3e-5 only 0.75. On 8 TPU cores
#   the peak is 1.3e-2: if a large-batch run diverges, lower --lr-max.
SCRATCH = TrainingDefaults(lr_max=1e-4, warmup_epochs=2, schedule="warmup-exp", batch_size=16)
# - small_cnn (small data on a CPU): the same peak of 1.6e-3 with 2 warmup epochs and x0.8
#   decay gave 0.985-0.988 on the digits at batch 16 or 8; but sample_data has 270 training
#   images per fold, 16 steps per epoch at batch 16: 0.92 there, 0.97 at batch 8 (twice the
#   steps). Cosine decay, 3x the peak or half of it were no better.
SMALL_CNN_SCRATCH = TrainingDefaults(
    lr_max=2e-4, warmup_epochs=2, schedule="warmup-exp", batch_size=8
)
# The largest variants halve the batch: at their native resolutions (EfficientNetB5 456 px ..
# B7 600 px, V2-M/L 480 px) 16 images per replica do not fit a 16 GB accelerator.
FINE_TUNE_HUGE = replace(FINE_TUNE, batch_size=8)
SCRATCH_HUGE = replace(SCRATCH, batch_size=8)
STARTS = ("scratch", "fine-tune")  # how a model starts: random weights, or pretrained ones


@dataclass(frozen=True)
class Backbone:
    """A registered image backbone: ``build(input_shape, weights)`` returns a keras.Model
    mapping float images (after ``preprocessing``) to pooled features ``[batch, channels]``;
    ``weights`` is "imagenet" or None. ``scratch`` and ``fine_tune`` are its training
    defaults from random and from pretrained weights."""

    name: str
    build: Callable[[tuple[int, int, int], str | None], Any]
    preprocessing: str = "none"
    pretrained: bool = True  # has "imagenet" weights
    min_size: int = 32  # smallest height/width it accepts (keras.applications: 32)
    scratch: TrainingDefaults = SCRATCH
    fine_tune: TrainingDefaults = FINE_TUNE


_REGISTRY: dict[str, Backbone] = {}


def register(
    name: str,
    *,
    preprocessing: str = "none",
    pretrained: bool = True,
    min_size: int = 32,
    scratch: TrainingDefaults = SCRATCH,
    fine_tune: TrainingDefaults = FINE_TUNE,
) -> Callable:
    """Decorator: register a backbone builder ``fn(input_shape, weights) -> keras.Model``.

    Args:
        name: the ``ModelConfig.name`` that selects it.
        preprocessing: one of PREPROCESSING (default "none": the builder takes 0..255 floats).
        pretrained: whether ``weights="imagenet"`` is possible.
        min_size: the smallest image height/width the backbone accepts.
        scratch: training defaults from random weights (default SCRATCH).
        fine_tune: training defaults from pretrained weights (default FINE_TUNE).

    Raises:
        ConfigError: the name is taken or ``preprocessing`` is unknown.
    """
    if preprocessing not in PREPROCESSING:
        raise ConfigError(
            f"`preprocessing` must be one of {PREPROCESSING}. Received: {preprocessing!r}"
        )

    def decorator(fn: Callable) -> Callable:
        if name in _REGISTRY:
            raise ConfigError(f"model {name!r} is already registered")
        _REGISTRY[name] = Backbone(
            name, fn, preprocessing, pretrained, min_size, scratch, fine_tune
        )
        return fn

    return decorator


def available_models() -> list[str]:
    """The registered model names, sorted."""
    return sorted(_REGISTRY)


def get_backbone(name: str) -> Backbone:
    """Raises:
    ConfigError: no backbone is registered under ``name``."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}. Choices: {', '.join(available_models())}")
    return _REGISTRY[name]


@dataclass(frozen=True)
class ModelConfig:
    """Which backbone, where its weights come from, and the head settings.

    ``weights``: None (random init; the string "none" means the same), "imagenet"
    (keras.applications' download), or a path to a ``.weights.h5`` file saved from the whole
    model (``model.save_weights``) or from the backbone alone (e.g.
    ``keras.applications.EfficientNetB0(include_top=False, weights="imagenet").save_weights``),
    or to a keras.applications ``*_notop.h5`` file (backbone, legacy format, local paths only).
    """

    name: str = "small_cnn"
    weights: str | None = None
    dropout: float = 0.2  # before the heads; the usual Kaggle EfficientNet setting
    tabular_units: int = 64  # width of the tabular Dense layers; tabular inputs are few
    # Keras augmentation layers between the image input and the backbone, active in training
    # only (``augmentation_layers``): on the accelerator, not the host. None: no such layers.
    augment: AugmentConfig | None = None

    def __post_init__(self) -> None:
        if isinstance(self.weights, str) and self.weights.lower() == "none":
            object.__setattr__(self, "weights", None)
        if isinstance(self.augment, dict):  # from model.json / config.json
            object.__setattr__(self, "augment", AugmentConfig(**self.augment))
        backbone = get_backbone(self.name)
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"`dropout` must be in [0, 1). Received: dropout={self.dropout}")
        if self.tabular_units < 1:
            raise ConfigError(
                f"`tabular_units` must be >= 1. Received: tabular_units={self.tabular_units}"
            )
        if self.weights == "imagenet" and not backbone.pretrained:
            raise ConfigError(
                f"model {self.name!r} has no pretrained weights: `weights` must be None or a "
                "path to a .weights.h5 file. Received: weights='imagenet'"
            )
        if self.weights not in (None, "imagenet") and not self.weights.endswith(WEIGHTS_SUFFIXES):
            raise ConfigError(
                "`weights` must be 'imagenet', None, or a path to a .weights.h5 file (or to a "
                f"keras.applications *_notop.h5 file). Received: weights={self.weights!r}"
            )

    @property
    def start(self) -> str:
        """Which of the backbone's training defaults apply (one of STARTS): "scratch" for
        random weights, "fine-tune" for ImageNet's or a weights file."""
        return "scratch" if self.weights is None else "fine-tune"

    def training_defaults(self) -> TrainingDefaults:
        """The backbone's training defaults for these weights (see ``start``)."""
        backbone = get_backbone(self.name)
        return backbone.scratch if self.start == "scratch" else backbone.fine_tune


# -- from the manifest ---------------------------------------------------------------------


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


# -- building ------------------------------------------------------------------------------


def build_model(config: ModelConfig, inputs: InputSpec, heads: tuple[HeadSpec, ...]) -> Any:
    """An uncompiled keras.Model: call it inside ``strategy.scope()``.

    Its inputs are ``image`` alone, or a dict of ``image`` and the features (tabular-only: the
    features); its output is one tensor for one head, else a dict keyed by head name. Head
    outputs are float32 (also under mixed precision): probabilities for binary ``[batch, 1]``,
    multiclass ``[batch, classes]`` and multilabel ``[batch, tags]``, values for regression
    ``[batch, 1]``.

    Raises:
        ConfigError: bad heads, an image too small for the backbone, weights that cannot be
            downloaded, or a weights file that is missing or fits neither model nor backbone.
    """
    keras = _keras()
    _check_heads(heads, inputs)
    entry = get_backbone(config.name)
    tensors = _model_inputs(keras, inputs)
    tabular = _tabular_columns(keras, inputs, tensors) if inputs.features else None
    if inputs.image_size is None:
        outputs, backbone = _wide_and_deep(keras, config, heads, tabular), None
    else:
        outputs, backbone = _image_outputs(keras, config, entry, inputs, tensors, tabular, heads)
    model = _functional(keras, tensors, outputs, config.name)
    if config.weights not in (None, "imagenet"):
        _load_weights(model, backbone, config.weights)
    return model


def _keras() -> Any:
    import_tensorflow()
    import keras

    return keras


def _check_heads(heads: tuple[HeadSpec, ...], inputs: InputSpec) -> None:
    if not heads:
        raise ConfigError("`heads` must hold at least one HeadSpec. Received: ()")
    names = [h.name for h in heads]
    repeated = sorted({n for n in names if names.count(n) > 1})
    clashes = sorted(set(names) & {IMAGE_INPUT, *inputs.features})
    if repeated or clashes:
        raise ConfigError(
            "head names must be distinct and differ from the input names. "
            f"Received twice: {repeated}; also inputs: {clashes}"
        )


def _model_inputs(keras: Any, inputs: InputSpec) -> dict[str, Any]:
    tensors = {}
    if inputs.image_size is not None:
        shape = (*inputs.image_size, 3)
        tensors[IMAGE_INPUT] = keras.Input(shape=shape, dtype="uint8", name=IMAGE_INPUT)
    for name in inputs.numeric:
        tensors[name] = keras.Input(shape=(), dtype="float32", name=name)
    for name, _ in inputs.categorical:
        tensors[name] = keras.Input(shape=(), dtype="int64", name=name)
    return tensors


def _functional(keras: Any, tensors: dict[str, Any], outputs: dict[str, Any], name: str) -> Any:
    """One input / one output stay bare tensors (the reader yields them bare), else dicts."""
    ins = next(iter(tensors.values())) if len(tensors) == 1 else tensors
    outs = next(iter(outputs.values())) if len(outputs) == 1 else outputs
    try:
        return keras.Model(ins, outs, name=name)
    except ValueError as err:
        if "unique" not in str(err):
            raise
        raise ConfigError(
            f"a label or feature name is also the name of a layer of the model ({err}): "
            "rename that column"
        ) from err


def _image_outputs(
    keras: Any,
    config: ModelConfig,
    entry: Backbone,
    inputs: InputSpec,
    tensors: dict[str, Any],
    tabular: Any,
    heads: tuple[HeadSpec, ...],
) -> tuple[dict[str, Any], Any]:
    layers = keras.layers
    backbone = _build_backbone(entry, inputs.image_size, config.weights)
    image = tensors[IMAGE_INPUT]
    if config.augment is not None:
        image = augmentation_layers(config.augment)(image)
    pixels = _layer_classes().ImagePreprocessing(
        entry.preprocessing, dtype="float32", name="image_preprocessing"
    )(image)
    x = backbone(pixels)
    if tabular is not None:
        deep = layers.Dense(config.tabular_units, activation="relu", name="tabular_dense")(
            _concat(keras, tabular.deep, "tabular_concat")
        )
        x = layers.Concatenate(name="fusion_concat")([x, deep])
        x = layers.Dense(FUSION_UNITS, activation="relu", name="fusion_dense")(x)
    x = layers.Dropout(config.dropout, name="head_dropout")(x)
    outputs = {h.name: _head(keras, h, x) for h in heads}
    return outputs, backbone


def _build_backbone(entry: Backbone, image_size: tuple[int, int], weights: str | None) -> Any:
    if min(image_size) < entry.min_size:
        raise ConfigError(
            f"`image_size` must be at least {entry.min_size}x{entry.min_size} for model "
            f"{entry.name!r}. Received: image_size={tuple(image_size)}"
        )
    shape = (*image_size, 3)
    if weights != "imagenet":
        return entry.build(shape, None)
    try:
        return entry.build(shape, "imagenet")
    except Exception as err:  # keras.utils.get_file raises a bare Exception("URL fetch ...")
        reason = " ".join(str(err).split()) or type(err).__name__
        raise ConfigError(
            f"could not download the imagenet weights of {entry.name!r} ({reason}): "
            + DOWNLOAD_HINT
        ) from err


def _head(keras: Any, head: HeadSpec, x: Any) -> Any:
    """float32 so the activation and the loss stay exact under mixed precision."""
    return keras.layers.Dense(
        head.num_classes, activation=ACTIVATIONS[head.kind], dtype="float32", name=head.name
    )(x)


def _concat(keras: Any, tensors: list[Any], name: str) -> Any:
    return tensors[0] if len(tensors) == 1 else keras.layers.Concatenate(name=name)(tensors)


# -- tabular -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tabular:
    """The tabular inputs as [batch, k] blocks: ``deep`` (numeric + embeddings) feeds MLPs,
    ``wide`` (numeric + one-hot categories) feeds the linear part of wide-and-deep."""

    deep: list[Any]
    wide: list[Any]


def _tabular_columns(keras: Any, inputs: InputSpec, tensors: dict[str, Any]) -> _Tabular:
    layers, custom = keras.layers, _layer_classes()
    deep, wide = [], []
    if inputs.numeric:
        values = custom.NumericColumns(dtype="float32", name="numeric_columns")(
            [tensors[n] for n in inputs.numeric]
        )
        values = layers.BatchNormalization(name="numeric_norm")(values)
        deep.append(values)
        wide.append(values)
    for name, size in inputs.categorical:
        index = custom.CategoryIndex(size, name=f"{name}_index")(tensors[name])
        dim = min(MAX_EMBEDDING, max(2, round(1.6 * (size + 1) ** 0.56)))
        deep.append(layers.Embedding(size + 1, dim, name=f"{name}_embedding")(index))
        wide.append(
            layers.CategoryEncoding(size + 1, output_mode="one_hot", name=f"{name}_one_hot")(index)
        )
    return _Tabular(deep, wide)


def _wide_and_deep(
    keras: Any, config: ModelConfig, heads: tuple[HeadSpec, ...], tabular: _Tabular
) -> dict[str, Any]:
    """Per head: activation(linear(wide inputs) + linear(deep MLP)), the functional-API
    equivalent of the Keras 2 WideDeepModel."""
    layers = keras.layers
    deep = _concat(keras, tabular.deep, "deep_concat")
    for i in range(1, DEEP_BLOCKS + 1):
        deep = layers.Dense(config.tabular_units, use_bias=False, name=f"deep_dense{i}")(deep)
        deep = layers.BatchNormalization(name=f"deep_norm{i}")(deep)
        deep = layers.ReLU(name=f"deep_relu{i}")(deep)
        deep = layers.Dropout(config.dropout, name=f"deep_dropout{i}")(deep)
    wide = _concat(keras, tabular.wide, "wide_concat")
    outputs = {}
    for head in heads:
        units = head.num_classes
        parts = [
            layers.Dense(units, dtype="float32", name=f"{head.name}_wide")(wide),
            layers.Dense(units, dtype="float32", name=f"{head.name}_deep")(deep),
        ]
        logits = layers.Add(dtype="float32", name=f"{head.name}_logits")(parts)
        outputs[head.name] = layers.Activation(
            ACTIVATIONS[head.kind], dtype="float32", name=head.name
        )(logits)
    return outputs


@functools.cache
def _layer_classes() -> Any:
    """The custom layers, defined on first use (they subclass keras.layers.Layer) and
    registered as serializable, so ``model.save(".keras")`` round-trips without Lambda."""
    from types import SimpleNamespace

    return SimpleNamespace(
        ImagePreprocessing=_image_preprocessing_class(),
        NumericColumns=_numeric_columns_class(),
        CategoryIndex=_category_index_class(),
    )


def _image_preprocessing_class() -> type:
    keras = _keras()

    @keras.saving.register_keras_serializable(package="tfrec_tools")
    class ImagePreprocessing(keras.layers.Layer):
        """uint8 (or float) 0..255 pixels -> float32 as the backbone expects (PREPROCESSING)."""

        def __init__(self, mode: str = "none", **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.mode = mode

        def call(self, images: Any) -> Any:
            x = keras.ops.cast(images, "float32")
            if self.mode == "none":
                return x
            return keras.applications.imagenet_utils.preprocess_input(x, mode=self.mode)

        def compute_output_shape(self, input_shape: Any) -> Any:
            return input_shape

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "mode": self.mode}

    return ImagePreprocessing


def _numeric_columns_class() -> type:
    keras = _keras()
    ops = keras.ops

    @keras.saving.register_keras_serializable(package="tfrec_tools")
    class NumericColumns(keras.layers.Layer):
        """n float columns ``[batch]`` -> ``[batch, 2n]``: sign(x) * log1p(|x|) of the values
        with NaN/inf replaced by 0, then one 0/1 was-missing indicator per column. The log
        keeps any raw scale (ages, incomes) small without statistics of the data: the
        BatchNorm after it starts at mean 0 / variance 1, and float16 overflows at 65504."""

        def call(self, columns: list[Any]) -> Any:
            x = ops.stack([ops.reshape(ops.cast(c, "float32"), (-1,)) for c in columns], -1)
            missing = ops.logical_not(ops.isfinite(x))
            x = ops.where(missing, ops.zeros_like(x), x)
            squashed = ops.sign(x) * ops.log1p(ops.abs(x))
            return ops.concatenate([squashed, ops.cast(missing, "float32")], -1)

        def compute_output_shape(self, input_shapes: list[Any]) -> tuple:
            return (input_shapes[0][0], 2 * len(input_shapes))

    return NumericColumns


def _category_index_class() -> type:
    keras = _keras()
    ops = keras.ops

    @keras.saving.register_keras_serializable(package="tfrec_tools")
    class CategoryIndex(keras.layers.Layer):
        """int codes ``[batch]`` -> int32 indices: code i -> i; missing (-1) or unknown
        (>= vocabulary_size) -> vocabulary_size, one extra row for "not known"."""

        def __init__(self, vocabulary_size: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.vocabulary_size = vocabulary_size

        def call(self, codes: Any) -> Any:
            codes = ops.reshape(ops.cast(codes, "int32"), (-1,))
            unknown = ops.logical_or(codes < 0, codes >= self.vocabulary_size)
            return ops.where(unknown, ops.full_like(codes, self.vocabulary_size), codes)

        def compute_output_shape(self, input_shape: Any) -> tuple:
            return (input_shape[0],)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "vocabulary_size": self.vocabulary_size}

    return CategoryIndex


# -- weights files -------------------------------------------------------------------------


def _load_weights(model: Any, backbone: Any, path: str) -> None:
    """Load ``path`` into the whole model or into the backbone, whichever its arrays fit."""
    if not fs.exists(path):
        raise ConfigError(f"`weights` file not found: {path}")
    with _local_copy(path) as local:
        target = _weights_target(model, backbone, local, path)
        try:
            target.load_weights(local)
        except (ValueError, OSError, KeyError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ConfigError(f"`weights` file {path} could not be loaded: {first}") from err
    if backbone is not None:
        _fold_imagenet_std(backbone)
    logger.info("loaded %s into %s", path, "the model" if target is model else "the backbone")


def _weights_target(model: Any, backbone: Any, local: str, path: str) -> Any:
    if not path.endswith(".weights.h5"):  # keras.applications' legacy *_notop.h5 files
        if backbone is None:
            raise ConfigError(f"`weights` file {path}: a tabular-only model needs a .weights.h5")
        return backbone
    stored = _stored_shapes(local)
    if stored == _shapes(model):
        return model
    if backbone is not None and stored == _shapes(backbone):
        return backbone
    expected = f"{len(model.weights)} arrays"
    if backbone is not None:
        expected += f", or {len(backbone.weights)} for backbone {backbone.name!r}"
    raise ConfigError(
        f"`weights` file {path} holds {len(stored)} arrays that fit neither the model "
        f"({expected}): it was saved from another model, or with other heads or inputs"
    )


def _shapes(model: Any) -> list[tuple[int, ...]]:
    return sorted(tuple(int(d) for d in w.shape) for w in model.weights)


def _stored_shapes(path: str) -> list[tuple[int, ...]]:
    """The shapes of the layer arrays of a Keras 3 .weights.h5 file (not the optimizer's)."""
    import h5py

    shapes: list[tuple[int, ...]] = []
    with h5py.File(path, "r") as handle:
        if "layers" in handle:
            handle["layers"].visititems(
                lambda _, obj: (
                    shapes.append(tuple(obj.shape)) if isinstance(obj, h5py.Dataset) else None
                )
            )
    return sorted(shapes)


@contextlib.contextmanager
def _local_copy(path: str) -> Iterator[str]:
    """h5py reads local files only: a gs:// file is copied to a temporary folder first."""
    if not fs.is_remote(path):
        yield path
        return
    with tempfile.TemporaryDirectory() as folder:
        local = os.path.join(folder, os.path.basename(path))
        with open(local, "wb") as handle:
            handle.write(fs.read_bytes(path))
        yield local


def _fold_imagenet_std(backbone: Any) -> None:
    """Keras' EfficientNet (V1) with weights="imagenet" keeps the ImageNet *std* as its
    Normalization variance and adds a Rescaling(1/sqrt(std)) after it, a layer the
    weights=None graph lacks (tensorflow/tensorflow#49930). Every V1 backbone here is the
    weights=None graph, so such statistics are folded into the variance (var * std): the same
    outputs, and a graph that does not depend on where the weights came from. Idempotent."""
    import numpy as np

    keras = _keras()
    for layer in backbone.layers:
        variance = getattr(layer, "adapt_variance", None)
        if not isinstance(layer, keras.layers.Normalization) or variance is None:
            continue
        values = np.asarray(keras.ops.convert_to_numpy(variance))
        std = np.asarray(IMAGENET_STDDEV_RGB, values.dtype)
        if values.shape == std.shape and np.allclose(values, std, rtol=0, atol=1e-6):
            variance.assign(values * std)
        layer.finalize_state()  # the layer keeps a copy of the variance; refresh it


# -- backbones -----------------------------------------------------------------------------


def _keras_application(function: str) -> Callable[[tuple[int, int, int], str | None], Any]:
    """A builder for ``keras.applications.<function>`` without its top, average-pooled."""

    def build(input_shape: tuple[int, int, int], weights: str | None) -> Any:
        application = getattr(_keras().applications, function)
        return application(
            include_top=False, weights=weights, input_shape=input_shape, pooling="avg"
        )

    return build


def _efficientnet_v1(function: str) -> Callable[[tuple[int, int, int], str | None], Any]:
    """EfficientNetB0-B7: always the weights=None graph; ImageNet weights are copied in and
    their statistics folded (see _fold_imagenet_std), so a checkpoint of a model that
    started from ImageNet loads into a model built with weights=None and predicts the same."""
    plain = _keras_application(function)

    def build(input_shape: tuple[int, int, int], weights: str | None) -> Any:
        if weights != "imagenet":
            return plain(input_shape, weights)
        pretrained = plain(input_shape, "imagenet")
        model = plain(input_shape, None)
        model.set_weights(pretrained.get_weights())
        _fold_imagenet_std(model)
        return model

    return build


@register("small_cnn", pretrained=False, min_size=8, scratch=SMALL_CNN_SCRATCH)
def small_cnn(input_shape: tuple[int, int, int], weights: str | None) -> Any:
    """Four Conv-BN-ReLU-MaxPool blocks (16-32-64-128 filters) and global max pooling:
    ~98k parameters, trains on 64x64 CPU batches in seconds.

    Four poolings give the last block a ~46 px receptive field, enough to see a whole object
    in a 64 px image (three blocks saw ~22 px and could not tell shapes apart); global max
    pooling keeps "this part is somewhere in the image" instead of diluting it over the
    background. BatchNorm momentum 0.9: short CPU runs take a few hundred steps, after which
    Keras' default 0.99 still leaves the moving statistics near their initial values, so
    validation (inference mode) sees other activations than training did."""
    del weights  # no pretrained weights (ModelConfig refuses "imagenet")
    keras = _keras()
    layers = keras.layers
    inputs = keras.Input(shape=input_shape)
    x = layers.Rescaling(1.0 / 255, name="rescaling")(inputs)
    for i, filters in enumerate((16, 32, 64, 128), start=1):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"block{i}_conv")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"block{i}_bn")(x)
        x = layers.ReLU(name=f"block{i}_relu")(x)
        # "same": an 8x8 input (min_size) still pools to 1x1 after four blocks
        x = layers.MaxPooling2D(padding="same", name=f"block{i}_pool")(x)
    x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    return keras.Model(inputs, x, name="small_cnn_backbone")


def _huge(huge: bool) -> dict[str, TrainingDefaults]:
    """The training defaults of the largest variants (half the batch), else none (the
    register defaults)."""
    return {"scratch": SCRATCH_HUGE, "fine_tune": FINE_TUNE_HUGE} if huge else {}


# EfficientNet and EfficientNetV2 rescale 0..255 inputs themselves (their first layers are
# Rescaling/Normalization); ResNet50 expects keras' "caffe" preprocessing (BGR, mean-centred).
for _i in range(8):
    register(f"efficientnet_b{_i}", **_huge(_i >= 5))(_efficientnet_v1(f"EfficientNetB{_i}"))
for _variant in ("b0", "b1", "b2", "b3", "s", "m", "l"):
    register(f"efficientnet_v2_{_variant}", **_huge(_variant in ("m", "l")))(
        _keras_application(f"EfficientNetV2{_variant.upper()}")
    )
register("resnet50", preprocessing="caffe")(_keras_application("ResNet50"))
del _i, _variant


# -- freezing ------------------------------------------------------------------------------


def freeze_backbone(model: Any, *, frozen: bool, freeze_batchnorm: bool) -> Any:
    """Freeze the image backbone of a ``build_model`` model, or unfreeze it (progressive
    fine-tuning); compile afterwards, as Keras reads which weights train when it compiles.

    The graph is left as built (no ``training=False`` baked in), so checkpoints load into a
    model built as usual: Keras 3's BatchNormalization runs in inference mode whenever the layer
    is not trainable, so freezing a layer fixes its moving statistics as well as its weights.

    Args:
        frozen: True: no backbone weight trains and its BatchNorm layers run in inference mode.
            False: the backbone trains again.
        freeze_batchnorm: with ``frozen=False``, keep the backbone's BatchNormalization layers
            frozen (inference mode, statistics and scale/offset fixed), as the Keras
            transfer-learning guide does with pretrained weights. Ignored with ``frozen=True``.

    Returns:
        The backbone (the nested keras.Model after the image preprocessing).

    Raises:
        ConfigError: the model has no image backbone (a tabular-only model).
    """
    keras = _keras()
    nested = [
        layer
        for layer in model.layers
        if isinstance(layer, keras.Model) and layer.name != "augmentation"  # augment_layers' name
    ]
    if len(nested) != 1:
        raise ConfigError(
            f"model {model.name!r} has no image backbone to freeze (found {len(nested)} nested "
            "models): freezing needs an image model"
        )
    backbone = nested[0]
    backbone.trainable = not frozen
    # Every layer by itself: Keras 3.15 passes `trainable = True` on to the sublayers only
    # when the model's own flag changes, so a BatchNorm frozen earlier would stay frozen.
    for layer in _sublayers(keras, backbone):
        batchnorm = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = not frozen and not (batchnorm and freeze_batchnorm)
    return backbone


def _sublayers(keras: Any, model: Any) -> Iterator[Any]:
    """Every layer of ``model``, also inside nested models."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _sublayers(keras, layer)


# -- compiling -----------------------------------------------------------------------------


def compile_model(
    model: Any,
    heads: tuple[HeadSpec, ...],
    *,
    learning_rate: float,
    loss_weights: dict[str, float] | None = None,
    steps_per_execution: int = 1,
) -> None:
    """Compile with Adam, one loss and its metrics per head (see ``monitor_for``).

    Args:
        learning_rate: a float or a keras LearningRateSchedule.
        loss_weights: head name -> weight of its loss (default 1 each); several heads only
            make it matter.
        steps_per_execution: batches per compiled call (TPU: 32 or more hides host overhead).

    Raises:
        ConfigError: ``loss_weights`` names a head the model does not have.
    """
    keras = _keras()
    names = [h.name for h in heads]
    unknown = sorted(set(loss_weights or {}) - set(names))
    if unknown:
        raise ConfigError(f"`loss_weights` names unknown heads {unknown}. Heads: {names}")
    losses = {h.name: LOSSES[h.kind] for h in heads}
    metrics = {h.name: _metrics(keras, h) for h in heads}
    weights = {n: float((loss_weights or {}).get(n, 1.0)) for n in names}
    single = len(heads) == 1
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=losses[names[0]] if single else losses,
        metrics=metrics[names[0]] if single else metrics,
        loss_weights=None if single else weights,
        steps_per_execution=steps_per_execution,
    )


def _metrics(keras: Any, head: HeadSpec) -> list[Any]:
    """Fresh metric objects (Keras cannot share one between heads). multilabel: micro- and
    macro-F1 with tags above the head's threshold predicted (over the epoch's counts; the
    macro average counts a tag absent from the labels as 0), and AUC per tag, averaged."""
    m = keras.metrics
    if head.kind == "binary":
        return [m.AUC(name="auc"), m.BinaryAccuracy(name="accuracy")]
    if head.kind == "multiclass":
        return [m.SparseCategoricalAccuracy(name="accuracy")]
    if head.kind == "multilabel":
        return [
            m.F1Score(average="micro", threshold=head.threshold, name="f1_micro"),
            m.F1Score(average="macro", threshold=head.threshold, name="f1_macro"),
            m.AUC(multi_label=True, num_labels=head.num_classes, name="auc"),
        ]
    return [m.RootMeanSquaredError(name="rmse")]


def monitor_for(heads: tuple[HeadSpec, ...]) -> tuple[str, str]:
    """The validation metric to watch (checkpoint, early stopping) and its mode: "val_auc"
    (one binary head), "val_accuracy" (multiclass), "val_rmse" (regression), "val_f1_micro"
    (multilabel), "val_loss" (several heads: the weighted sum of their losses), with "max"
    or "min"."""
    if not heads:
        raise ConfigError("`heads` must hold at least one HeadSpec. Received: ()")
    if len(heads) > 1:
        return ("val_loss", "min")
    return MONITORS[heads[0].kind]
