"""`tfrec build` round trips over awkward inputs: file names that are not UTF-8, links, and
label columns whose kind a single cell decided."""

from __future__ import annotations

import csv
import json
import os

from click.testing import CliRunner

from tests.helpers import make_image, write_csv
from tfrec_tools.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_a_name_that_is_not_utf8_is_rejected_and_resume_finishes(tmp_path):
    images, out = tmp_path / "images", tmp_path / "out"
    for i in range(3):
        make_image(images / f"ok{i}.jpg", (16, 16), seed=i)
    make_image(images / os.fsdecode(b"caf\xe9.jpg"), (16, 16), seed=9)
    (images / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    args = ["build", images, "--out", out, "--size", "16", "--shards", "1", "--workers", "1"]
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert "rows: 5, landed: 3, rejected: 2" in result.output
    assert "  file name not UTF-8: 1" in result.output and "  broken link: 1" in result.output
    with open(out / "test.rejected.csv", encoding="utf-8") as handle:  # valid UTF-8
        rows = list(csv.DictReader(handle))
    assert [(r["row"], r["image_id"], r["reason"]) for r in rows] == [
        ("", "caf\\xe9", "file name not UTF-8"),
        ("", "gone", "broken link"),
    ]
    manifest = json.loads((out / "test.manifest.json").read_text(encoding="utf-8"))
    assert manifest["totals"]["rejected_by_reason"] == {"broken link": 1, "file name not UTF-8": 1}
    resumed = run(*args, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "nothing to do" in resumed.output


def test_symlinked_class_folders_are_built(tmp_path):
    images, elsewhere = tmp_path / "images", tmp_path / "elsewhere"
    for i in range(4):
        make_image(images / "cat" / f"c{i}.png", (16, 16), seed=i)
        make_image(elsewhere / f"d{i}.png", (16, 16), seed=10 + i)
    (images / "dog").symlink_to(elsewhere, target_is_directory=True)
    (images / "kitty").symlink_to(images / "cat", target_is_directory=True)
    out = tmp_path / "out"
    result = run("build", images, "--out", out, "--size", "16", "--shards", "2", "--workers", "1")
    assert result.exit_code == 0, result.output
    assert "labels from class folders (2 classes: cat, dog)" in result.output
    assert "rows: 9, landed: 8, rejected: 1" in result.output
    assert "  repeated folder: 1" in result.output


def test_dry_run_says_which_cell_decided_the_label_kind(tmp_path):
    images = tmp_path / "images"
    labels = ["0", "1", "2", "1.5", "0", "1"]
    for i in range(len(labels)):
        make_image(images / f"{i}.png", (8, 8), seed=i)
    csv_path = write_csv(tmp_path / "l.csv", ["image_id", "label"], enumerate(labels))
    result = run("build", images, csv_path, "--out", tmp_path / "o", "--shards", "1", "--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "  label 'label': a regression target (row 5 holds '1.5', not an integer)" in lines
    assert lines[-1] == (
        "warning: label 'label' is a regression target only because of row 5 ('1.5'): every "
        "other value is an integer; if the labels are classes, fix that cell"
    )
