from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from tfrec_tools.cli.lr_plot import lr_plot_command
from tfrec_tools.errors import ConfigError
from tfrec_tools.train.schedules import (
    SCHEDULES,
    ScheduleConfig,
    initial_lr,
    lr_at,
    lr_callbacks,
    peak_lr,
    plot_schedule,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# global_batch 10 and lr_max 1e-4 per sample: the peak is 1e-3 in every case below
WARMUP_EXP = dict(
    kind="warmup-exp",
    lr_start=1e-4,
    lr_max=1e-4,
    lr_min=1e-5,
    warmup_epochs=4,
    sustain_epochs=2,
    decay=0.5,
)
COSINE = dict(kind="cosine", lr_start=0.0, lr_max=1e-4, lr_min=1e-4, warmup_epochs=2)
EXP_DECAY = dict(kind="exp-decay", lr_max=1e-4, lr_min=1e-4, decay=0.5, warmup_epochs=3)


@pytest.mark.parametrize(
    ("fields", "epoch", "expected"),
    [
        (WARMUP_EXP, 0, 1e-4),  # warmup starts at lr_start
        (WARMUP_EXP, 2, 5.5e-4),  # halfway: 1e-4 + 9e-4 * 2/4
        (WARMUP_EXP, 4, 1e-3),  # warmup done: the peak
        (WARMUP_EXP, 5, 1e-3),  # sustain (2 epochs: 4 and 5)
        (WARMUP_EXP, 6, 1e-3),  # decay step 0: (1e-3 - 1e-5) * 0.5**0 + 1e-5
        (WARMUP_EXP, 8, 2.575e-4),  # (1e-3 - 1e-5) * 0.25 + 1e-5
        (WARMUP_EXP, 60, 1e-5),  # decays towards lr_min
        (COSINE, 1, 5e-4),  # warmup from lr_start=0 over 2 epochs
        (COSINE, 2, 1e-3),  # the peak
        (COSINE, 3, 1e-4 + 0.5 * 9e-4 * (1 + 0.7071067811865476)),  # progress 1/4
        (COSINE, 4, 5.5e-4),  # progress 2/4: halfway between peak and lr_min
        (COSINE, 5, 1e-4 + 0.5 * 9e-4 * (1 - 0.7071067811865476)),  # progress 3/4
        (EXP_DECAY, 0, 1e-3),  # no warmup: starts at the peak
        (EXP_DECAY, 1, 5e-4),
        (EXP_DECAY, 3, 1.25e-4),
        (EXP_DECAY, 4, 1e-4),  # 6.25e-5 floored at lr_min
        (dict(kind="constant", lr_max=1e-4), 0, 1e-3),
        (dict(kind="constant", lr_max=1e-4), 5, 1e-3),
        (dict(kind="plateau", lr_max=1e-4), 5, 1e-3),  # the start; cuts happen at run time
    ],
)
def test_lr_at_matches_hand_computed_values(fields, epoch, expected):
    config = ScheduleConfig(**fields)
    assert lr_at(config, epoch, epochs=6, global_batch=10) == pytest.approx(expected, rel=1e-9)


def test_defaults_are_the_kaggle_recipe():
    config = ScheduleConfig()  # 1.25e-6 x 8 replicas x 16 per replica, 5 warmup epochs
    lrs = [lr_at(config, e, epochs=30, global_batch=128) for e in (0, 5, 6)]
    assert lrs == pytest.approx([1e-6, 1.6e-4, (1.6e-4 - 1e-6) * 0.8 + 1e-6], rel=1e-9)


def test_lr_at_returns_python_floats_even_from_int_fields():
    config = ScheduleConfig(kind="exp-decay", lr_max=1, lr_min=0)  # Keras wants a float
    assert type(lr_at(config, 0, epochs=3, global_batch=2)) is float


@pytest.mark.parametrize("kind", SCHEDULES)
def test_peak_scales_linearly_with_the_global_batch(kind):
    config = ScheduleConfig(kind=kind, lr_max=2e-6, warmup_epochs=1, sustain_epochs=1)
    assert peak_lr(config, 1) == pytest.approx(2e-6)
    assert peak_lr(config, 128) == pytest.approx(128 * 2e-6)
    at_peak = [lr_at(config, 1, epochs=10, global_batch=b) for b in (8, 16)]
    if kind != "exp-decay":  # exp-decay has no warmup: epoch 1 is already decayed
        assert at_peak == pytest.approx([8 * 2e-6, 16 * 2e-6])


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (dict(kind="warmup-exp"), 1e-6),  # lr_start
        (dict(kind="cosine", lr_start=3e-6), 3e-6),
        (dict(kind="warmup-exp", warmup_epochs=0), 2e-5),  # no warmup: the peak
        (dict(kind="exp-decay"), 2e-5),
        (dict(kind="plateau"), 2e-5),
        (dict(kind="constant"), 2e-5),
    ],
)
def test_initial_lr_is_the_plans_first_epoch(fields, expected):
    assert initial_lr(ScheduleConfig(**fields), global_batch=16) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            dict(kind="linear"),
            "`kind` must be one of warmup-exp, cosine, exp-decay, plateau, constant. "
            "Received: kind='linear'",
        ),
        (dict(decay=1.5), "`decay` must be in (0, 1]. Received: decay=1.5"),
        (dict(decay=0.0), "`decay` must be in (0, 1]. Received: decay=0.0"),
        (
            dict(lr_start=-1e-6),
            "`lr_start` must be a finite number >= 0. Received: lr_start=-1e-06",
        ),
        (dict(lr_min="1e-6"), "`lr_min` must be a finite number >= 0. Received: lr_min='1e-6'"),
        (dict(lr_max=0.0), "`lr_max` must be a finite number > 0. Received: lr_max=0.0"),
        (dict(lr_max=float("inf")), "`lr_max` must be a finite number > 0. Received: lr_max=inf"),
        (
            dict(warmup_epochs=-1),
            "`warmup_epochs` must be an integer >= 0. Received: warmup_epochs=-1",
        ),
        (
            dict(sustain_epochs=1.5),
            "`sustain_epochs` must be an integer >= 0. Received: sustain_epochs=1.5",
        ),
        (
            dict(plateau_factor=1.0),
            "`plateau_factor` must be in (0, 1). Received: plateau_factor=1.0",
        ),
        (
            dict(plateau_patience=True),
            "`plateau_patience` must be an integer >= 0. Received: plateau_patience=True",
        ),
    ],
)
def test_config_validation_messages(fields, message):
    with pytest.raises(ConfigError) as err:
        ScheduleConfig(**fields)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("fields", "call", "message"),
    [
        (
            dict(lr_min=1e-3),
            lambda c: peak_lr(c, 16),
            "`lr_min` must be <= the peak lr, lr_max * global_batch = 1.25e-06 * 16 = 2e-05. "
            "Received: lr_min=0.001; lower lr_min or raise lr_max",
        ),
        (
            dict(kind="cosine", lr_start=1e-3, lr_min=0.0),
            lambda c: initial_lr(c, global_batch=16),
            "`lr_start` must be <= the peak lr, lr_max * global_batch = 1.25e-06 * 16 = 2e-05. "
            "Received: lr_start=0.001; lower lr_start or raise lr_max",
        ),
        (
            dict(),
            lambda c: peak_lr(c, 0),
            "`global_batch` must be an integer >= 1. Received: global_batch=0",
        ),
        (
            dict(),
            lambda c: lr_at(c, -1, epochs=3, global_batch=1),
            "`epoch` must be an integer >= 0. Received: epoch=-1",
        ),
        (
            dict(),
            lambda c: lr_at(c, 0, epochs=0, global_batch=1),
            "`epochs` must be an integer >= 1. Received: epochs=0",
        ),
    ],
)
def test_run_time_validation_messages(fields, call, message):
    with pytest.raises(ConfigError) as err:
        call(ScheduleConfig(**fields))
    assert str(err.value) == message


