"""Learning-rate schedules per epoch: the plan (pure Python), the Keras callbacks that apply it,
and a PNG of the planned (and recorded) curve.

Every kind peaks at ``lr_max * global_batch``: ``lr_max`` is a rate per sample of the global
batch, so the same config stays right when the batch or the replica count changes (the Kaggle
TPU recipe's ``1.25e-6 * replicas * batch``). Epochs are 0-based, as Keras callbacks count them.

- ``warmup-exp``: linear from ``lr_start`` to the peak over ``warmup_epochs``, the peak for
  ``sustain_epochs``, then ``(peak - lr_min) * decay**k + lr_min``.
- ``cosine``: the same warmup and sustain, then a half cosine from the peak towards ``lr_min``
  over the remaining epochs (the last epoch stays just above ``lr_min``).
- ``exp-decay``: ``peak * decay**epoch``, never below ``lr_min``; no warmup.
- ``plateau``: starts at the peak; ``ReduceLROnPlateau`` multiplies it by ``plateau_factor``
  after ``plateau_patience`` epochs without improvement, never below ``lr_min``.
- ``constant``: the peak throughout.
"""

from __future__ import annotations

import io
import math
import numbers
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tfrec_tools import fs
from tfrec_tools.errors import ConfigError
from tfrec_tools.quiet import import_keras

if TYPE_CHECKING:
    import keras

SCHEDULES = ("warmup-exp", "cosine", "exp-decay", "plateau", "constant")
MODES = ("min", "max")  # explicit: Keras's "auto" guesses from the metric name
WARMUP_KINDS = ("warmup-exp", "cosine")  # the kinds that use lr_start, warmup and sustain


@dataclass(frozen=True)
class ScheduleConfig:
    """How the learning rate moves over the epochs; defaults are the Kaggle TPU recipe's, for
    fine-tuning pretrained weights. `tfrec train` takes ``kind``, ``lr_max`` and
    ``warmup_epochs`` from the model instead (``train.registry.TrainingDefaults``)."""

    kind: str = "warmup-exp"
    lr_start: float = 1e-6  # first warmup epoch: small enough not to wreck pretrained weights
    lr_max: float = 1.25e-6  # per sample of the global batch: peak = lr_max * global_batch
    lr_min: float = 1e-6  # floor of every decay
    warmup_epochs: int = 5  # long enough for Adam's moment estimates to settle
    sustain_epochs: int = 0  # epochs held at the peak after warmup
    decay: float = 0.8  # warmup-exp / exp-decay: factor per epoch
    plateau_factor: float = 0.2  # plateau: lr multiplier when the monitor stalls
    plateau_patience: int = 3  # plateau: epochs without improvement before a cut

    def __post_init__(self) -> None:
        _require(self.kind in SCHEDULES, "kind", f"one of {', '.join(SCHEDULES)}", self.kind)
        for name in ("lr_start", "lr_min"):
            value = getattr(self, name)
            _require(_is_number(value) and value >= 0, name, "a finite number >= 0", value)
        lr_max = self.lr_max
        _require(_is_number(lr_max) and lr_max > 0, "lr_max", "a finite number > 0", lr_max)
        for name in ("warmup_epochs", "sustain_epochs", "plateau_patience"):
            value = getattr(self, name)
            _require(_is_count(value), name, "an integer >= 0", value)
        _require(_is_number(self.decay) and 0 < self.decay <= 1, "decay", "in (0, 1]", self.decay)
        factor = self.plateau_factor
        _require(_is_number(factor) and 0 < factor < 1, "plateau_factor", "in (0, 1)", factor)


def peak_lr(config: ScheduleConfig, global_batch: int) -> float:
    """The highest planned learning rate, ``config.lr_max * global_batch``.

    Raises:
        ConfigError: ``global_batch`` is not an integer >= 1, or the peak falls below
            ``lr_min`` (or below ``lr_start`` for a schedule that warms up), so the curve
            would run backwards.
    """
    _require(_is_positive_int(global_batch), "global_batch", "an integer >= 1", global_batch)
    peak = float(config.lr_max * global_batch)
    for name in _bounded_by_peak(config):
        if getattr(config, name) > peak:
            raise ConfigError(
                f"`{name}` must be <= the peak lr, lr_max * global_batch = {config.lr_max:g} * "
                f"{global_batch} = {peak:g}. Received: {name}={getattr(config, name)!r}; "
                f"lower {name} or raise lr_max"
            )
    return peak


def lr_at(config: ScheduleConfig, epoch: int, *, epochs: int, global_batch: int) -> float:
    """The learning rate planned for 0-based ``epoch`` of a run of ``epochs`` epochs.

    For ``plateau`` this is the starting lr (the peak): the cuts are decided at run time.

    Raises:
        ConfigError: ``epoch`` < 0, ``epochs`` < 1, or a bad ``global_batch`` (see peak_lr).
    """
    _require(_is_count(epoch), "epoch", "an integer >= 0", epoch)
    _require(_is_positive_int(epochs), "epochs", "an integer >= 1", epochs)
    return float(_planned(config, epoch, epochs, peak_lr(config, global_batch)))


