"""The Keras 3 preprocessing layers closest to an AugmentConfig, to augment inside the model."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

from tfrec_tools.quiet import import_keras
from tfrec_tools.read.augment import TRUNCATION, AugmentConfig

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)


def augmentation_layers(config: AugmentConfig) -> keras.Sequential:
    """The Keras 3 preprocessing layers closest to ``config``, to augment inside the model.

    Inputs are images on the 0..255 scale (uint8 or float), as the reader yields them; put the
    block before the model's own rescaling. Like every Keras augmentation layer it acts only
    when called with ``training=True`` (``fit``), and outputs float32. The affine layers draw
    uniformly over ``+-2 std`` (the support of ``augment_image``'s truncated normals) and
    interpolate bilinearly. Zoom is approximate: Keras scales by ``1 / (1 + f)``, not ``1 + f``.
    ``RandomSaturation`` scales HSV saturation, where ``augment_image`` blends with grey.

    With no equivalent, these fields are skipped with a logged warning: ``cutout_*`` (no layer
    draws fixed-size squares; ``RandomErasing`` erases one rectangle of random shape), and an
    asymmetric ``contrast`` range centred below 1 (``RandomContrast`` sorts its bounds: it gets
    the symmetric range covering it instead).
    """
    keras = import_keras()
    layers = [layer for build in _LAYER_BUILDERS if (layer := build(config, keras)) is not None]
    if config.cutout_on:
        logger.warning(
            "augmentation_layers: no Keras layer for cutout (cutout_count=%d); skipped",
            config.cutout_count,
        )
    return keras.Sequential(layers or [keras.layers.Identity()], name="augmentation")


# ---- helpers: one layer per operation, None when it is off -----------------------------


def _flip_layer(config: AugmentConfig, keras) -> Any:
    axes = (("horizontal", config.flip_left_right), ("vertical", config.flip_up_down))
    mode = "_and_".join(name for name, on in axes if on)  # e.g. "horizontal_and_vertical"
    return keras.layers.RandomFlip(mode) if mode else None


def _rotation_layer(config: AugmentConfig, keras) -> Any:
    if not config.rotation:
        return None
    turns = min(TRUNCATION * config.rotation / 360, 1.0)
    return keras.layers.RandomRotation(turns, fill_mode=config.fill_mode)


def _shear_layer(config: AugmentConfig, keras) -> Any:
    if not config.shear:
        return None
    slant = math.tan(math.radians(TRUNCATION * config.shear))
    return keras.layers.RandomShear(x_factor=slant, y_factor=0.0, fill_mode=config.fill_mode)


def _zoom_layer(config: AugmentConfig, keras) -> Any:
    if not config.zoom:
        return None
    span = (-TRUNCATION * config.zoom, TRUNCATION * config.zoom)
    return keras.layers.RandomZoom(span, span, fill_mode=config.fill_mode)


def _shift_layer(config: AugmentConfig, keras) -> Any:
    if not config.shift:
        return None
    span = (-TRUNCATION * config.shift, TRUNCATION * config.shift)
    return keras.layers.RandomTranslation(span, span, fill_mode=config.fill_mode)


def _hue_layer(config: AugmentConfig, keras) -> Any:
    # RandomHue shifts by +-factor/2 turns.
    return keras.layers.RandomHue(2 * config.hue, value_range=(0, 255)) if config.hue else None


def _saturation_layer(config: AugmentConfig, keras) -> Any:
    if not config.saturation:
        return None
    # RandomSaturation multiplies saturation by f / (1 - f): factor m is f = m / (1 + m).
    low, high = (m / (1 + m) for m in config.saturation)
    # value_range only bounds the S channel there (Keras 3.15 clips S to it, so (0, 255) lets
    # S exceed 1 and yields negative pixels); HSV is scale-free, so 0..255 inputs are fine.
    return keras.layers.RandomSaturation((low, high), value_range=(0, 1))


def _contrast_layer(config: AugmentConfig, keras) -> Any:
    if not config.contrast:
        return None
    below, above = 1 - config.contrast[0], config.contrast[1] - 1  # range [1 - below, 1 + above]
    if below > above + 1e-9:
        logger.warning(
            "augmentation_layers: RandomContrast cannot draw from %s; using [%g, %g]",
            config.contrast,
            1 - below,
            1 + below,
        )
        above = below
    return keras.layers.RandomContrast((below, above), value_range=(0, 255))


def _brightness_layer(config: AugmentConfig, keras) -> Any:
    if not config.brightness:
        return None
    return keras.layers.RandomBrightness(config.brightness, value_range=(0, 255))


_LAYER_BUILDERS = (
    _flip_layer,
    _rotation_layer,
    _shear_layer,
    _zoom_layer,
    _shift_layer,
    _hue_layer,
    _saturation_layer,
    _contrast_layer,
    _brightness_layer,
)
