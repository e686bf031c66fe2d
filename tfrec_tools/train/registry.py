"""The backbone registry: how to build each model, what it expects, and how to train it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from tfrec_tools.errors import ConfigError
from tfrec_tools.train.schedules import SCHEDULES, ScheduleConfig

# How uint8 pixels become a backbone's input: "none" passes 0..255 floats (the backbone
# rescales itself, like Keras' EfficientNets); the others are keras.applications'
# imagenet_utils.preprocess_input modes ("caffe": ResNet50, "tf": [-1, 1], "torch").
PREPROCESSING = ("none", "caffe", "tf", "torch")


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
    return sorted(_entries())


def get_backbone(name: str) -> Backbone:
    """Raises:
    ConfigError: no backbone is registered under ``name``."""
    entries = _entries()
    if name not in entries:
        raise ConfigError(f"unknown model {name!r}. Choices: {', '.join(available_models())}")
    return entries[name]


def _entries() -> dict[str, Backbone]:
    """The registry after train/backbones.py is imported: its builders register themselves
    on import (without Keras, which they import when they build)."""
    import tfrec_tools.train.backbones  # noqa: F401

    return _REGISTRY
