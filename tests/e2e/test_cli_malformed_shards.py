"""`tfrec train` and `tfrec predict` stop with one Error line on shards TensorFlow would crash
on or could not parse (the subprocess `inspect` case is in tests/test_validate.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.helpers import write_foreign_shard
from tests.malformed import JPEG_BYTES, compress, write_frames, write_huge_frame
from tfrec_tools.cli import main

HUGE = "record 0 (byte 0) claims 1152921504606846976 bytes, more than the whole file (112 bytes)"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def foreign_set(folder: Path) -> Path:
    folder.mkdir()
    for f in range(2):
        rows = [{"image_name": f"x{f}{i}", "target": i % 2} for i in range(4)]
        write_foreign_shard(folder / f"train{f:02d}-4.tfrec", rows, seed=f)
    return folder


def test_train_stops_on_a_frame_tensorflow_would_segfault_on(tmp_path):
    shards = foreign_set(tmp_path / "shards")
    bad = write_huge_frame(shards / "train02-1.tfrec")
    result = run("train", shards, "--out", tmp_path / "run", "--num-folds", "2", "--quiet")
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        f"Error: {bad}: {HUGE}: the file is corrupted or not a TFRecord file; rebuild it"
    )


def test_train_stops_on_broken_test_shards_before_training(tmp_path):
    shards = foreign_set(tmp_path / "shards")
    test = compress(write_frames(tmp_path / "test00-1.tfrec", [b"x"]), "gzip")
    args = ("--out", tmp_path / "run", "--num-folds", "2", "--test", test, "--quiet")
    result = run("train", shards, *args)
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith(f"Error: {test}: compressed with gzip")
    assert not (tmp_path / "run" / "fold0").exists()


@pytest.fixture
def card_only_run(tmp_path) -> Path:
    """A run folder holding only its model card: predict checks the shards before any model."""
    from tfrec_tools.read.augment import AugmentConfig
    from tfrec_tools.train.models import ModelConfig
    from tfrec_tools.train.predict import ModelCard, save_card
    from tfrec_tools.train.specs import HeadSpec, InputSpec

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    card = ModelCard(
        ModelConfig(), (HeadSpec("target", "binary"),), InputSpec((12, 12)), {}, (0,),
        AugmentConfig(), 0, {},
    )  # fmt: skip
    save_card(card, str(run_dir))
    return run_dir


def test_predict_stops_on_a_frame_tensorflow_would_segfault_on(tmp_path, card_only_run):
    bad = write_huge_frame(tmp_path / "test00-1.tfrec")
    result = run("predict", bad, "--run", card_only_run, "--out", tmp_path / "p.csv")
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith(f"Error: {bad}: {HUGE}")


def test_predict_names_a_first_record_that_is_not_an_example(tmp_path, card_only_run):
    bad = write_frames(tmp_path / "test00-1.tfrec", [JPEG_BYTES])
    result = run("predict", bad, "--run", card_only_run, "--out", tmp_path / "p.csv")
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        f"Error: {bad}: record 0: not a tf.train.Example (Error parsing message with type "
        "'tensorflow.Example')"
    )
    assert "Traceback" not in result.output