def _planned(config: ScheduleConfig, epoch: int, epochs: int, peak: float) -> float:
    if config.kind == "exp-decay":
        return max(peak * config.decay**epoch, config.lr_min)
    if config.kind not in WARMUP_KINDS:
        return peak
    if epoch < config.warmup_epochs:
        return config.lr_start + (peak - config.lr_start) * epoch / config.warmup_epochs
    after = epoch - config.warmup_epochs - config.sustain_epochs  # epochs into the decay
    if after < 0:
        return peak
    if config.kind == "warmup-exp":
        return (peak - config.lr_min) * config.decay**after + config.lr_min
    remaining = max(epochs - config.warmup_epochs - config.sustain_epochs, 1)
    progress = min(after / remaining, 1.0)
    return config.lr_min + 0.5 * (peak - config.lr_min) * (1 + math.cos(math.pi * progress))


def initial_lr(config: ScheduleConfig, *, global_batch: int) -> float:
    """The learning rate to compile the optimizer with: the plan's epoch 0."""
    return lr_at(config, 0, epochs=1, global_batch=global_batch)  # epoch 0 ignores the length


def lr_callbacks(
    config: ScheduleConfig, *, epochs: int, global_batch: int, monitor: str, mode: str
) -> list[keras.callbacks.Callback]:
    """The Keras callbacks that apply the schedule: a LearningRateScheduler following
    ``lr_at``, or for ``plateau`` a ReduceLROnPlateau on ``monitor`` (``mode`` min or max).

    Raises:
        ConfigError: bad ``epochs``, ``global_batch``, ``monitor`` or ``mode``.
    """
    keras = import_keras()
    check_monitor(monitor, mode)
    lr_at(config, 0, epochs=epochs, global_batch=global_batch)  # validate before training
    if config.kind == "plateau":
        return [
            keras.callbacks.ReduceLROnPlateau(
                monitor=monitor,
                mode=mode,
                factor=config.plateau_factor,
                patience=config.plateau_patience,
                min_lr=config.lr_min,
            )
        ]

    def schedule(epoch: int, lr: float) -> float:  # two arguments: Keras's current API
        return lr_at(config, epoch, epochs=epochs, global_batch=global_batch)

    return [keras.callbacks.LearningRateScheduler(schedule)]


def check_monitor(monitor: str, mode: str) -> None:
    """Raise ConfigError unless ``monitor`` is a metric name and ``mode`` one of MODES."""
    _require(isinstance(monitor, str) and bool(monitor), "monitor", "a metric name", monitor)
    _require(mode in MODES, "mode", f"one of {', '.join(MODES)}", mode)


def plot_schedule(
    config: ScheduleConfig,
    *,
    epochs: int,
    global_batch: int,
    path: str,
    history_lr: list[float] | None = None,
) -> None:
    """Write a PNG of the planned lr per epoch to ``path`` (local or gs://), with the lr
    actually recorded per epoch when ``history_lr`` is given. The title states the kind,
    the peak and the global batch; the x axis counts epochs from 1, as Keras's progress bar."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    _require(_is_positive_int(epochs), "epochs", "an integer >= 1", epochs)
    planned = [lr_at(config, e, epochs=epochs, global_batch=global_batch) for e in range(epochs)]
    peak = peak_lr(config, global_batch)
    figure = Figure(figsize=(9, 4))
    FigureCanvasAgg(figure)
    axis = figure.add_subplot()
    axis.plot(range(1, epochs + 1), planned, "o-", markersize=3, label=_planned_label(config))
    if history_lr:
        axis.plot(range(1, len(history_lr) + 1), history_lr, "x--", label="recorded")
    axis.set_title(
        f"{config.kind}: peak lr {peak:.3g} = {config.lr_max:g} x global batch {global_batch}"
    )
    axis.set_xlabel("epoch")
    axis.set_ylabel("learning rate")
    axis.set_ylim(bottom=0)  # a flat curve stays flat instead of zooming into rounding
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    _write(path, buffer.getvalue())


def _planned_label(config: ScheduleConfig) -> str:
    if config.kind == "plateau":
        return f"start (cut x{config.plateau_factor:g} on plateau, floor {config.lr_min:g})"
    return "planned"


def _write(path: str, data: bytes) -> None:
    folder = "" if fs.is_remote(path) else os.path.dirname(path)  # object stores need none
    if folder:
        os.makedirs(folder, exist_ok=True)
    fs.write_bytes_atomic(path, data)


def _bounded_by_peak(config: ScheduleConfig) -> tuple[str, ...]:
    """The fields that must not exceed the peak for this kind of schedule."""
    names = () if config.kind == "constant" else ("lr_min",)
    if config.kind in WARMUP_KINDS and config.warmup_epochs:
        names += ("lr_start",)
    return names


def _require(ok: bool, name: str, expected: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"`{name}` must be {expected}. Received: {name}={value!r}")


def _is_number(value: Any) -> bool:  # numpy scalars count; bool does not
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    return real and math.isfinite(value)


def _is_count(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0


def _is_positive_int(value: Any) -> bool:
    return _is_count(value) and value >= 1
