from __future__ import annotations

import csv
import os
from types import SimpleNamespace

import keras
import numpy as np
import pytest

from tfrec_tools.errors import ConfigError
from tfrec_tools.train.callbacks import EpochLog, checkpoint_path, fold_callbacks, read_lr
from tfrec_tools.train.schedules import ScheduleConfig, initial_lr, lr_at, lr_callbacks


def tiny_model(lr: float, metrics=()) -> keras.Model:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr), loss="mse", metrics=metrics)
    return model


def linear_data(n: int = 32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 2)).astype("float32")
    return x, (x @ np.array([[1.0], [-2.0]]) + 0.5).astype("float32")


def read_csv(path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames), list(reader)


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(0)


def test_checkpoint_path():
    assert checkpoint_path("runs/a", 3) == os.path.join("runs/a", "fold-3.weights.h5")
    assert checkpoint_path("gs://bucket/run", 0) == "gs://bucket/run/fold-0.weights.h5"


def test_read_lr_handles_floats_variables_and_schedules():
    decay = keras.optimizers.schedules.ExponentialDecay(1.0, decay_steps=1, decay_rate=0.5)
    assert read_lr(SimpleNamespace(learning_rate=0.25)) == 0.25
    assert read_lr(keras.optimizers.Adam(learning_rate=0.5)) == 0.5  # a Variable
    assert read_lr(keras.optimizers.Adam(learning_rate=decay)) == 1.0  # evaluated at step 0
    assert read_lr(SimpleNamespace(learning_rate=decay, iterations=3)) == 0.125


def test_scheduler_changes_the_optimizer_lr_during_fit(tmp_path):
    config = ScheduleConfig(
        kind="warmup-exp", lr_start=1e-3, lr_max=1e-3, lr_min=1e-4, warmup_epochs=1, decay=0.5
    )
    planned = [lr_at(config, e, epochs=3, global_batch=4) for e in range(3)]
    assert len(set(planned)) == 3  # 1e-3 (warmup), 4e-3 (peak), 2.05e-3 (decay)
    model = tiny_model(initial_lr(config, global_batch=4))
    log = EpochLog(str(tmp_path / "history.csv"), fold=0)
    callbacks = lr_callbacks(config, epochs=3, global_batch=4, monitor="loss", mode="min")
    # the log before the scheduler: it still records the lr each epoch trained with
    model.fit(*linear_data(), batch_size=4, epochs=3, verbose=0, callbacks=[log, *callbacks])
    _, rows = read_csv(tmp_path / "history.csv")
    assert [float(r["lr"]) for r in rows] == pytest.approx(planned, rel=1e-6)
    assert read_lr(model.optimizer) == pytest.approx(planned[-1], rel=1e-6)


def test_plateau_cuts_the_lr_after_patience_epochs_without_improvement(tmp_path):
    # x = 0 and y = 0 with a zero bias: the loss is exactly 0 every epoch, so it never improves
    x, y = np.zeros((8, 2), "float32"), np.zeros((8, 1), "float32")
    config = ScheduleConfig(
        kind="plateau", lr_max=1e-2, lr_min=1e-3, plateau_factor=0.2, plateau_patience=2
    )  # peak 1e-2 at global batch 1
    model = tiny_model(initial_lr(config, global_batch=1))
    callbacks = fold_callbacks(
        fold=0,
        run_dir=str(tmp_path),
        monitor="loss",
        mode="min",
        patience=None,
        schedule=config,
        epochs=6,
        global_batch=1,
        history_path=str(tmp_path / "h.csv"),
    )
    history = model.fit(x, y, batch_size=4, epochs=6, verbose=0, callbacks=callbacks)
    assert history.history["loss"] == [0.0] * 6
    _, rows = read_csv(tmp_path / "h.csv")
    # epoch 0 sets the best; 1 and 2 do not improve -> cut x0.2; 3 and 4 -> cut, floored
    assert [float(r["lr"]) for r in rows] == pytest.approx(
        [1e-2, 1e-2, 1e-2, 2e-3, 2e-3, 1e-3], rel=1e-6
    )


