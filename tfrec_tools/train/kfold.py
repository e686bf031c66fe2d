"""The K-fold loop: for each fold, train on the other folds' shards, validate on its own,
keep the best epoch, then predict the fold (out-of-fold) and the test shards with TTA (on
several workers, each predicts its share and the chief gathers them)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np

from tfrec_tools import fs, naming
from tfrec_tools.errors import ConfigError, ShardError
from tfrec_tools.quiet import import_keras, import_tensorflow, tf_error_text
from tfrec_tools.read.pipeline import ReadConfig, get_dataset
from tfrec_tools.train.callbacks import checkpoint_path, fold_callbacks, read_lr
from tfrec_tools.train.config import TrainConfig
from tfrec_tools.train.data import FoldSplit, TrainData
from tfrec_tools.train.distribute import (
    adapt_model,
    fit_scope,
    is_collective,
    validation_steps,
    worker_callbacks,
    worker_index,
    worker_input,
)
from tfrec_tools.train.heads import monitor_for
from tfrec_tools.train.models import build_model, compile_model, freeze_backbone
from tfrec_tools.train.schedules import initial_lr
from tfrec_tools.train.shares import exchange, share_of
from tfrec_tools.train.strategy import Device
from tfrec_tools.train.tta import Predictions, predict_tta

log = logging.getLogger(__name__)
Say = Callable[[str], None]
# Worker k of a multi-worker run seeds its reader with seed + fold + k x this: its own
# shuffling and augmentations, the same ones on every rerun.
WORKER_SEED_STRIDE = 1000


@dataclass(frozen=True)
class FoldResult:
    fold: int
    best_epoch: int  # 0-based
    epochs_run: int
    history: dict[str, list[float]]
    oof: Predictions | None  # None on a worker that is not the chief
    test: Predictions | None


@dataclass(frozen=True)
class Plan:
    """What every fold shares, resolved once."""

    config: TrainConfig
    data: TrainData
    device: Device
    global_batch: int
    test_files: tuple[str, ...]
    monitor: tuple[str, str]
    # Where the callbacks write checkpoints and history: the run folder on the chief, a
    # scratch folder on other workers (they must save too; see fold_callbacks).
    callback_dir: str


@dataclass(frozen=True)
class Phase:
    """Epochs ``[start, stop)`` trained by one ``fit`` call (0-based); ``frozen``: the backbone
    frozen (True), unfrozen (False), or left as built (None: no progressive fine-tuning)."""

    start: int
    stop: int
    frozen: bool | None = None


def fit_phases(config: TrainConfig) -> tuple[Phase, ...]:
    """One phase over every epoch; with ``freeze_epochs`` N, the first N epochs with the
    backbone frozen (the heads learn on fixed features), then the rest with it unfrozen."""
    if not config.freeze_epochs:
        return (Phase(0, config.epochs),)
    return (
        Phase(0, config.freeze_epochs, frozen=True),
        Phase(config.freeze_epochs, config.epochs, frozen=False),
    )


def make_plan(
    config: TrainConfig, data: TrainData, device: Device, test_files, callback_dir: str
) -> Plan:
    return Plan(
        config,
        data,
        device,
        device.global_batch(config.batch_size),
        tuple(test_files),
        monitor_for(data.heads),
        callback_dir,
    )


def run_fold(plan: Plan, split: FoldSplit, say: Say) -> FoldResult:
    """Train one fold, then predict it and the test shards with its best weights. On several
    workers each predicts its share and the chief gathers them; the others return None."""
    config, data, device = plan.config, plan.data, plan.device
    steps = _steps_per_epoch(plan, split)
    say(
        f"fold {split.fold}: {len(split.train)} train shards ({steps} steps/epoch), "
        f"{len(split.valid)} validation shards"
    )
    phases = fit_phases(config)
    with device.strategy.scope():
        model = build_model(config.model, data.inputs, data.heads)
        lr = initial_lr(config.schedule, global_batch=plan.global_batch)
        _compile(plan, model, phases[0], learning_rate=lr)
    adapt_model(model, device)
    with _shard_errors(split):
        history = _fit(plan, split, model, steps, phases)
        best = _best_epoch(history, plan.monitor)
        oof, test = _predict_fold(plan, split, _best_model(plan, split.fold, model), say)
    say(
        f"fold {split.fold}: best epoch {best + 1} of {len(history['loss'])} "
        f"({plan.monitor[0]} {history[plan.monitor[0]][best]:.4f})"
    )
    return FoldResult(split.fold, best, len(history["loss"]), history, oof=oof, test=test)


def _compile(plan: Plan, model, phase: Phase, *, learning_rate: float) -> None:
    """Freeze or unfreeze the backbone as ``phase`` says, then compile (a new optimizer: Keras
    reads which weights train when it compiles). Call inside the strategy's scope."""
    config = plan.config
    if phase.frozen is not None:
        # Pretrained BatchNorm statistics stay as they are (the Keras transfer-learning
        # guide); random ones (--weights none) must be learned, so they train after the freeze.
        pretrained = config.model.start == "fine-tune"
        freeze_backbone(model, frozen=phase.frozen, freeze_batchnorm=pretrained)
    compile_model(
        model,
        plan.data.heads,
        learning_rate=learning_rate,
        loss_weights=dict(config.loss_weights) or None,
        steps_per_execution=config.steps_per_execution,
    )


