"""The learning-rate range test (Leslie Smith 2015; fastai's ``lr_find``): a fresh model trains
on one fold's training shards for ``steps`` batches (100 by default) while the learning rate grows
exponentially from ``lr_start`` to ``lr_end``; the smoothed loss against the rate suggests a
peak learning rate for the schedule.

Per batch the callback sets the rate, then records the batch loss and its exponential moving
average (beta 0.98, bias-corrected); the test stops early once that average exceeds 4x its best
(or the loss is not finite). The suggestion is fastai's "valley" rule (the default of
``Learner.lr_find`` since fastai 2.5) on the smoothed losses, without the first tenth of the
planned steps (the average is still settling there) and cut at the lowest one: the longest
strictly decreasing subsequence ending at that minimum, of length L, is taken to span the L
points before it, and the rate halfway through them is the suggestion. It lands on the falling
slope, below the rate of the lowest loss, without the noise of a steepest-gradient pick. The
cut is ours: fastai runs ``valley`` over the whole curve, where a second dip after the
divergence began can stretch the subsequence and put its midpoint on the minimum itself.

Learning rates of this project are per sample of the global batch (``ScheduleConfig.lr_max``):
the suggestion is reported both ways, ``lr`` (absolute) and ``lr_max = lr / global_batch``.
"""

from __future__ import annotations

import io
import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from tfrec_tools import fs, naming
from tfrec_tools.errors import ConfigError
from tfrec_tools.quiet import import_keras
from tfrec_tools.read.augment import AugmentConfig, augment_config
from tfrec_tools.train.config import SEED_MAX
from tfrec_tools.train.models import ModelConfig
from tfrec_tools.urls import check_url

log = logging.getLogger(__name__)
Say = Callable[[str], None]

DEFAULT_STEPS = 100  # fastai's num_it: ~12 batches per decade over the default 8 decades
MIN_STEPS = 10  # the rule skips a tenth and needs a run of several points after that
BETA = 0.98  # fastai's loss EMA: ~50 batches of memory, smooths batch-to-batch noise
STOP_FACTOR = 4.0  # fastai's stop_div: the smoothed loss above 4x its best has diverged
SKIP_FRACTION = 10  # the rule (and the stop) ignore the first steps // 10 points, as fastai
RULE = "valley"
JSON_NAME = "lr_find.json"
PNG_NAME = "lr_find.png"


@dataclass(frozen=True)
class LrFindConfig:
    """An LR range test on fold ``fold``'s training shards; steps and rates are fastai's."""

    shards: tuple[str, ...]  # training shards: files, folders or globs
    model: ModelConfig = field(default_factory=ModelConfig)
    image_size: tuple[int, int] | None = None  # None: the size stored in the manifest
    # per replica, as `tfrec train`; None: the model's default for its weights, the batch
    # `tfrec train` will use, so the suggestion is measured at the batch it is used at
    batch_size: int | None = None
    steps: int = DEFAULT_STEPS  # batches, one learning rate each
    lr_start: float = 1e-7  # absolute; far below any useful rate
    lr_end: float = 10.0  # absolute; far above: the loss diverges before it is reached
    fold: int = 0  # train on this fold's training shards (the other folds)
    num_folds: int | None = None  # foreign shards (no folds stored): K-fold over files
    # as `tfrec train --augment`: a preset name or a JSON file, resolved to its AugmentConfig
    augment: str | AugmentConfig = "standard"
    seed: int = 42

    def __post_init__(self) -> None:
        if not self.shards:
            raise ConfigError("`shards` must name at least one shard file, folder or glob")
        if not isinstance(self.augment, AugmentConfig):  # fail before TensorFlow loads
            object.__setattr__(self, "augment", augment_config(self.augment))
        if self.batch_size is None:
            batch_size = self.model.training_defaults().batch_size
            object.__setattr__(self, "batch_size", batch_size)
        if self.batch_size < 1:
            raise ConfigError(f"`batch_size` must be >= 1. Received: batch_size={self.batch_size}")
        if self.steps < MIN_STEPS:
            raise ConfigError(f"`steps` must be >= {MIN_STEPS}. Received: steps={self.steps}")
        if not (math.isfinite(self.lr_start) and self.lr_start > 0):
            raise ConfigError(f"`lr_start` must be > 0. Received: lr_start={self.lr_start}")
        if not (math.isfinite(self.lr_end) and self.lr_end > self.lr_start):
            raise ConfigError(
                f"`lr_end` must be > lr_start ({self.lr_start:g}). Received: lr_end={self.lr_end}"
            )
        if self.fold < 0:
            raise ConfigError(f"`fold` must be >= 0. Received: fold={self.fold}")
        if self.num_folds is not None and self.num_folds < 2:
            raise ConfigError(f"`num_folds` must be >= 2. Received: num_folds={self.num_folds}")
        if not 0 <= self.seed <= SEED_MAX:
            raise ConfigError(f"`seed` must be in 0..{SEED_MAX}. Received: seed={self.seed}")
        for path in self.shards:
            check_url(path, "shards")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Suggestion:
    """The suggested learning rate, absolute (``lr``) and per sample (``lr_max``)."""

    lr: float  # absolute: the peak of a schedule at ``global_batch``
    index: int  # into LrFindResult.lrs
    global_batch: int
    rule: str = RULE

    @property
    def lr_max(self) -> float:
        """What `tfrec train --lr-max` takes: the rate per sample of the global batch."""
        return self.lr / self.global_batch


