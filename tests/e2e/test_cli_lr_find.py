from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tests.helpers import write_csv, write_foreign_shard
from tfrec_tools.cli import main
from tfrec_tools.read.augment import PRESETS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
COLOURS = {"red": (200, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 200)}
LINE = re.compile(r"^suggested --lr-max (\S+) \(peak (\S+) at global batch 8\)$", re.MULTILINE)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """48 learnable 16-px images (a noisy colour per class) in 4 shards, 2 folds."""
    root = tmp_path_factory.mktemp("lr_find")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(48):
        name = list(COLOURS)[i % 3]
        pixels = np.clip(COLOURS[name] + rng.normal(0, 40, (16, 16, 3)), 0, 255)
        (root / "images").mkdir(exist_ok=True)
        Image.fromarray(pixels.astype(np.uint8)).save(root / "images" / f"c{i:02d}.png")
        rows.append((f"c{i:02d}", name))
    labels = write_csv(root / "labels.csv", ["image_id", "label"], rows)
    out = root / "shards"
    result = run(
        "build", root / "images", labels, "--out", out, "--size", "16", "--folds", "2",
        "--shards", "4", "--workers", "1", "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def test_lr_find_writes_the_plot_and_points_and_prints_the_suggestion(shards, tmp_path):
    out = tmp_path / "lrf"
    result = run(
        "lr-find", f"{shards}/train*.tfrec", "--steps", "30", "--batch-size", "8",
        "--augment", "none", "--lr-start", "1e-5", "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "lr-find: fold 0, 2 train shards, global batch 8, 30 steps" in result.output
    assert f"wrote {out / 'lr_find.png'} and {out / 'lr_find.json'}" in result.output
    assert (out / "lr_find.png").read_bytes()[:8] == PNG_MAGIC
    saved = json.loads((out / "lr_find.json").read_text(encoding="utf-8"))
    assert 10 <= len(saved["lrs"]) <= 30 and len(saved["smoothed"]) == len(saved["lrs"])
    assert saved["lrs"][0] == pytest.approx(1e-5)
    assert saved["settings"]["steps"] == 30 and not saved["settings"]["augment"]["flip_up_down"]
    suggestion = saved["suggestion"]
    assert suggestion["global_batch"] == 8
    assert suggestion["lr_max"] == pytest.approx(suggestion["lr"] / 8)
    lr_max, peak = LINE.search(result.output).groups()
    assert float(lr_max) == pytest.approx(suggestion["lr_max"], rel=0.05)
    assert float(peak) == pytest.approx(suggestion["lr"], rel=0.05)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--fold", "3"],
            "Error: --fold 3 does not exist: the shards have folds 0, 1",
        ),
        (
            ["--lr-start", "1e-2", "--lr-end", "1e-3"],
            "Error: `lr_end` must be > lr_start (0.01). Received: lr_end=0.001",
        ),
        (
            ["--augment", "strong"],
            "Error: `augment` must be a preset (" + ", ".join(PRESETS) + ") or the path of an "
            "existing JSON file. Received: augment='strong'",
        ),
        (
            ["--batch-size", "64"],
            "Error: fold 0 has 24 training records, fewer than one global batch of 64: "
            "lower --batch-size",
        ),
    ],
)
def test_lr_find_errors_are_one_line(shards, tmp_path, args, message):
    result = run("lr-find", shards, "--out", tmp_path / "lrf", *args)
    assert result.exit_code == 1
    assert result.output.strip() == message
    assert not (tmp_path / "lrf").exists()


def test_lr_find_refuses_too_few_steps_as_usage_error(shards):
    result = run("lr-find", shards, "--steps", "5")
    assert result.exit_code == 2
    assert "Invalid value for '--steps': 5 is not in the range x>=10." in result.output


def test_foreign_shards_need_num_folds(tmp_path):
    for f in range(4):
        rows = [{"image_name": f"ISIC_{f}_{i}", "target": i % 2} for i in range(8)]
        write_foreign_shard(tmp_path / f"train{f:02d}-8.tfrec", rows, seed=f)
    result = run("lr-find", tmp_path, "--out", tmp_path / "lrf")
    assert result.output.strip() == (
        "Error: the shards store no folds: pass --num-folds K to split the files K ways"
    )
    result = run(
        "lr-find", tmp_path, "--num-folds", "2", "--steps", "10", "--batch-size", "4",
        "--augment", "none", "--out", tmp_path / "lrf",
    )  # fmt: skip
    assert "lr-find: fold 0, 2 train shards, global batch 4, 10 steps" in result.output
    assert (tmp_path / "lrf" / "lr_find.json").exists()


def test_train_with_lr_max_auto_runs_the_range_test_first(shards, tmp_path):
    run_dir = tmp_path / "run"
    result = run(
        "train", f"{shards}/train*.tfrec", "--out", run_dir, "--lr-max", "auto",
        "--epochs", "1", "--fold", "0", "--quiet",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    picked = re.search(r"^--lr-max auto: (\S+) per sample", result.output, re.MULTILINE)
    assert picked, result.output
    config = json.loads((run_dir / "config.json").read_text())
    assert config["sources"]["schedule.lr_max"] == "--lr-max auto (lr-find)"
    assert f"{config['schedule']['lr_max']:.3g}" == picked.group(1)
    assert json.loads((run_dir / "lr-find" / "lr_find.json").read_text())["suggestion"]


@pytest.mark.parametrize("value", ["fast", "0", "-1e-4"])
def test_lr_max_takes_a_positive_number_or_auto(shards, value):
    result = run("train", shards, "--lr-max", value)
    assert result.exit_code == 2 and "expected a number > 0 or 'auto'" in result.output