def _fit(
    plan: Plan, split: FoldSplit, model, steps: int, phases: tuple[Phase, ...]
) -> dict[str, list[float]]:
    """Train through ``phases``. One set of fold callbacks spans them all: one best checkpoint
    over every epoch, one history.csv row per epoch; the schedule follows the epoch number."""
    device = plan.device
    train = worker_input(
        device, split.train, plan.global_batch, _train_dataset(plan, split.fold), split_files=True
    )
    valid = worker_input(
        device, split.valid, plan.global_batch, _eval_dataset(plan), split_files=False
    )
    callbacks = _callbacks(plan, split.fold)
    history: dict[str, list[float]] = {}
    for phase in phases:
        if phase.start:  # the unfreeze: recompile at the rate the schedule has reached
            with device.strategy.scope():
                _compile(plan, model, phase, learning_rate=read_lr(model.optimizer))
        with fit_scope(device):
            logs = model.fit(
                train,
                initial_epoch=phase.start,
                epochs=phase.stop,
                steps_per_epoch=steps,
                validation_data=valid,
                validation_steps=validation_steps(device, split.valid, plan.global_batch),
                shuffle=False,  # the reader shuffles; Keras cannot shuffle a tf.data pipeline
                callbacks=_phase_callbacks(plan, callbacks, phase),
                verbose=plan.config.verbose,
            ).history
        for key, values in logs.items():
            history.setdefault(key, []).extend(values)
    monitored = np.asarray(history.get(plan.monitor[0], []), dtype=float)
    if not np.isfinite(monitored).any():  # the same history on every worker: all stop here
        raise ConfigError(
            f"fold {split.fold}: no epoch gave a usable {plan.monitor[0]} "
            f"({history.get(plan.monitor[0])}), so no checkpoint was written: lower the learning "
            "rate (--lr-max) or check the labels"
        )
    return history


def _predict_fold(
    plan: Plan, split: FoldSplit, model, say: Say
) -> tuple[Predictions | None, Predictions | None]:
    """Out-of-fold and test predictions: every file on one worker; on several, this worker's
    share of the files (see ``shares.py``), gathered by the chief, None on the others."""
    device = plan.device
    index, workers = worker_index(device), device.workers if is_collective(device) else 1
    files = {"oof": split.valid, "test": plan.test_files}
    mine = {kind: share_of(files[kind], index, workers) for kind in files}
    predicted = {
        kind: _predict(plan, model, mine[kind], labeled=kind == "oof") if mine[kind] else None
        for kind in files
    }
    if workers > 1:
        say(
            f"fold {split.fold}: worker {index} of {workers} predicted "
            f"{_count(mine['oof'])} validation images ({_names(mine['oof'])}) and "
            f"{_count(mine['test'])} test images ({_names(mine['test'])})"
        )
        predicted = exchange(device, plan.config.run_dir, split.fold, files, predicted)
    return predicted["oof"], predicted["test"]


def _count(files: tuple[str, ...]) -> int | str:
    """The records of ``files`` by their names; "an unknown number of" when a (foreign) name
    states no count: this is a log line, which must not stop a run."""
    counts = [naming.parse_count(f) for f in files]
    return "an unknown number of" if None in counts else sum(counts)


def _names(files: tuple[str, ...]) -> str:
    return ", ".join(naming.base_name(f) for f in files) or "none"


