"""Seeded, stateless augmentation of decoded images for the tf.data reader, and its Keras twin.

``augment_image(image, config, seed)`` is a pure function of ``(image, seed)``: every random
draw is a ``tf.random.stateless_*`` op on a seed split per operation with
``tf.random.experimental.stateless_split``, so the same seed gives the same output in eager and
graph mode (``Dataset.map``) and switching one operation on or off never changes the draws of
the others. The order is flips -> affine -> colour -> cutout:

- flips, the affine transform and cutout stay in uint8; with an affine transform on, the flips
  only mirror its source indices (no pass of their own);
- colour converts to float32 once: hue (``tf.image.adjust_hue``) when on, then saturation,
  contrast and brightness as one affine colour map (a 3x3 matmul), rounded and clipped back
  to uint8 once (see ``_colour``);
- the affine transform (rotation, shear, zoom, shift about the image centre, H != W allowed) is
  one nearest-neighbour ``tf.gather`` on source indices computed from the inverse matrix, with
  the fill mode applied to the integer indices. On 256x256 uint8 images ``benchmarks/augment.py``
  measured 0.55 CPU ms per image, against 1.60 ms for ``ImageProjectiveTransformV3`` with the
  same matrix (nearest; ~2.9x) and 0.80 ms for ``tf.gather_nd`` on (row, col) pairs, hence a
  flat ``tf.gather`` on ``row * W + col``.

Rotation, shear, zoom and shift are drawn, like the Kaggle reference recipe, from normal
distributions whose std is the config value, but truncated at 2 std
(``tf.random.stateless_truncated_normal``) so that no draw folds the image over (a zoom factor
<= 0) or turns it by a wild angle. Zoom is drawn independently per axis, as in the reference.

``augmentation_layers(config)`` builds the Keras 3 preprocessing-layer equivalent, to run inside
the model on the accelerator. The layers draw uniformly over the same support (+-2 std).

The preview helpers at the end (``read_image``, ``preview_grid``, ``save_png``) serve
``tfrec augment-preview``.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, NamedTuple

from tfrec_tools import fs
from tfrec_tools.errors import ConfigError, DataError, ShardError
from tfrec_tools.quiet import import_tensorflow

if TYPE_CHECKING:
    import keras
    import numpy as np
    import tensorflow as tf
    from PIL import Image

logger = logging.getLogger(__name__)

FILL_MODES = ("constant", "nearest", "reflect", "wrap")  # constant fills with 0 (black)
_LUMA = [[0.299], [0.587], [0.114]]  # Rec. 601 weights of R, G, B in the grey level
TRUNCATION = 2.0  # affine draws are cut at +-2 std (stateless_truncated_normal's fixed cut)
# One seed slot per operation, in this fixed order: an op's draws never depend on the others.
_SLOTS = (
    "flip_left_right",
    "flip_up_down",
    "affine",
    "hue",
    "saturation",
    "contrast",
    "brightness",
    "cutout",
)
# [low, high] of each numeric field; why each upper bound, in the field comments below.
_RANGES = {
    "brightness": (0.0, 1.0),
    "hue": (0.0, 0.5),
    "rotation": (0.0, 180.0),
    "shear": (0.0, 20.0),
    "zoom": (0.0, 0.4),
    "shift": (0.0, 0.5),
    "cutout_probability": (0.0, 1.0),
}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_range(name: str, value: Any, low: float, high: float) -> None:
    if not _is_number(value) or not low <= value <= high:
        raise ConfigError(f"`{name}` must be in [{low:g}, {high:g}]. Received: {name}={value!r}")


def _factor_range(name: str, value: Any) -> tuple[float, float] | None:
    if value is None:
        return None
    pair = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    if len(pair) != 2 or not all(_is_number(v) for v in pair) or not 0 <= pair[0] <= pair[1]:
        raise ConfigError(
            f"`{name}` must be None or (lower, upper) with 0 <= lower <= upper. "
            f"Received: {name}={value!r}"
        )
    return float(pair[0]), float(pair[1])


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations ``augment_image`` applies, and how strongly. Everything is off by
    default; ``PRESETS`` holds named sets (``DEFAULT_AUGMENT`` is what training uses)."""

    flip_left_right: bool = False  # off: not every subject is mirror-symmetric (text, organs)
    flip_up_down: bool = False  # off: right for microscopy/skin/satellite, wrong for scenes
    saturation: tuple[float, float] | None = None  # factor range, e.g. (0.7, 1.3); None: off
    contrast: tuple[float, float] | None = None  # factor range, e.g. (0.8, 1.2); None: off
    brightness: float = 0.0  # max delta on the 0..1 scale, e.g. 0.1; 1 would blank the image
    hue: float = 0.0  # max delta in turns, 0..0.5 (0.5 = half the colour wheel); 0: off
    rotation: float = 0.0  # degrees, std (the reference: 10); <= 180, beyond is the same turn
    shear: float = 0.0  # degrees, std (the reference: 5); <= 20 so tan(2 std) <= ~0.84
    zoom: float = 0.0  # std of the per-axis scale factor around 1 (the reference: 1/8); <= 0.4
    shift: float = 0.0  # std of the shift as a fraction of each side (8 px at 256 px: 1/32)
    fill_mode: str = "reflect"  # pixels the affine pulls from outside: one of FILL_MODES
    cutout_count: int = 0  # black squares per image; 0: off
    cutout_size: float = 0.1  # square side, as a fraction of the shorter image side
    cutout_probability: float = 0.0  # chance that an image gets its squares at all; 0: off

    def __post_init__(self) -> None:
        for name in ("flip_left_right", "flip_up_down"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(
                    f"`{name}` must be true or false. Received: {name}={getattr(self, name)!r}"
                )
        for name in ("saturation", "contrast"):
            object.__setattr__(self, name, _factor_range(name, getattr(self, name)))
        for name, (low, high) in _RANGES.items():
            _check_range(name, getattr(self, name), low, high)
        if self.fill_mode not in FILL_MODES:
            raise ConfigError(
                f"`fill_mode` must be one of {', '.join(FILL_MODES)}. "
                f"Received: fill_mode={self.fill_mode!r}"
            )
        count = self.cutout_count
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ConfigError(
                f"`cutout_count` must be an integer >= 0. Received: cutout_count={count!r}"
            )
        if not _is_number(self.cutout_size) or not 0 < self.cutout_size <= 1:
            raise ConfigError(
                f"`cutout_size` must be in (0, 1]. Received: cutout_size={self.cutout_size!r}"
            )

    @property
    def enabled(self) -> bool:
        """False when every operation is off (``augment_image`` then returns its input)."""
        flips = self.flip_left_right or self.flip_up_down
        return flips or _affine_on(self) or _colour_on(self) or _cutout_on(self)


PRESETS: dict[str, AugmentConfig] = {
    "none": AugmentConfig(),
    # The ecosystem's default for natural images (timm's train transform, fastai's
    # aug_transforms, the Keras examples): a mirror image is the same class, so flip
    # horizontally; small turns, zooms and shifts; mild colour. No vertical flip (a 6 flipped
    # both ways is a 9; skies fall down), no shear, no cutout. Affine values are stds, cut at
    # 2 std: turns within +-10 degrees, zoom within +-10 %, shifts within +-6 % of each side.
    "standard": AugmentConfig(
        flip_left_right=True,
        saturation=(0.9, 1.1),
        contrast=(0.9, 1.1),
        brightness=0.1,
        rotation=5.0,
        zoom=0.05,
        shift=0.03,
        fill_mode="reflect",
    ),
    # The Kaggle TPU reference recipe (SIIM-ISIC melanoma): for subjects with no up or down
    # (skin lesions, cells, satellite tiles). Its spatial_transform clips source indices,
    # hence "nearest". Shift: the reference's 8 px std at the usual 256 px size.
    "kaggle-melanoma": AugmentConfig(
        flip_left_right=True,
        flip_up_down=True,
        saturation=(0.7, 1.3),
        contrast=(0.8, 1.2),
        brightness=0.1,
        rotation=10.0,
        shear=5.0,
        zoom=1 / 8,
        shift=8 / 256,
        fill_mode="nearest",
        cutout_count=5,
        cutout_size=0.1,
        cutout_probability=0.6,
    ),
}
DEFAULT_AUGMENT = "standard"  # what training uses unless told otherwise
# Preset names that once meant other settings: the config.json / model.json of a run saved
# before the settings themselves were stored says "standard" for what is now "kaggle-melanoma".
_RENAMED = {"standard": "kaggle-melanoma"}


def augment_config(name_or_path: str) -> AugmentConfig:
    """The preset called ``name_or_path``, else the JSON file at that path (local or gs://),
    whose keys are ``AugmentConfig`` fields (missing ones keep their defaults).

    Raises:
        ConfigError: unknown preset, unreadable file, unknown key or invalid value.
    """
    if name_or_path in PRESETS:
        return PRESETS[name_or_path]
    if not fs.exists(name_or_path) or fs.isdir(name_or_path):
        raise ConfigError(
            f"`augment` must be a preset ({', '.join(PRESETS)}) or the path of an existing "
            f"JSON file. Received: augment={name_or_path!r}"
        )
    try:
        values = json.loads(fs.read_bytes(name_or_path))
    except (OSError, ValueError) as err:
        raise ConfigError(f"{name_or_path}: not a readable JSON file ({err})") from err
    if not isinstance(values, dict):
        raise ConfigError(f"{name_or_path}: expected a JSON object of AugmentConfig fields")
    allowed = [f.name for f in fields(AugmentConfig)]
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{name_or_path}: unknown key(s) {', '.join(unknown)}. "
            f"Allowed keys: {', '.join(allowed)}"
        )
    try:
        return AugmentConfig(**values)
    except ConfigError as err:
        raise ConfigError(f"{name_or_path}: {err}") from err


