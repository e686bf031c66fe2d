"""The learning-rate schedule options shared by `tfrec train` and `tfrec lr-plot`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from tfrec_tools.train.schedules import SCHEDULES, ScheduleConfig

_DEFAULT = ScheduleConfig()
_NON_NEGATIVE = click.FloatRange(min=0)
_COUNT = click.IntRange(min=0)

# (flag, ScheduleConfig field, click type, help); defaults come from ScheduleConfig
_OPTIONS = (
    ("--lr-schedule", "kind", click.Choice(SCHEDULES), "Schedule kind."),
    ("--lr-start", "lr_start", _NON_NEGATIVE, "First warmup lr."),
    (
        "--lr-max",
        "lr_max",
        click.FloatRange(min=0, min_open=True),
        "Per sample of the global batch: the peak is this x batch size x replicas.",
    ),
    ("--lr-min", "lr_min", _NON_NEGATIVE, "Floor of the decay."),
    ("--warmup-epochs", "warmup_epochs", _COUNT, "Linear warmup epochs."),
    ("--sustain-epochs", "sustain_epochs", _COUNT, "Epochs held at the peak."),
    (
        "--decay",
        "decay",
        click.FloatRange(0, 1, min_open=True),
        "Factor per epoch (warmup-exp, exp-decay).",
    ),
    (
        "--plateau-factor",
        "plateau_factor",
        click.FloatRange(0, 1, min_open=True, max_open=True),
        "lr factor after a plateau (plateau).",
    ),
    ("--plateau-patience", "plateau_patience", _COUNT, "Epochs without improvement (plateau)."),
)
FIELDS = tuple(field for _, field, _, _ in _OPTIONS)
FLAGS = {field: flag for flag, field, _, _ in _OPTIONS}  # field -> its option, e.g. "--lr-max"
# The fields each model sets for itself (TrainingDefaults): `tfrec train` shows no default.
MODEL_FIELDS = ("kind", "lr_max", "warmup_epochs")


def schedule_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add every schedule option to a click command (as keyword arguments named FIELDS),
    with ScheduleConfig's defaults (the reference fine-tuning recipe)."""
    for flag, field, kind, text in reversed(_OPTIONS):
        command = click.option(
            flag, field, type=kind, default=getattr(_DEFAULT, field), show_default=True, help=text
        )(command)
    return command


class LrMaxType(click.ParamType):
    """A learning rate per sample > 0, or ``auto`` (an LR range test picks it first)."""

    name = "FLOAT|auto"

    def convert(self, value, param, ctx):
        if value == "auto" or isinstance(value, float):
            return value
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if not number > 0:
            self.fail(f"expected a number > 0 or 'auto'. Received: {value!r}", param, ctx)
        return number


def model_schedule_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add every schedule option to a click command with no default: an option left out is
    None, and the model's training defaults (or ScheduleConfig's) decide. ``--lr-max`` also
    takes ``auto``."""
    for flag, field, kind, text in reversed(_OPTIONS):
        default = "the model's" if field in MODEL_FIELDS else f"{getattr(_DEFAULT, field):g}"
        if field == "lr_max":
            kind, text = LrMaxType(), text + " 'auto': run `tfrec lr-find` first, use its pick."
        command = click.option(flag, field, type=kind, help=f"{text} [default: {default}]")(command)
    return command


def schedule_config(options: dict[str, Any]) -> ScheduleConfig:
    """The ScheduleConfig of a command's schedule keyword arguments."""
    return ScheduleConfig(**{field: options[field] for field in FIELDS})