def test_peak_bounds_apply_only_where_the_field_is_used():
    # constant ignores lr_min; exp-decay and warmup-free schedules ignore lr_start
    assert peak_lr(ScheduleConfig(kind="constant", lr_min=1.0), 1) == pytest.approx(1.25e-6)
    assert peak_lr(ScheduleConfig(kind="exp-decay", lr_start=1.0), 1) == pytest.approx(1.25e-6)
    assert peak_lr(ScheduleConfig(lr_start=1.0, warmup_epochs=0), 1) == pytest.approx(1.25e-6)


def test_lr_callbacks_follow_lr_at():
    import keras

    config = ScheduleConfig(**WARMUP_EXP)
    (callback,) = lr_callbacks(config, epochs=10, global_batch=10, monitor="loss", mode="min")
    assert isinstance(callback, keras.callbacks.LearningRateScheduler)
    planned = [lr_at(config, e, epochs=10, global_batch=10) for e in range(10)]
    assert [callback.schedule(e, 0.5) for e in range(10)] == planned


def test_lr_callbacks_for_plateau_reduce_on_the_monitor():
    import keras

    config = ScheduleConfig(kind="plateau", plateau_factor=0.5, plateau_patience=4, lr_min=2e-6)
    (callback,) = lr_callbacks(config, epochs=10, global_batch=8, monitor="val_auc", mode="max")
    assert isinstance(callback, keras.callbacks.ReduceLROnPlateau)
    assert (callback.monitor, callback.mode) == ("val_auc", "max")
    assert (callback.factor, callback.patience, callback.min_lr) == (0.5, 4, 2e-6)


