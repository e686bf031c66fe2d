"""The registered image backbones: small_cnn and keras.applications' EfficientNets and ResNet50."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tfrec_tools.quiet import import_keras
from tfrec_tools.train.registry import (
    FINE_TUNE_HUGE,
    SCRATCH_HUGE,
    SMALL_CNN_SCRATCH,
    TrainingDefaults,
    register,
)

# keras.applications' EfficientNet (V1) stores the ImageNet std as its Normalization variance
# (tensorflow/tensorflow#49930); see fold_imagenet_std.
IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)


def _keras_application(function: str) -> Callable[[tuple[int, int, int], str | None], Any]:
    """A builder for ``keras.applications.<function>`` without its top, average-pooled."""

    def build(input_shape: tuple[int, int, int], weights: str | None) -> Any:
        application = getattr(import_keras().applications, function)
        return application(
            include_top=False, weights=weights, input_shape=input_shape, pooling="avg"
        )

    return build


def _efficientnet_v1(function: str) -> Callable[[tuple[int, int, int], str | None], Any]:
    """EfficientNetB0-B7: always the weights=None graph; ImageNet weights are copied in and
    their statistics folded (see fold_imagenet_std), so a checkpoint of a model that
    started from ImageNet loads into a model built with weights=None and predicts the same."""
    plain = _keras_application(function)

    def build(input_shape: tuple[int, int, int], weights: str | None) -> Any:
        if weights != "imagenet":
            return plain(input_shape, weights)
        pretrained = plain(input_shape, "imagenet")
        model = plain(input_shape, None)
        model.set_weights(pretrained.get_weights())
        fold_imagenet_std(model)
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
    keras = import_keras()
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


def fold_imagenet_std(backbone: Any) -> None:
    """Keras' EfficientNet (V1) with weights="imagenet" keeps the ImageNet *std* as its
    Normalization variance and adds a Rescaling(1/sqrt(std)) after it, a layer the
    weights=None graph lacks (tensorflow/tensorflow#49930). Every V1 backbone here is the
    weights=None graph, so such statistics are folded into the variance (var * std): the same
    outputs, and a graph that does not depend on where the weights came from. Idempotent."""
    import numpy as np

    keras = import_keras()
    for layer in backbone.layers:
        variance = getattr(layer, "adapt_variance", None)
        if not isinstance(layer, keras.layers.Normalization) or variance is None:
            continue
        values = np.asarray(keras.ops.convert_to_numpy(variance))
        std = np.asarray(IMAGENET_STDDEV_RGB, values.dtype)
        if values.shape == std.shape and np.allclose(values, std, rtol=0, atol=1e-6):
            variance.assign(values * std)
        layer.finalize_state()  # the layer keeps a copy of the variance; refresh it