def stored_augment(
    value: str | dict[str, Any] | AugmentConfig, *, in_model: AugmentConfig | None = None
) -> AugmentConfig:
    """The AugmentConfig saved in a run's config.json or model.json: its fields, or, in a run
    saved before the settings were stored, the preset name or JSON path given then, read as
    it meant at the time (``in_model``, the model's augmentation layers, when there are).

    Raises:
        ConfigError: invalid fields, or an old run's JSON file that is gone.
    """
    if isinstance(value, AugmentConfig):
        return value
    if isinstance(value, dict):
        return AugmentConfig(**value)
    return in_model or augment_config(_RENAMED.get(value, value))


def augment_name(config: AugmentConfig) -> str:
    """The preset ``config`` equals, else "custom (...)" naming the fields it turns on."""
    for name, preset in PRESETS.items():
        if config == preset:
            return name
    changed = [f.name for f in fields(AugmentConfig) if getattr(config, f.name) != f.default]
    return f"custom ({', '.join(changed)})"


def augment_image(image: tf.Tensor, config: AugmentConfig, seed: tf.Tensor) -> tf.Tensor:
    """One random augmentation of ``image``, fully determined by ``seed``.

    Args:
        image: uint8 ``[H, W, 3]`` (H may differ from W; unknown static sizes are fine).
        config: which operations to apply; ``config.enabled`` False returns ``image`` as is.
        seed: int32 or int64 ``[2]`` stateless seed, e.g. ``(epoch, record_index)``.

    Returns:
        uint8 ``[H, W, 3]``, with the static shape of ``image``.

    Raises:
        DataError: ``image`` is not uint8 or not ``[H, W, 3]``.
        ConfigError: ``seed`` is not an integer tensor of shape ``[2]``.
    """
    tf = import_tensorflow()
    image, seed = _checked_image(image), _checked_seed(seed)
    if not config.enabled:
        return image
    seeds = dict(zip(_SLOTS, tf.unstack(_split(seed, len(_SLOTS)))))
    flips = Flips(
        _coin(seeds["flip_left_right"]) if config.flip_left_right else False,
        _coin(seeds["flip_up_down"]) if config.flip_up_down else False,
    )
    if _affine_on(config):  # the flips ride along in the affine's gather, for free
        affine = random_affine(config, seeds["affine"])
        image = affine_transform(image, affine, fill_mode=config.fill_mode, flips=flips)
    elif config.flip_left_right or config.flip_up_down:
        image = _flip(image, flips)
    if _colour_on(config):
        image = _colour(image, config, seeds)
    if _cutout_on(config):
        image = _cutout(image, config, seeds["cutout"])
    return image