def test_epoch_log_merges_two_folds_with_different_metrics(tmp_path):
    path = str(tmp_path / "history.csv")
    x, y = linear_data()
    constant = ScheduleConfig(kind="constant", lr_max=1e-3)
    for fold, metrics, validation in ((0, ["mae"], (x, y)), (1, ["mse"], None)):
        model = tiny_model(0.0, metrics)
        callbacks = lr_callbacks(constant, epochs=2, global_batch=4, monitor="loss", mode="min")
        model.fit(
            x,
            y,
            batch_size=4,
            epochs=2,
            verbose=0,
            validation_data=validation,
            callbacks=[*callbacks, EpochLog(path, fold)],
        )
    header, rows = read_csv(path)
    assert header == ["fold", "epoch", "lr", "loss", "mae", "val_loss", "val_mae", "mse"]
    assert (tmp_path / "history.csv").read_text().count("fold,epoch") == 1
    assert [(r["fold"], r["epoch"]) for r in rows] == [
        ("0", "0"),
        ("0", "1"),
        ("1", "0"),
        ("1", "1"),
    ]
    assert [r["lr"] for r in rows] == ["0.004"] * 4
    assert rows[0]["mse"] == "" and rows[0]["val_mae"] != ""
    assert rows[2]["mae"] == rows[2]["val_loss"] == "" and float(rows[2]["mse"]) > 0


def test_epoch_log_keeps_rows_of_an_earlier_run_and_writes_values_readably(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("fold,epoch,lr,loss\n0,0,0.1,2.5\n")
    log = EpochLog(str(path), fold=1)
    log.set_model(SimpleNamespace(optimizer=SimpleNamespace(learning_rate=np.float32(2e-5))))
    log.on_train_begin()
    log.on_epoch_begin(0)
    log.on_epoch_end(0, {"loss": np.float32(0.1), "auc": 0.875, "learning_rate": 2e-5})
    assert path.read_text() == "fold,epoch,lr,loss,auc\n0,0,0.1,2.5,\n1,0,2e-05,0.1,0.875\n"


def test_fold_callbacks_checkpoint_the_best_epoch_and_restore_it(tmp_path):
    # mode "max" on a falling loss: epoch 0 is the best, so the restored weights are epoch 0's
    x, y = linear_data()
    model = tiny_model(0.05)
    weights = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: weights.append(model.get_weights())
    )
    callbacks = fold_callbacks(
        fold=2,
        run_dir=str(tmp_path),
        monitor="loss",
        mode="max",
        patience=5,
        schedule=ScheduleConfig(kind="constant", lr_max=0.05),
        epochs=3,
        global_batch=1,
        history_path=str(tmp_path / "history.csv"),
    )
    history = model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[*callbacks, record])
    losses = history.history["loss"]
    assert losses[0] > losses[1] > losses[2]
    assert not np.allclose(weights[0][0], weights[-1][0])
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), weights[0]))
    saved = tiny_model(0.05)
    saved.load_weights(checkpoint_path(str(tmp_path), 2))
    assert all(np.array_equal(a, b) for a, b in zip(saved.get_weights(), weights[0]))
    assert len(read_csv(tmp_path / "history.csv")[1]) == 3


@pytest.mark.parametrize(
    ("patience", "kinds"),
    [
        (3, ["ModelCheckpoint", "EarlyStopping", "LearningRateScheduler", "EpochLog"]),
        (None, ["ModelCheckpoint", "LearningRateScheduler", "EpochLog"]),
    ],
)
def test_fold_callbacks_composition(tmp_path, patience, kinds):
    callbacks = fold_callbacks(
        fold=1,
        run_dir=str(tmp_path),
        monitor="val_auc",
        mode="max",
        patience=patience,
        schedule=ScheduleConfig(),
        epochs=10,
        global_batch=16,
        history_path=str(tmp_path / "history.csv"),
    )
    assert [type(c).__name__ for c in callbacks] == kinds
    for callback in callbacks:
        if isinstance(callback, keras.callbacks.ModelCheckpoint):
            assert callback.filepath == checkpoint_path(str(tmp_path), 1)
            assert callback.save_best_only and callback.save_weights_only
            assert (callback.monitor, callback.mode) == ("val_auc", "max")
        if isinstance(callback, keras.callbacks.EarlyStopping):
            assert callback.restore_best_weights and callback.patience == patience
            assert (callback.monitor, callback.mode) == ("val_auc", "max")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(fold=-1), "`fold` must be an integer >= 0. Received: fold=-1"),
        (dict(patience=-2), "`patience` must be None or an integer >= 0. Received: patience=-2"),
        (dict(mode="auto"), "`mode` must be one of min, max. Received: mode='auto'"),
        (dict(monitor=""), "`monitor` must be a metric name. Received: monitor=''"),
        (dict(global_batch=0), "`global_batch` must be an integer >= 1. Received: global_batch=0"),
    ],
)
def test_fold_callbacks_validation_messages(tmp_path, changes, message):
    arguments = dict(
        fold=0,
        run_dir=str(tmp_path),
        monitor="loss",
        mode="min",
        patience=None,
        schedule=ScheduleConfig(),
        epochs=3,
        global_batch=1,
        history_path=str(tmp_path / "history.csv"),
    )
    with pytest.raises(ConfigError) as err:
        fold_callbacks(**{**arguments, **changes})
    assert str(err.value) == message