@dataclass(frozen=True)
class LrFindResult:
    """One point per batch run; ``suggestion`` None when the loss never fell."""

    config: LrFindConfig
    global_batch: int
    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    smoothed: tuple[float, ...]
    stopped_early: bool  # the smoothed loss diverged (or the loss was not finite)
    suggestion: Suggestion | None

    def to_json(self) -> dict[str, Any]:
        suggestion = self.suggestion
        return {
            "lrs": list(self.lrs),
            "losses": [_finite_or_none(x) for x in self.losses],
            "smoothed": [_finite_or_none(x) for x in self.smoothed],
            "steps_run": len(self.lrs),
            "stopped_early": self.stopped_early,
            "global_batch": self.global_batch,
            "suggestion": None
            if suggestion is None
            else {**asdict(suggestion), "lr_max": suggestion.lr_max},
            "settings": self.config.to_json(),
        }


# -- the test, without TensorFlow ----------------------------------------------------------


def lr_range(start: float, end: float, steps: int) -> np.ndarray:
    """``steps`` rates growing exponentially from ``start`` to ``end`` (both included)."""
    return start * (end / start) ** (np.arange(steps) / (steps - 1))


class RangeRecorder:
    """Per batch: the learning rate, the loss and its bias-corrected moving average; says when
    the test should stop. The first ``settle`` points never count as the best: the average of a
    few noisy batches can be one lucky low batch, and 4x that stops a healthy run at once."""

    def __init__(
        self, beta: float = BETA, stop_factor: float = STOP_FACTOR, settle: int = 0
    ) -> None:
        self.beta, self.stop_factor, self.settle = beta, stop_factor, settle
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.stopped_early = False
        self._average = 0.0
        self._best = math.inf

    def record(self, lr: float, loss: float) -> bool:
        """Add one batch; True when the test should stop: the loss is not finite, or the
        smoothed loss exceeds ``stop_factor`` x its best so far."""
        loss = float(loss)
        self._average = self.beta * self._average + (1 - self.beta) * loss
        smoothed = self._average / (1 - self.beta ** (len(self.losses) + 1))
        self.lrs.append(float(lr))
        self.losses.append(loss)
        self.smoothed.append(smoothed)
        if len(self.losses) > self.settle:
            self._best = min(self._best, smoothed)
        self.stopped_early = not math.isfinite(smoothed) or smoothed > self.stop_factor * self._best
        return self.stopped_early


def valley_index(losses: Sequence[float]) -> int | None:
    """fastai's ``valley``: the index halfway through the longest decreasing run of
    ``losses`` (the longest strictly decreasing subsequence, taken to start its length before
    its end, as fastai does); None for fewer than two points."""
    values = np.asarray(losses, dtype=float)
    if len(values) < 2:
        return None
    run = np.ones(len(values), dtype=int)  # longest decreasing subsequence ending at i
    for i in range(1, len(values)):
        higher = values[:i] > values[i]
        if higher.any():
            run[i] = run[:i][higher].max() + 1
    end = int(np.argmax(run))  # the first index where the longest run ends
    start = end - int(run[end])
    third = (end - start) / 3
    return max(0, start + int(third) + int(third / 2))