class Affine(NamedTuple):
    """One affine transform about the image centre. Fields are floats or scalar tensors."""

    rotation: Any = 0.0  # degrees, counter-clockwise on screen
    shear: Any = 0.0  # degrees; rows slide sideways in proportion to their height
    zoom_y: Any = 1.0  # scale factor of the height; > 1 magnifies
    zoom_x: Any = 1.0  # scale factor of the width
    shift_y: Any = 0.0  # fraction of the height; > 0 moves the content down
    shift_x: Any = 0.0  # fraction of the width; > 0 moves the content right


def random_affine(config: AugmentConfig, seed: tf.Tensor) -> Affine:
    """The affine transform ``augment_image`` applies for this (already split) seed."""
    tf = import_tensorflow()
    draws = tf.unstack(tf.random.stateless_truncated_normal([6], seed))
    return Affine(
        rotation=config.rotation * draws[0],
        shear=config.shear * draws[1],
        zoom_y=1.0 + config.zoom * draws[2],
        zoom_x=1.0 + config.zoom * draws[3],
        shift_y=config.shift * draws[4],
        shift_x=config.shift * draws[5],
    )


class Flips(NamedTuple):
    """Mirror the image before anything else; bools or scalar bool tensors."""

    left_right: Any = False
    up_down: Any = False


