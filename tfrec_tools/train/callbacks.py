"""The callbacks of one fold: best-weights checkpoint, early stopping, the learning-rate
schedule, and a per-epoch CSV log shared by every fold of a run."""

from __future__ import annotations

import csv
import io
import numbers
from typing import Any

import numpy as np

from tfrec_tools import fs
from tfrec_tools.errors import ConfigError
from tfrec_tools.quiet import import_keras
from tfrec_tools.train.schedules import ScheduleConfig, check_monitor, lr_callbacks

keras = import_keras()

FIXED_COLUMNS = ("fold", "epoch", "lr")
# Keras's LR callbacks copy the lr into the logs; the `lr` column already holds it.
SKIPPED_LOG_KEYS = frozenset({"lr", "learning_rate"})


def checkpoint_path(run_dir: str, fold: int) -> str:
    """Where fold ``fold``'s best weights live: ``RUN_DIR/fold-{fold}.weights.h5``."""
    return fs.join(run_dir, f"fold-{fold}.weights.h5")


def fold_callbacks(
    *,
    fold: int,
    run_dir: str,
    monitor: str,
    mode: str,
    patience: int | None,
    schedule: ScheduleConfig,
    epochs: int,
    global_batch: int,
    history_path: str,
) -> list[keras.callbacks.Callback]:
    """The callbacks for one fold's ``fit``, in this order: the best-weights checkpoint,
    early stopping that restores the best weights (unless ``patience`` is None), the
    learning-rate callbacks of ``schedule``, and the EpochLog.

    Every worker of a multi-worker run needs the checkpoint callback too: with it on the
    chief alone, the workers' collective ops went out of step at the first save (observed
    with Keras 3.15: a broadcast on the chief met an all-reduce on the other worker).
    Workers other than the chief point ``run_dir`` and ``history_path`` at a scratch folder.

    Raises:
        ConfigError: a negative fold or patience, or a bad monitor, mode or schedule size.
    """
    _check_fold(fold)
    if patience is not None and (
        isinstance(patience, bool) or not isinstance(patience, numbers.Integral) or patience < 0
    ):
        raise ConfigError(
            f"`patience` must be None or an integer >= 0. Received: patience={patience!r}"
        )
    check_monitor(monitor, mode)
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.ModelCheckpoint(
            checkpoint_path(run_dir, fold),
            monitor=monitor,
            mode=mode,
            save_best_only=True,
            save_weights_only=True,
        )
    ]
    if patience is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, mode=mode, patience=patience, restore_best_weights=True
            )
        )
    callbacks += lr_callbacks(
        schedule, epochs=epochs, global_batch=global_batch, monitor=monitor, mode=mode
    )
    callbacks.append(EpochLog(history_path, fold))
    return callbacks


class EpochLog(keras.callbacks.Callback):
    """One CSV row per epoch: ``fold, epoch, lr``, then every log key (loss, metrics,
    val_...). Epochs are 0-based, as Keras counts them; ``lr`` is the learning rate the
    epoch trained with, read from the optimizer at its first batch (after every
    ``on_epoch_begin``, whatever the callback order; before ReduceLROnPlateau's cut).

    Several folds (several EpochLog objects, one after the other) share one file: rows
    already in it are kept, the header is the union of every row's columns in first-seen
    order, and the whole file is rewritten (atomically) at each epoch end. Rows are never
    removed, so a fold run twice into the same file appears twice.
    """

    def __init__(self, path: str, fold: int) -> None:
        super().__init__()
        _check_fold(fold)
        self.path = path
        self.fold = fold
        self._rows: list[dict[str, str]] | None = None  # loaded from `path` on first use
        self._epoch_lr: float | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self._rows is None:
            self._rows = _read_rows(self.path)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch_lr = None

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self._epoch_lr is None:
            self._epoch_lr = read_lr(self.model.optimizer)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        lr = self._epoch_lr if self._epoch_lr is not None else read_lr(self.model.optimizer)
        row = {"fold": str(self.fold), "epoch": str(epoch), "lr": _format(lr)}
        for key, value in (logs or {}).items():
            if key not in SKIPPED_LOG_KEYS:
                row[key] = _format(value)
        if self._rows is None:  # on_epoch_end without on_train_begin: driven by hand
            self._rows = _read_rows(self.path)
        self._rows.append(row)
        _write_rows(self.path, self._rows)


def read_lr(optimizer: Any) -> float:
    """The optimizer's current learning rate as a float, whether ``learning_rate`` is a
    float, a Variable or tensor, or a LearningRateSchedule (evaluated at ``iterations``)."""
    value = optimizer.learning_rate
    if isinstance(value, keras.optimizers.schedules.LearningRateSchedule):
        value = value(optimizer.iterations)
    return float(keras.ops.convert_to_numpy(value))


def _check_fold(fold: int) -> None:
    if isinstance(fold, bool) or not isinstance(fold, numbers.Integral) or fold < 0:
        raise ConfigError(f"`fold` must be an integer >= 0. Received: fold={fold!r}")


def _format(value: Any) -> str:
    """Numbers as the shortest text that reads back to the same value (float32 values, which
    Keras logs hold, as float32: ``2e-05``, not ``1.9999999494757503e-05``)."""
    try:
        number = float(keras.ops.convert_to_numpy(value))
    except (TypeError, ValueError):
        return str(value)
    single = np.float32(number)
    return str(single) if float(single) == number else repr(number)


def _read_rows(path: str) -> list[dict[str, str]]:
    if not fs.exists(path):
        return []
    text = fs.read_bytes(path).decode("utf-8")
    rows = csv.DictReader(io.StringIO(text))
    return [{k: v for k, v in row.items() if k is not None} for row in rows]  # None: extra cells


def _write_rows(path: str, rows: list[dict[str, str]]) -> None:
    columns = list(FIXED_COLUMNS)
    for row in rows:
        columns += [key for key in row if key not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    fs.write_bytes_atomic(path, buffer.getvalue().encode("utf-8"))
