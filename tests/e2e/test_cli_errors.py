"""One `Error:` line for what reaches the CLI (OSError, UnicodeError, MemoryError, Ctrl-C), and
outputs that would overwrite an input refused: a tiny run trained once for the module."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tests.helpers import make_dataset, make_image
from tfrec_tools.cli import COMMANDS, INTERRUPT_HINT, main

FAST = ["--epochs", "1", "--batch-size", "8", "--lr-max", "1e-4", "--warmup-epochs", "0"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def last_line(result) -> str:
    """The error line (after predict's "run: RUN", or train's "training set: ...")."""
    return result.output.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """24 labeled 16x16 images in 2 folds and 4 unlabeled ones, both in one folder."""
    root = tmp_path_factory.mktemp("data")
    images, csv_path = make_dataset(root, n=24, groups=6, size=(16, 16))
    out = root / "shards"
    args = ("--size", "16", "--shards", "2", "--workers", "1")
    assert run("build", images, csv_path, "--out", out, "--folds", "2", *args).exit_code == 0
    for i in range(4):
        make_image(root / "test" / f"t{i}.jpg", (16, 16), seed=100 + i)
    assert run("build", root / "test", "--out", out, "--name", "test", *args).exit_code == 0
    return out


@pytest.fixture(scope="module")
def trained(shards, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "run"
    result = run("train", f"{shards}/train*.tfrec", "--out", run_dir, "--quiet", *FAST)
    assert result.exit_code == 0, result.output
    return run_dir


def copy_of(path: Path, tmp_path: Path) -> Path:
    shutil.copytree(path, tmp_path / path.name)
    return tmp_path / path.name


# --- outputs that are inputs ---------------------------------------------------------------


@pytest.mark.parametrize(
    "victim, what",
    [
        ("shards/test00-2.tfrec", "the input shard"),
        ("shards/test.manifest.json", "the manifest"),
        ("run/model.json", "the run's file"),
        ("run/fold-1.weights.h5", "the run's file"),
    ],
)
def test_predict_refuses_an_out_that_is_one_of_its_inputs(shards, trained, victim, what):
    out = {"shards": shards, "run": trained}[victim.split("/")[0]] / victim.split("/")[1]
    before = out.read_bytes()
    result = run("predict", f"{shards}/test*.tfrec", "--run", trained, "--out", out)
    assert result.exit_code == 1
    assert last_line(result) == (
        f"Error: --out {out} and {what} {out} are the same file: choose another --out"
    )
    assert out.read_bytes() == before


def test_predict_into_a_folder_writes_the_default_name_there(shards, trained, tmp_path):
    result = run("predict", shards, "--run", trained, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions-test-tta1.csv"]
    assert last_line(result) == f"predictions: {tmp_path / 'predictions-test-tta1.csv'}"


def test_train_refuses_a_run_folder_or_report_dir_that_is_a_file(shards, tmp_path):
    manifest = shards / "train.manifest.json"
    result = run("train", shards, "--out", manifest, *FAST)
    assert last_line(result) == (
        f"Error: --out {manifest} is a file: the run folder must be a folder (new, or holding "
        "an earlier run); choose another --out"
    )
    result = run("train", shards, "--out", tmp_path / "r", "--report-dir", manifest, *FAST)
    assert last_line(result) == (
        f"Error: --report-dir {manifest} is a file: the report goes into a folder (created if "
        "missing); choose another --report-dir"
    )


def test_train_refuses_a_report_dir_named_like_a_file_of_the_run(shards, tmp_path):
    report_dir = tmp_path / "r" / "oof.csv"
    result = run("train", shards, "--out", tmp_path / "r", "--report-dir", report_dir, *FAST)
    assert last_line(result) == (
        f"Error: --report-dir {report_dir} is where the run writes its oof.csv: choose another "
        "--report-dir"
    )


# --- damaged runs and shards ----------------------------------------------------------------


def test_predict_names_a_swapped_weights_file(shards, trained, tmp_path):
    run_dir = copy_of(trained, tmp_path)
    shutil.copy(run_dir / "fold-0.weights.h5", run_dir / "fold-1.weights.h5")
    result = run("predict", shards, "--run", run_dir, "--out", tmp_path / "p.csv")
    assert last_line(result) == (
        f"Error: {run_dir / 'fold-1.weights.h5'} is not the file fold 1 saved (its SHA-256 "
        "differs from the one in model.json): the run may be damaged; train that fold again, "
        "or copy the file back from where the run was made"
    )


def test_predict_names_a_truncated_weights_file_of_an_older_run(shards, trained, tmp_path):
    run_dir = copy_of(trained, tmp_path)
    card = json.loads((run_dir / "model.json").read_text())
    del card["weights_sha256"]  # a run made before the checksums were kept
    (run_dir / "model.json").write_text(json.dumps(card))
    weights = run_dir / "fold-1.weights.h5"
    weights.write_bytes(weights.read_bytes()[:2000])
    result = run("predict", shards, "--run", run_dir, "--out", tmp_path / "p.csv")
    assert result.exit_code == 1
    assert last_line(result).startswith(f"Error: {weights} could not be loaded (")
    assert last_line(result).endswith(
        "): the run may be damaged; train that fold again, or copy the file back from where "
        "the run was made"
    )


def test_predict_names_the_shards_of_an_undecodable_image(shards, trained, tmp_path):
    import tensorflow as tf

    copy = copy_of(shards, tmp_path)
    victim = copy / "test00-2.tfrec"
    records = [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(victim)]
    records[0].features.feature["image"].bytes_list.value[0] = b"\xff\xd8 not a JPEG"
    with tf.io.TFRecordWriter(str(victim)) as writer:
        for record in records:
            writer.write(record.SerializeToString())
    result = run("predict", f"{copy}/test*.tfrec", "--run", trained, "--out", tmp_path / "p.csv")
    assert result.exit_code == 1
    line = last_line(result)
    files = f"{copy}/test00-2.tfrec, {copy}/test01-2.tfrec"
    assert line.startswith(f"Error: reading the shards to predict ({files}) failed: ")
    assert "Unknown image file format" in line
    assert line.endswith(f"run `tfrec inspect --deep {copy}` to find the damaged record")
    assert not (tmp_path / "p.csv").exists()


# --- URL schemes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, field",
    [
        (["build", "foo://x/images", "--out", "{tmp}/s", "--size", "8"], "images"),
        (["build", "{tmp}", "--out", "foo://x/s", "--size", "8"], "out"),
        (["train", "foo://x/shards", "--out", "{tmp}/run"], "shards"),
        (["train", "{shards}", "--out", "foo://x/run"], "run_dir"),
        (["predict", "foo://x/test.tfrec", "--run", "{run}", "--out", "{tmp}/p.csv"], "shards"),
        (["predict", "{shards}", "--run", "{run}", "--out", "foo://x/p.csv"], "out"),
        (["inspect", "foo://x/shards"], "paths"),
    ],
)
def test_an_unknown_url_scheme_is_one_line(shards, trained, tmp_path, args, field):
    args = [a.format(tmp=tmp_path, shards=shards, run=trained) for a in args]
    result = run(*args)
    assert result.exit_code == 1, result.output
    assert last_line(result).startswith(f"Error: unsupported URL scheme 'foo' in {field}='foo://x/")
    assert "gs://" in last_line(result)
    assert "Traceback" not in result.output


# --- the last-resort net --------------------------------------------------------------------


@pytest.mark.parametrize(
    "error, line",
    [
        (
            OSError(errno.EROFS, os.strerror(errno.EROFS), "/mnt/ro/p.csv"),
            "Error: /mnt/ro/p.csv: Read-only file system",
        ),
        (
            OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/mnt/full/p.csv"),
            "Error: /mnt/full/p.csv: No space left on device",
        ),
        (
            UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
            "Error: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte",
        ),
        (
            MemoryError(),
            "Error: out of memory: lower --batch-size (train, predict), --size (train) or "
            "--workers",
        ),
    ],
)
def test_what_reaches_the_cli_is_one_error_line(monkeypatch, tmp_path, error, line):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr("tfrec_tools.train.predict.predict", fail)
    result = run("predict", "x.tfrec", "--run", tmp_path, "--out", tmp_path / "p.csv")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"run: {tmp_path}", line]


@pytest.mark.parametrize("command", ["train", "predict"])
def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, shards, tmp_path, command):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("tfrec_tools.train.predict.predict", interrupt)
    monkeypatch.setattr("tfrec_tools.train.run.run_training", interrupt)
    args = ["--run", tmp_path] if command == "predict" else ["--out", tmp_path / "r", *FAST]
    result = run(command, f"{shards}/train*.tfrec", *args)
    assert result.exit_code == 130
    assert result.output.strip().splitlines()[-1] == "Interrupted."


@click.command("interrupted")
def interrupted_command() -> None:
    click.get_current_context().meta[INTERRUPT_HINT] = "rerun with --resume to finish it"
    raise KeyboardInterrupt


def test_a_command_can_add_a_hint_to_interrupted(monkeypatch):
    monkeypatch.setitem(COMMANDS, "interrupted", f"{__name__}:interrupted_command")
    result = run("interrupted")
    assert result.exit_code == 130
    assert result.output.strip() == "Interrupted. rerun with --resume to finish it"


def test_a_run_folder_name_too_long_is_one_line(shards, tmp_path):
    run_dir = tmp_path / ("r" * 300)
    result = run("train", shards, "--out", run_dir, *FAST)
    assert result.exit_code == 1
    assert last_line(result) == f"Error: {run_dir}: File name too long"


@pytest.mark.parametrize(
    "command, message",
    [
        ("build", "Error: `seed` must be >= 0. Received: seed=-1"),
        ("train", "Invalid value for '--seed': -1 is not in the range 0<=x<=4294967295."),
        ("lr-find", "Invalid value for '--seed': -1 is not in the range 0<=x<=4294967295."),
    ],
)
def test_a_negative_seed_is_refused(shards, tmp_path, command, message):
    first = {"build": tmp_path, "train": shards, "lr-find": shards}[command]
    extra = ["--size", "8"] if command == "build" else []
    result = run(command, first, "--out", tmp_path / "o", "--seed", "-1", *extra)
    assert result.exit_code == (1 if command == "build" else 2)
    assert message in result.output


def test_a_300_character_build_name_is_one_line(tmp_path):
    make_image(tmp_path / "images" / "a.jpg", (8, 8))
    result = run("build", tmp_path / "images", "--out", tmp_path / "s", "--name", "n" * 300)
    assert result.exit_code == 1
    assert result.output.startswith("Error: `name` must be 1 to 200 bytes of printable")
    assert result.output.strip().endswith(
        "Received: name='nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn'... (300 characters)"
    )
    assert len(result.output.strip().splitlines()) == 1