def affine_transform(
    image: tf.Tensor, affine: Affine, *, fill_mode: str = "reflect", flips: Flips | None = None
) -> tf.Tensor:
    """``image`` (any dtype, ``[H, W, C]``) mirrored by ``flips``, then transformed by
    ``affine`` with nearest-neighbour sampling: one gather of the source pixel of every output
    pixel (a flip only mirrors the source indices)."""
    tf = import_tensorflow()
    shape = tf.shape(image)
    rows, cols, inside = source_indices(affine, shape[0], shape[1], fill_mode, flips)
    pixels = tf.gather(tf.reshape(image, [-1, shape[2]]), rows * shape[1] + cols)
    if inside is not None:
        pixels = _zero_where(pixels, ~inside)
    pixels.set_shape(image.shape)
    return pixels


def source_indices(
    affine: Affine,
    height: tf.Tensor,
    width: tf.Tensor,
    fill_mode: str,
    flips: Flips | None = None,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor | None]:
    """int32 ``[H, W]`` row and column of the source pixel of each output pixel, after the
    fill mode; plus, for "constant", the bool mask of sources inside the image (else None).

    ``flips`` mirror the source coordinates (``x -> W - 1 - x``) in the transform itself, so
    they cost no pass over the pixels. Every fill mode is symmetric under that mirror, so this
    equals flipping the image first, except at exact half-pixel ties of the rounding."""
    tf = import_tensorflow()
    t = tf.unstack(transform_vector(affine, height, width))
    flips = flips or Flips()
    if flips.left_right is not False:
        t[:3] = _mirrored(flips.left_right, t[:3], width)
    if flips.up_down is not False:
        t[3:6] = _mirrored(flips.up_down, t[3:6], height)
    ys = tf.range(tf.cast(height, tf.float32))[:, None]
    xs = tf.range(tf.cast(width, tf.float32))[None, :]
    # the offsets join the [H, 1] column before it broadcasts: one full-size add, not three
    cols = tf.cast(tf.floor(t[0] * xs + (t[1] * ys + (t[2] + 0.5))), tf.int32)
    rows = tf.cast(tf.floor(t[3] * xs + (t[4] * ys + (t[5] + 0.5))), tf.int32)
    if fill_mode == "constant":
        inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
        return tf.clip_by_value(rows, 0, height - 1), tf.clip_by_value(cols, 0, width - 1), inside
    return _fill_index(rows, height, fill_mode), _fill_index(cols, width, fill_mode), None