def test_lr_callbacks_reject_an_unknown_mode():
    with pytest.raises(ConfigError) as err:
        lr_callbacks(ScheduleConfig(), epochs=3, global_batch=1, monitor="loss", mode="auto")
    assert str(err.value) == "`mode` must be one of min, max. Received: mode='auto'"


def test_plot_schedule_writes_a_png(tmp_path):
    path = tmp_path / "new" / "lr.png"  # the folder is created
    config = ScheduleConfig(kind="cosine")
    plot_schedule(config, epochs=12, global_batch=64, path=str(path), history_lr=[1e-6, 2e-5])
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5000


def test_plot_schedule_checks_before_writing(tmp_path):
    with pytest.raises(ConfigError):
        plot_schedule(ScheduleConfig(), epochs=0, global_batch=1, path=str(tmp_path / "a.png"))
    assert not (tmp_path / "a.png").exists()


def test_cli_writes_the_png_and_prints_the_peak(tmp_path):
    out = tmp_path / "lr.png"
    args = ["--lr-schedule", "cosine", "--epochs", "12", "--batch-size", "16", "--replicas", "8"]
    result = CliRunner().invoke(lr_plot_command, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"wrote {out}\n"
        "peak lr: 0.00016 = lr_max 1.25e-06 x global batch 128 (16 per replica x 8 replicas)\n"
    )
    assert out.read_bytes().startswith(PNG_MAGIC)


def test_cli_passes_every_schedule_field(tmp_path):
    args = ["--lr-max", "1e-4", "--batch-size", "4", "--replicas", "2", "--lr-min", "1e-5"]
    args += ["--lr-start", "2e-5", "--warmup-epochs", "1", "--sustain-epochs", "1"]
    args += ["--decay", "0.5", "--plateau-factor", "0.1", "--plateau-patience", "2"]
    result = CliRunner().invoke(lr_plot_command, [*args, "--out", str(tmp_path / "lr.png")])
    assert result.exit_code == 0, result.output
    assert "peak lr: 0.0008 = lr_max 0.0001 x global batch 8 (4 per replica x 2 replicas)" in (
        result.output
    )


@pytest.mark.parametrize(
    "bad",
    [
        ["--epochs", "0"],
        ["--decay", "1.5"],
        ["--lr-schedule", "linear"],
        ["--replicas", "0"],
        ["--lr-max", "0"],
        ["--plateau-factor", "1"],
    ],
)
def test_cli_bad_values_exit_2(tmp_path, bad):
    result = CliRunner().invoke(lr_plot_command, [*bad, "--out", str(tmp_path / "lr.png")])
    assert result.exit_code == 2
    assert not (tmp_path / "lr.png").exists()


def test_cli_config_error_is_one_line_with_exit_1(tmp_path, monkeypatch):
    from tfrec_tools import cli

    monkeypatch.setitem(cli.COMMANDS, "lr-plot", "tfrec_tools.cli.lr_plot:lr_plot_command")
    out = tmp_path / "lr.png"
    result = CliRunner().invoke(cli.main, ["lr-plot", "--lr-min", "0.1", "--out", str(out)])
    assert result.exit_code == 1
    assert result.output == (
        "Error: `lr_min` must be <= the peak lr, lr_max * global_batch = 1.25e-06 * 16 = 2e-05. "
        "Received: lr_min=0.1; lower lr_min or raise lr_max\n"
    )
    assert not out.exists()


def test_cli_help_imports_neither_tensorflow_nor_matplotlib():
    code = (
        "import sys; from tfrec_tools.cli.lr_plot import lr_plot_command\n"
        "try: lr_plot_command(['--help'])\n"
        "except SystemExit: pass\n"
        "heavy = {'tensorflow', 'keras', 'matplotlib'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "Example: tfrec lr-plot" in result.stdout