def suggest(
    lrs: Sequence[float], smoothed: Sequence[float], *, global_batch: int, skip: int
) -> Suggestion | None:
    """The valley rule on the smoothed losses from point ``skip`` up to the lowest finite one
    (the first, if tied); None when the loss never fell there."""
    values = np.asarray(smoothed, dtype=float)
    bad = np.flatnonzero(~np.isfinite(values))
    usable = values[skip : bad[0] if len(bad) else len(values)]
    if not len(usable):
        return None
    # Up to the minimum: a second dip after the divergence began (noisy batches) would
    # otherwise lengthen fastai's subsequence and move its midpoint onto the minimum.
    index = valley_index(usable[: int(np.argmin(usable)) + 1])
    if index is None:
        return None
    return Suggestion(float(lrs[skip + index]), skip + index, global_batch)


def require_suggestion(result: LrFindResult) -> Suggestion:
    """The suggestion of ``result``.

    Raises:
        ConfigError: the loss never fell over the points the rule looks at.
    """
    if result.suggestion is not None:
        return result.suggestion
    last = result.lrs[-1] if result.lrs else result.config.lr_start
    raise ConfigError(
        f"lr-find: the smoothed loss never fell over {len(result.lrs)} steps (lr "
        f"{result.config.lr_start:g} to {last:g}): lower --lr-start, raise --steps, or raise "
        "--batch-size if the batch losses are noisy"
    )


def range_note(result: LrFindResult) -> str | None:
    """A warning when the range did not reach divergence and the loss was lowest at its end:
    the best rate may lie beyond ``lr_end``."""
    smoothed = np.asarray(result.smoothed, dtype=float)
    if result.stopped_early or len(smoothed) < 2 or np.nanargmin(smoothed) != len(smoothed) - 1:
        return None
    return (
        f"the loss was still falling at the last lr ({result.lrs[-1]:g}): "
        "raise --lr-end to see where it diverges"
    )


# -- the test, with TensorFlow -------------------------------------------------------------


def find_lr(config: LrFindConfig, say: Say = log.info, *, device: Any = None) -> LrFindResult:
    """Run the LR range test: a fresh model, fold ``config.fold``'s training shards, one
    learning rate per batch from ``config.lr_start`` to ``config.lr_end``.

    Args:
        device: a ``strategy.Device`` already detected (a caller that trains next must not
            start a TPU twice); None: ``detect_device(multi_worker=False)``.

    Returns:
        The rates, losses, smoothed losses and the suggestion (see the module docstring).

    Raises:
        ConfigError: options the shards cannot satisfy (fold, size, labels), a bad model, or
            fewer training records than one global batch.
        ShardError: unreadable shards.
    """
    from tfrec_tools.train.data import chosen_splits, training_data
    from tfrec_tools.train.strategy import detect_device

    keras = import_keras()

    data = training_data(
        config.shards, image_size=config.image_size, num_folds=config.num_folds, seed=config.seed
    )
    split = chosen_splits(data, (config.fold,))[0]
    device = device or detect_device(multi_worker=False)
    global_batch = device.global_batch(config.batch_size)
    _check_records(split, global_batch)
    keras.utils.set_random_seed(config.seed)
    model = _compiled_model(config, data, device)
    lrs = lr_range(config.lr_start, config.lr_end, config.steps)
    say(
        f"lr-find: fold {split.fold}, {len(split.train)} train shards, global batch "
        f"{global_batch}, {config.steps} steps from lr {config.lr_start:g} to {config.lr_end:g}"
    )
    skip = config.steps // SKIP_FRACTION
    recorder = RangeRecorder(settle=skip)
    model.fit(
        _train_dataset(config, data, split, global_batch),
        epochs=config.steps,  # one batch per epoch: the logged loss is that batch's alone
        steps_per_epoch=1,  # (with several, Keras logs the running mean of the epoch)
        shuffle=False,  # the reader shuffles
        callbacks=[_range_callback(lrs, recorder)],
        verbose=0,
    )
    return LrFindResult(
        config,
        global_batch,
        tuple(recorder.lrs),
        tuple(recorder.losses),
        tuple(recorder.smoothed),
        recorder.stopped_early,
        suggest(recorder.lrs, recorder.smoothed, global_batch=global_batch, skip=skip),
    )


