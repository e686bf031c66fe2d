"""`tfrec augment-preview` (read/augment_preview.py): the grid, its errors, a light --help."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from PIL import Image

from tfrec_tools.cli import COMMANDS, main

COLOURS = ((200, 30, 30), (30, 200, 30), (30, 30, 200))


@pytest.fixture
def shard(tmp_path):
    """3 records of 24 x 40 JPEGs, one dominant colour each."""
    path = tmp_path / "shards" / "train00-3.tfrec"
    path.parent.mkdir()
    with tf.io.TFRecordWriter(str(path)) as writer:
        for i, colour in enumerate(COLOURS):
            pixels = np.tile(np.array(colour, np.uint8), (24, 40, 1))
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
            feature = {
                "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[buffer.getvalue()])),
                "image_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"id%d" % i])),
            }
            writer.write(
                tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
            )
    return path


def preview(monkeypatch, *args):
    monkeypatch.setitem(
        COMMANDS, "augment-preview", "tfrec_tools.cli.augment_preview:augment_preview_command"
    )
    return CliRunner().invoke(main, ["augment-preview", *map(str, args)])


def test_augment_preview_writes_the_grid(monkeypatch, shard, tmp_path):
    out = tmp_path / "pics" / "grid.png"
    result = preview(monkeypatch, shard.parent, "--out", out, "--n", 3, "--index", 1)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out)
    grid = np.asarray(Image.open(out).convert("RGB"))
    # 4 tiles of 40 x 24 upscaled x4 (160 x 96) in 2 x 2, 14 px captions, 4 px gaps
    assert grid.shape == (2 * (96 + 14 + 4) + 4, 2 * (160 + 4) + 4, 3)
    original = grid[4 + 48, 4 + 80].astype(int)  # the first tile is record 1, unaugmented
    assert np.abs(original - COLOURS[1]).max() <= 8


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--index", "3"], 1, "Error: `index` must be < 3, the number of records in the 1 shard"),
        (["--image-key", "img"], 1, "has no image bytes under 'img'. Its keys: image, image_id"),
        (["--augment", "strong"], 2, "`augment` must be a preset (none, standard, kaggle-"),
    ],
)
def test_augment_preview_errors(monkeypatch, shard, tmp_path, args, code, message):
    result = preview(monkeypatch, shard, "--out", tmp_path / "grid.png", *args)
    assert result.exit_code == code, result.output
    assert message in " ".join(result.output.split())


def test_augment_preview_help_does_not_import_tensorflow():
    code = (
        "import sys\n"
        "from tfrec_tools.cli import augment_preview\n"
        "try: augment_preview.augment_preview_command(['--help'])\n"
        "except SystemExit: pass\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "Example: tfrec augment-preview" in result.stdout
