"""AugmentConfig (which augmentations, how strong), its PRESETS, and resolving a name to one."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

from tfrec_tools import fs
from tfrec_tools.errors import ConfigError

FILL_MODES = ("constant", "nearest", "reflect", "wrap")  # constant fills with 0 (black)
# Rotation, shear, zoom and shift are drawn, like the Kaggle reference recipe, from normal
# distributions whose std is the config value, but cut at 2 std (the fixed cut of
# ``tf.random.stateless_truncated_normal``) so that no draw folds the image over (a zoom factor
# <= 0) or turns it by a wild angle; the Keras layers draw uniformly over the same support.
TRUNCATION = 2.0
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
        return flips or self.affine_on or self.colour_on or self.cutout_on

    @property
    def affine_on(self) -> bool:
        """True when rotation, shear, zoom or shift is on."""
        return bool(self.rotation or self.shear or self.zoom or self.shift)

    @property
    def colour_on(self) -> bool:
        """True when saturation, contrast, brightness or hue is on."""
        return bool(self.saturation or self.contrast or self.brightness or self.hue)

    @property
    def cutout_on(self) -> bool:
        """True when images may get cutout squares (a count and a probability above 0)."""
        return bool(self.cutout_count and self.cutout_probability)


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