def _check_records(split, global_batch: int) -> None:
    records = naming.count_data_items(split.train)
    if records < global_batch:
        raise ConfigError(
            f"fold {split.fold} has {records} training records, fewer than one global batch "
            f"of {global_batch}: lower --batch-size"
        )


def _compiled_model(config: LrFindConfig, data, device) -> Any:
    from tfrec_tools.train.models import build_model, compile_model

    with device.strategy.scope():
        model = build_model(config.model, data.inputs, data.heads)
        compile_model(model, data.heads, learning_rate=config.lr_start)
    return model


def _train_dataset(config: LrFindConfig, data, split, global_batch: int) -> Any:
    """The training reader of `tfrec train` for this fold: shuffled, repeated, augmented."""
    from tfrec_tools.read.augment import PRESETS
    from tfrec_tools.read.pipeline import ReadConfig, get_dataset

    read = ReadConfig(
        batch_size=global_batch,
        image_size=data.image_size,
        training=True,
        # augmented in the model (ModelConfig.augment): the host ships the plain images
        augment=PRESETS["none"] if config.model.augment else config.augment,
        seed=config.seed + split.fold,  # as fold k of `tfrec train` reads
    )
    return get_dataset(split.train, read, data.manifest)


def _range_callback(lrs: np.ndarray, recorder: RangeRecorder) -> Any:
    """A Keras callback that sets ``lrs[step]`` before each batch and records its loss."""
    keras = import_keras()

    class LrRange(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch: int, logs=None) -> None:
            self.model.optimizer.learning_rate.assign(float(lrs[len(recorder.lrs)]))

        def on_train_batch_end(self, batch: int, logs=None) -> None:
            loss = float((logs or {}).get("loss", math.nan))
            if recorder.record(lrs[len(recorder.lrs)], loss):
                self.model.stop_training = True

    return LrRange()


# -- outputs -------------------------------------------------------------------------------


def save_lr_find(result: LrFindResult, out_dir: str) -> tuple[str, str]:
    """Write ``lr_find.png`` (loss vs lr, log x, the suggestion marked) and ``lr_find.json``
    (every point, the suggestion and the settings) into ``out_dir`` (created; local or gs://).

    Returns:
        The paths of the PNG and the JSON file.
    """
    fs.makedirs(out_dir)
    png, data = fs.join(out_dir, PNG_NAME), fs.join(out_dir, JSON_NAME)
    fs.write_bytes_atomic(png, _plot(result))
    text = json.dumps(result.to_json(), indent=2, allow_nan=False)
    fs.write_bytes_atomic(data, text.encode("utf-8"))
    return png, data


def suggestion_line(suggestion: Suggestion) -> str:
    """``suggested --lr-max 6.2e-06 (peak 0.0001 at global batch 16)``"""
    return (
        f"suggested --lr-max {suggestion.lr_max:.2g} (peak {suggestion.lr:.2g} at global batch "
        f"{suggestion.global_batch})"
    )


def _plot(result: LrFindResult) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.5))
    FigureCanvasAgg(figure)
    axis = figure.add_subplot()
    axis.plot(result.lrs, result.losses, color="0.75", linewidth=0.8, label="batch loss")
    axis.plot(result.lrs, result.smoothed, color="C0", label=f"smoothed (beta {BETA:g})")
    suggestion = result.suggestion
    if suggestion is not None:
        point = result.smoothed[suggestion.index]
        axis.axvline(suggestion.lr, color="C3", linestyle="--", linewidth=0.8)
        axis.plot([suggestion.lr], [point], "o", color="C3", label=f"{RULE}: {suggestion.lr:.2g}")
        axis.set_title(suggestion_line(suggestion))
    axis.set_xscale("log")
    axis.set_ylim(*_loss_limits(result))
    axis.set_xlabel("learning rate (absolute)")
    axis.set_ylabel("training loss")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def _loss_limits(result: LrFindResult) -> tuple[float, float]:
    """From just under the lowest smoothed loss to a bit above the highest one before it: the
    diverging tail and raw-loss spikes would otherwise flatten the interesting part."""
    values = np.asarray(result.smoothed, dtype=float)
    values = values[np.isfinite(values)]
    if not len(values):
        return 0.0, 1.0
    low = float(values.min())
    high = float(values[: int(np.argmin(values)) + 1].max())
    margin = 0.1 * (high - low) or 0.1 * abs(high) or 1.0
    return low - margin, high + 3 * margin


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