def transform_vector(affine: Affine, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """float32 ``[8]`` output -> source map in ``ImageProjectiveTransformV3`` form
    ``[a0, a1, a2, b0, b1, b2, 0, 0]``: ``x_in = a0 x + a1 y + a2``, ``y_in = b0 x + b1 y + b2``
    in pixel-index coordinates (x: column, y: row)."""
    tf = import_tensorflow()
    f32 = tf.float32
    angle = tf.cast(affine.rotation, f32) * (math.pi / 180)
    slant = tf.tan(tf.cast(affine.shear, f32) * (math.pi / 180))
    cos, sin = tf.cos(angle), tf.sin(angle)
    zoom_y, zoom_x = tf.cast(affine.zoom_y, f32), tf.cast(affine.zoom_x, f32)
    # source = centre + Zoom^-1 Shear^-1 Rotation^-1 (output - centre - shift)
    a0, a1 = (cos - slant * sin) / zoom_x, (-sin - slant * cos) / zoom_x
    b0, b1 = sin / zoom_y, cos / zoom_y
    cy, cx = (tf.cast(height, f32) - 1) / 2, (tf.cast(width, f32) - 1) / 2
    dy = cy + tf.cast(affine.shift_y, f32) * tf.cast(height, f32)
    dx = cx + tf.cast(affine.shift_x, f32) * tf.cast(width, f32)
    a2, b2 = cx - a0 * dx - a1 * dy, cy - b0 * dx - b1 * dy
    return tf.stack([a0, a1, a2, b0, b1, b2, tf.zeros([]), tf.zeros([])])


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
    keras = _import_keras()
    layers = [layer for build in _LAYER_BUILDERS if (layer := build(config, keras)) is not None]
    if _cutout_on(config):
        logger.warning(
            "augmentation_layers: no Keras layer for cutout (cutout_count=%d); skipped",
            config.cutout_count,
        )
    return keras.Sequential(layers or [keras.layers.Identity()], name="augmentation")


# ---- helpers: validation ------------------------------------------------------------------


def _checked_image(image: Any) -> tf.Tensor:
    tf = import_tensorflow()
    image = tf.convert_to_tensor(image)
    rank = image.shape.rank
    if image.dtype != tf.uint8 or (rank is not None and (rank != 3 or image.shape[2] != 3)):
        raise DataError(
            "`image` must be a uint8 tensor of shape [H, W, 3]. "
            f"Received: dtype={image.dtype.name}, shape={image.shape}"
        )
    return image


def _checked_seed(seed: Any) -> tf.Tensor:
    tf = import_tensorflow()
    seed = tf.convert_to_tensor(seed)
    if seed.dtype not in (tf.int32, tf.int64) or not seed.shape.is_compatible_with([2]):
        raise ConfigError(
            "`seed` must be an int32 or int64 tensor of shape [2]. "
            f"Received: dtype={seed.dtype.name}, shape={seed.shape}"
        )
    return tf.cast(seed, tf.int64)  # int32 and int64 spellings of a seed agree


def _affine_on(config: AugmentConfig) -> bool:
    return bool(config.rotation or config.shear or config.zoom or config.shift)


def _colour_on(config: AugmentConfig) -> bool:
    return bool(config.saturation or config.contrast or config.brightness or config.hue)


def _cutout_on(config: AugmentConfig) -> bool:
    return bool(config.cutout_count and config.cutout_probability)


# ---- helpers: the operations --------------------------------------------------------------


def _split(seed: tf.Tensor, num: int) -> tf.Tensor:
    tf = import_tensorflow()
    return tf.random.experimental.stateless_split(seed, num=num)


def _uniform(seed: tf.Tensor, low: float, high: float) -> tf.Tensor:
    tf = import_tensorflow()
    return tf.random.stateless_uniform([], seed, minval=low, maxval=high)


def _fill_index(index: tf.Tensor, size: tf.Tensor, fill_mode: str) -> tf.Tensor:
    """Integer indices brought inside ``[0, size)``; "reflect" repeats the edge pixel
    (``d c b a | a b c d | d c b a``), like Keras and ImageProjectiveTransformV3."""
    tf = import_tensorflow()
    if fill_mode == "nearest":
        return tf.clip_by_value(index, 0, size - 1)
    if fill_mode == "wrap":
        return tf.math.floormod(index, size)
    folded = tf.math.floormod(index, 2 * size)
    return tf.where(folded >= size, 2 * size - 1 - folded, folded)


def _coin(seed: tf.Tensor) -> tf.Tensor:
    """The draw of ``tf.image.stateless_random_flip_*``: flip when uniform(seed) < 0.5."""
    tf = import_tensorflow()
    return tf.random.stateless_uniform([], seed) < 0.5


def _flip(image: tf.Tensor, flips: Flips) -> tf.Tensor:
    tf = import_tensorflow()
    if flips.left_right is not False:
        image = tf.cond(flips.left_right, lambda: tf.reverse(image, [1]), lambda: image)
    if flips.up_down is not False:
        image = tf.cond(flips.up_down, lambda: tf.reverse(image, [0]), lambda: image)
    return image


def _mirrored(flip: Any, row: list[tf.Tensor], size: tf.Tensor) -> list[tf.Tensor]:
    """One coordinate's ``[scale_x, scale_y, offset]`` composed with ``c -> size - 1 - c``
    when ``flip`` (a bool tensor) holds."""
    tf = import_tensorflow()
    last = tf.cast(size, tf.float32) - 1
    mirrored = [-row[0], -row[1], last - row[2]]
    return [tf.where(flip, m, r) for m, r in zip(mirrored, row)]


def _colour(image: tf.Tensor, config: AugmentConfig, seeds: dict[str, tf.Tensor]) -> tf.Tensor:
    """Hue (when on) as ``tf.image.adjust_hue``, then saturation, contrast and brightness as
    one affine colour map ``y = x @ M + offset`` on the 0..255 scale, rounded and clipped back
    to uint8 once. One matmul is ~2.4x cheaper than the three ``tf.image`` ops (0.68 vs 1.66
    CPU ms at 256 px; each full-image op costs ~0.2 ms, so fewer ops is what counts).

    - saturation ``s``: ``grey + s (x - grey)``, grey = Rec. 601 luma (PIL's
      ``ImageEnhance.Color`` and torchvision's definition; ``tf.image.adjust_saturation``
      scales HSV saturation instead: a similar look, not the same pixels);
    - contrast ``c``: ``mean + c (x - mean)`` per channel, as ``tf.image.adjust_contrast``;
    - brightness ``b``: ``x + 255 b``.
    """
    tf = import_tensorflow()
    x = tf.cast(image, tf.float32)
    if config.hue:
        delta = _uniform(seeds["hue"], -config.hue, config.hue)
        x = tf.image.adjust_hue(x * (1 / 255), delta) * 255
    pixels = tf.reshape(x, [-1, 3])
    saturation = _uniform(seeds["saturation"], *config.saturation) if config.saturation else 1.0
    matrix = saturation * tf.eye(3) + (1 - saturation) * tf.tile(_LUMA, [1, 3])
    offset = 0.5  # + 0.5, then saturate_cast's truncation: rounding half up
    if config.contrast:
        contrast = _uniform(seeds["contrast"], *config.contrast)
        mean = tf.reduce_mean(pixels, axis=0, keepdims=True)
        offset += (1 - contrast) * tf.matmul(mean, matrix)
        matrix = contrast * matrix
    if config.brightness:
        offset += 255 * _uniform(seeds["brightness"], -config.brightness, config.brightness)
    coloured = tf.matmul(pixels, matrix) + offset
    return tf.reshape(tf.saturate_cast(coloured, tf.uint8), tf.shape(image))


def _cutout(image: tf.Tensor, config: AugmentConfig, seed: tf.Tensor) -> tf.Tensor:
    """``cutout_count`` squares (centres uniform over the image, clipped at its edges) set to
    0, all or none of them with ``cutout_probability``. The mask is the product of per-square
    row and column bands: ``[H, n] @ [n, W]``, no Python loop."""
    tf = import_tensorflow()
    apply_seed, centre_seed = tf.unstack(_split(seed, 2))
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    shorter = tf.cast(tf.minimum(height, width), tf.float32)
    side = tf.maximum(1, tf.cast(tf.round(config.cutout_size * shorter), tf.int32))
    centres = tf.random.stateless_uniform([2, config.cutout_count], centre_seed)
    top = tf.cast(centres[0] * tf.cast(height, tf.float32), tf.int32) - side // 2
    left = tf.cast(centres[1] * tf.cast(width, tf.float32), tf.int32) - side // 2
    applied = _uniform(apply_seed, 0.0, 1.0) < config.cutout_probability

    def cut() -> tf.Tensor:
        covered = tf.matmul(_band(top, side, height), _band(left, side, width), transpose_a=True)
        return _zero_where(image, covered > 0)

    return tf.cond(applied, cut, lambda: image)


def _zero_where(image: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """``image`` ``[H, W, C]`` with the pixels where ``mask`` ``[H, W]`` is True set to 0.
    Repeating the mask to ``[H, W * C]`` is ~4x faster than broadcasting it over channels."""
    tf = import_tensorflow()
    shape = tf.shape(image)
    rows = tf.reshape(image, [shape[0], -1])
    zeroed = tf.where(tf.repeat(mask, shape[2], axis=1), tf.zeros((), image.dtype), rows)
    return tf.reshape(zeroed, shape)


def _band(start: tf.Tensor, side: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    """float32 ``[n, size]``: 1 where ``start[i] <= position < start[i] + side``."""
    tf = import_tensorflow()
    position = tf.range(size)[None, :]
    start = start[:, None]
    return tf.cast((position >= start) & (position < start + side), tf.float32)


# ---- helpers: Keras layers ----------------------------------------------------------------


def _import_keras():
    import_tensorflow()  # quiet TF start-up first; Keras 3 loads its TF backend
    import keras

    return keras


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


# ---- preview (tfrec augment-preview) ------------------------------------------------------

_TILE_MIN_SIDE = 96  # small images are upscaled (nearest) so pixels and captions stay legible
_CAPTION = 14  # px of caption under each tile
_GAP = 4  # px between tiles


def read_image(files: Sequence[str], index: int, *, image_key: str = "image") -> np.ndarray:
    """The decoded image (uint8 ``[H, W, 3]``) of record number ``index`` counted across
    ``files`` in the given order.

    Raises:
        ConfigError: ``index`` is negative.
        DataError: there are not that many records, or the bytes are not an image.
        ShardError: a file cannot be read, or its record has no bytes under ``image_key``.
    """
    if index < 0:
        raise ConfigError(f"`index` must be >= 0. Received: index={index}")
    remaining = index
    for path in files:
        raw, count = _record_at(path, remaining)
        if raw is not None:
            return _decode_record(raw, path, remaining, image_key)
        remaining -= count
    raise DataError(
        f"`index` must be < {index - remaining}, the number of records in the "
        f"{len(files)} shard file(s). Received: index={index}"
    )


def preview_grid(
    image: np.ndarray, config: AugmentConfig, *, n: int = 8, seed: int = 0
) -> Image.Image:
    """A PIL image: ``image`` then ``n`` augmentations of it (seeds ``[seed, 1]`` ..
    ``[seed, n]``), row by row in a near-square grid, each captioned with its seed."""
    tf = import_tensorflow()
    tensor = tf.convert_to_tensor(image, tf.uint8)
    tiles = [("original", image)]
    for i in range(1, n + 1):
        augmented = augment_image(tensor, config, tf.constant([seed, i], tf.int64))
        tiles.append((f"seed [{seed}, {i}]", augmented.numpy()))
    return _grid(tiles)


def save_png(image: Image.Image, path: str) -> None:
    """Write a PIL image as PNG to ``path`` (local or gs://), creating its folder."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    folder = posixpath.dirname(path) if fs.is_remote(path) else os.path.dirname(path)
    if folder:
        fs.makedirs(folder)
    fs.write_bytes_atomic(path, buffer.getvalue())


def _record_at(path: str, position: int) -> tuple[bytes | None, int]:
    """The record at ``position`` in ``path``, or (None, number of records in the file)."""
    tf = import_tensorflow()
    try:
        found = list(tf.data.TFRecordDataset(path).skip(position).take(1).as_numpy_iterator())
        if found:
            return found[0], 0
        count = tf.data.TFRecordDataset(path).reduce(tf.constant(0, tf.int64), lambda n, _: n + 1)
        return None, int(count)
    except tf.errors.OpError as err:
        raise ShardError(f"{path}: cannot read records ({err.message})") from err


def _decode_record(raw: bytes, path: str, position: int, image_key: str) -> np.ndarray:
    tf = import_tensorflow()
    from google.protobuf.message import DecodeError

    try:
        feature = tf.train.Example.FromString(raw).features.feature
    except DecodeError as err:
        raise ShardError(f"{path}: record {position} is not a tf.train.Example") from err
    if image_key not in feature or not feature[image_key].bytes_list.value:
        raise ShardError(
            f"{path}: record {position} has no image bytes under {image_key!r}. "
            f"Its keys: {', '.join(sorted(feature))}"
        )
    data = feature[image_key].bytes_list.value[0]
    try:
        return tf.io.decode_image(data, channels=3, expand_animations=False).numpy()
    except tf.errors.InvalidArgumentError as err:
        raise DataError(
            f"{path}: record {position}: {image_key!r} is not a decodable image ({err.message})"
        ) from err


def _grid(tiles: list[tuple[str, np.ndarray]]) -> Image.Image:
    from PIL import Image, ImageDraw

    height, width = tiles[0][1].shape[:2]
    scale = max(1, math.ceil(_TILE_MIN_SIDE / min(height, width)))
    tile_w, tile_h = width * scale, height * scale
    cols = math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / cols)
    size = (cols * (tile_w + _GAP) + _GAP, rows * (tile_h + _CAPTION + _GAP) + _GAP)
    grid = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(grid)
    for k, (caption, pixels) in enumerate(tiles):
        x = _GAP + (k % cols) * (tile_w + _GAP)
        y = _GAP + (k // cols) * (tile_h + _CAPTION + _GAP)
        grid.paste(Image.fromarray(pixels).resize((tile_w, tile_h), Image.NEAREST), (x, y))
        draw.text((x, y + tile_h + 1), caption, fill="black")
    return grid
