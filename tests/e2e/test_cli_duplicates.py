"""`tfrec build` hashes every image; `tfrec inspect train/ test/ --duplicates` finds planted
exact and resized/re-encoded copies across train and test, and nothing else in sample_data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from tfrec_tools.cli import main

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """sample_data's train set, and a test set of 20 sample test images plus an exact copy of
    img_0001 and a 40x40, quality 70 copy of img_0002 (both train images)."""
    root = tmp_path_factory.mktemp("dups")
    test_images = root / "test_images"
    test_images.mkdir()
    for path in sorted((SAMPLE / "test_images").glob("*.jpg"))[:20]:
        shutil.copy(path, test_images / path.name)
    shutil.copy(SAMPLE / "images" / "batch1" / "img_0001.jpg", test_images / "copy_exact.jpg")
    smaller = Image.open(SAMPLE / "images" / "batch1" / "img_0002.jpg").resize((40, 40))
    smaller.save(test_images / "copy_small.jpg", quality=70)
    common = ("--size", "64", "--workers", "1", "--no-progress")
    train = run("build", SAMPLE / "images", SAMPLE / "labels.csv", "--out", root / "train", *common)
    assert train.exit_code == 0, train.output
    assert "duplicates: no duplicates" in train.output  # none within sample_data's 360
    test = run("build", test_images, "--out", root / "test", "--name", "test", *common)
    assert test.exit_code == 0, test.output
    return root


def test_planted_copies_across_train_and_test_are_found_and_fail(built):
    result = run("inspect", built / "train", built / "test", "--duplicates", "--json")
    assert result.exit_code == 1
    check = json.loads(result.output)["duplicates"]
    pairs = sorted(
        (g["kind"], g["scope"], sorted(i["image_id"] for i in g["images"])) for g in check["groups"]
    )
    assert pairs == [
        ("exact", "across sets", ["copy_exact", "img_0001"]),
        ("near", "across sets", ["copy_small", "img_0002"]),
    ]
    assert check["hamming"] == 4 and len(check["problems"]) == 1 and not check["notes"]


def test_the_last_line_of_the_text_report_says_the_copies_failed(built):
    result = run("inspect", built / "train", built / "test", "--duplicates")
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]
    assert last == "2 shard sets: all OK; copies across folds or sets: FAILED"
    assert "2 duplicate groups (4 images): 1 exact, 1 near; across sets 2" in result.output


def test_sample_data_alone_has_no_duplicates(built):
    result = run("inspect", built / "train", "--duplicates")
    assert result.exit_code == 0, result.output
    assert "duplicates (hamming <= 4): no duplicates" in result.output
    assert "duplicates: OK" in result.output


def test_shards_without_a_sidecar_are_hashed_from_their_records(built, tmp_path):
    test = tmp_path / "test"
    shutil.copytree(built / "test", test)
    (test / "test.hashes.csv").unlink()
    result = run("inspect", built / "train", test, "--duplicates")
    assert result.exit_code == 1
    assert f"note: test: {test / 'test.hashes.csv'} is missing; hashed the images of 1 shards" in (
        result.output
    )
    assert "2 groups of copies across sets (leakage) (hamming <= 4), e.g. " in result.output


def test_hamming_needs_duplicates_and_a_sane_range(built):
    result = run("inspect", built / "train", "--hamming", "3")
    assert result.exit_code == 2 and "--hamming sets the threshold of --duplicates" in result.output
    result = run("inspect", built / "train", "--duplicates", "--hamming", "99")
    assert result.exit_code == 2 and "0<=x<=16" in result.output