def _best_model(plan: Plan, fold: int, model):
    """The best epoch's weights (this worker's checkpoint), in ``model``; on several workers
    in a plain copy, so that predicting runs no collective ops. Every worker's checkpoint
    holds the same weights: gradients are all-reduced, batch-norm statistics averaged."""
    if is_collective(plan.device):
        model = build_model(
            replace(plan.config.model, weights=None), plan.data.inputs, plan.data.heads
        )
    with warnings.catch_warnings():
        # After --freeze-epochs the best epoch may be a frozen one, saved with the smaller
        # optimizer of that phase; predicting needs the model's weights only.
        warnings.filterwarnings("ignore", "Skipping variable loading for optimizer")
        model.load_weights(checkpoint_path(plan.callback_dir, fold))
    return model


@contextmanager
def _shard_errors(split: FoldSplit) -> Iterator[None]:
    """TensorFlow's read and decode errors (a corrupted record, an undecodable image) as one
    line that points at `tfrec inspect`, instead of a traceback from inside tf.data."""
    tf = import_tensorflow()
    try:
        yield
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as err:
        raise ShardError(
            f"fold {split.fold}: reading the shards failed ({tf_error_text(err)}); run "
            "`tfrec inspect --deep` on them to find the damaged file"
        ) from err


def _steps_per_epoch(plan: Plan, split: FoldSplit) -> int:
    records = naming.count_data_items(split.train)
    steps = records // plan.global_batch
    if steps < 1:
        raise ConfigError(
            f"fold {split.fold} has {records} training records, fewer than one global batch "
            f"of {plan.global_batch}: lower --batch-size"
        )
    # Keras 3 runs whole executions (ceil(steps / N) x N steps): a multiple of N keeps the
    # count it prints and the one Keras runs the same.
    per_call = plan.config.steps_per_execution
    return max(per_call, steps - steps % per_call)


def _train_dataset(plan: Plan, fold: int):
    def make(files: tuple[str, ...], batch_size: int, worker: int):
        read = ReadConfig(
            batch_size=batch_size,
            image_size=plan.data.image_size,
            training=True,
            augment=plan.config.host_augment,  # none when the model's layers augment
            cache=plan.config.cache,
            seed=plan.config.seed + fold + WORKER_SEED_STRIDE * worker,
        )
        return get_dataset(files, read, plan.data.manifest)

    return make


def _eval_dataset(plan: Plan):
    def make(files: tuple[str, ...], batch_size: int, worker: int):
        return get_dataset(
            files, replace(_eval_read(plan), batch_size=batch_size), plan.data.manifest
        )

    return make


def _eval_read(plan: Plan) -> ReadConfig:
    return ReadConfig(
        batch_size=plan.global_batch,
        image_size=plan.data.image_size,
        training=False,
        seed=plan.config.seed,
    )


def _callbacks(plan: Plan, fold: int) -> list:
    config = plan.config
    return fold_callbacks(
        fold=fold,
        run_dir=plan.callback_dir,
        monitor=plan.monitor[0],
        mode=plan.monitor[1],
        patience=config.patience,
        schedule=config.schedule,
        epochs=config.epochs,
        global_batch=plan.global_batch,
        history_path=fs.join(plan.callback_dir, "history.csv"),
    )


def _phase_callbacks(plan: Plan, callbacks: list, phase: Phase) -> list:
    """New worker callbacks (their all-reduce is built for the weights that do not train) and
    the fold's; early stopping in the last phase only: its patience counts from the unfreeze,
    so a head phase that stalls cannot end the fold before the backbone has trained."""
    keras = import_keras()
    last = phase.stop == plan.config.epochs
    kept = [c for c in callbacks if last or not isinstance(c, keras.callbacks.EarlyStopping)]
    return worker_callbacks(plan.device) + kept


def _best_epoch(history: dict[str, list[float]], monitor: tuple[str, str]) -> int:
    values = np.asarray(history[monitor[0]], dtype=float)
    return int(np.nanargmax(values) if monitor[1] == "max" else np.nanargmin(values))


def _predict(plan: Plan, model, files, *, labeled: bool) -> Predictions:
    read = replace(_eval_read(plan), with_ids=labeled)
    manifest = plan.data.manifest if labeled else None
    return predict_tta(
        model,
        list(files),
        read,
        plan.data.heads,
        passes=plan.config.tta,
        augment=plan.config.augment,
        labeled=labeled,
        manifest=manifest,
    )
