"""Model assembly: ModelConfig -> a keras.Model with one head per label; compiling, freezing.

Inputs are named as the reader yields them: ``image`` (uint8 ``[batch, h, w, 3]``) and one
``[batch]`` tensor per tabular feature (see ``train.tabular`` for missing values). Keras is
imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tfrec_tools.errors import ConfigError
from tfrec_tools.quiet import import_keras
from tfrec_tools.read.augment import AugmentConfig
from tfrec_tools.read.augment_layers import augmentation_layers
from tfrec_tools.read.parse import IMAGE_INPUT
from tfrec_tools.train.heads import LOSSES, head_layer, head_metrics
from tfrec_tools.train.layers import custom_layers
from tfrec_tools.train.registry import Backbone, TrainingDefaults, get_backbone
from tfrec_tools.train.specs import HeadSpec, InputSpec
from tfrec_tools.train.tabular import concat, tabular_columns, wide_and_deep
from tfrec_tools.train.weights import WEIGHTS_SUFFIXES, imagenet_backbone, load_weights

FUSION_UNITS = 256  # image + tabular features meet here; wide enough not to choke 1280-d+ inputs


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
    keras = import_keras()
    _check_heads(heads, inputs)
    entry = get_backbone(config.name)
    tensors = _model_inputs(keras, inputs)
    tabular = tabular_columns(keras, inputs, tensors) if inputs.features else None
    if inputs.image_size is None:
        outputs, backbone = wide_and_deep(keras, config, heads, tabular), None
    else:
        outputs, backbone = _image_outputs(keras, config, entry, inputs, tensors, tabular, heads)
    model = _functional(keras, tensors, outputs, config.name)
    if config.weights not in (None, "imagenet"):
        load_weights(model, backbone, config.weights)
    return model


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
    pixels = custom_layers().ImagePreprocessing(
        entry.preprocessing, dtype="float32", name="image_preprocessing"
    )(image)
    x = backbone(pixels)
    if tabular is not None:
        deep = layers.Dense(config.tabular_units, activation="relu", name="tabular_dense")(
            concat(keras, tabular.deep, "tabular_concat")
        )
        x = layers.Concatenate(name="fusion_concat")([x, deep])
        x = layers.Dense(FUSION_UNITS, activation="relu", name="fusion_dense")(x)
    x = layers.Dropout(config.dropout, name="head_dropout")(x)
    outputs = {h.name: head_layer(keras, h, x) for h in heads}
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
    return imagenet_backbone(entry, shape)


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
    keras = import_keras()
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
    keras = import_keras()
    names = [h.name for h in heads]
    unknown = sorted(set(loss_weights or {}) - set(names))
    if unknown:
        raise ConfigError(f"`loss_weights` names unknown heads {unknown}. Heads: {names}")
    losses = {h.name: LOSSES[h.kind] for h in heads}
    metrics = {h.name: head_metrics(keras, h) for h in heads}
    weights = {n: float((loss_weights or {}).get(n, 1.0)) for n in names}
    single = len(heads) == 1
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=losses[names[0]] if single else losses,
        metrics=metrics[names[0]] if single else metrics,
        loss_weights=None if single else weights,
        steps_per_execution=steps_per_execution,
    )
