"""Multi-label end to end: build (tags -> multi-hot) -> inspect -> train -> predict, and the
column formats of oof.csv, submission.csv and the predictions."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.helpers import make_image
from tfrec_tools.cli import main

TAGS = ("cloud", "haze", "primary", "water")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def read_rows(path: Path) -> list[dict]:
    with open(path) as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """60 labeled 16 px images with 0-3 of 4 tags (separated by ';'), 6 unlabeled ones."""
    root = tmp_path_factory.mktemp("multilabel")
    rows = []
    for i in range(60):
        make_image(root / "images" / f"img{i:02d}.jpg", (16, 16), seed=i)
        tags = [t for k, t in enumerate(TAGS) if (i >> k) % 3 == 0]
        rows.append(f"img{i:02d},{';'.join(tags)}\n")
    (root / "labels.csv").write_text("image_id,tags\n" + "".join(rows))
    for i in range(6):
        make_image(root / "test_images" / f"t{i}.jpg", (16, 16), seed=100 + i)
    return root


@pytest.mark.slow
def test_build_inspect_train_predict(folder):
    shards, run_dir = folder / "shards", folder / "run"
    build = ["build", folder / "images", folder / "labels.csv", "--out", shards, "--size", 16]
    build += ["--multi-label", "--label-sep", ";", "--shards", 4, "--folds", 2, "--workers", 1]
    dry = run(*build, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "labels from the CSV, multi-label (4 tags: cloud, haze, primary, water)" in dry.output
    assert "folds: 2, records per tag:" in dry.output and "tag water: share deviates" in dry.output
    result = run(*build)
    assert result.exit_code == 0, result.output
    assert "rows with no tag" in result.output and "rejected: 0" in result.output
    test = ["build", folder / "test_images", "--out", shards, "--size", 16, "--workers", 1]
    assert run(*test).exit_code == 0

    manifest = json.loads((shards / "train.manifest.json").read_text())
    assert manifest["labels"] == [{"classes": list(TAGS), "kind": "multilabel", "name": "tags"}]
    assert {"dtype": "int64", "name": "tags", "shape": [4]} in manifest["schema"]
    assert set(manifest["shards"][0]["label_histogram"]["tags"]) <= set(TAGS)
    inspected = run("inspect", shards)
    assert inspected.exit_code == 0, inspected.output
    assert "tags (tags, multi-label) per fold, records holding each:" in inspected.output

    trained = run(
        "train", shards, "--out", run_dir, "--fold", 0, "--epochs", 1, "--threshold", 0.4,
        "--quiet",
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    assert "fold 0: best epoch 1 of 1 (val_f1_micro " in trained.output
    assert "OOF tags: f1_micro " in trained.output and ", map " in trained.output
    probabilities = [f"tags_p_{t}" for t in TAGS]
    oof = read_rows(run_dir / "oof.csv")
    assert list(oof[0]) == ["image_id", "fold", "tags_true", *probabilities, "tags"]
    for row in oof:
        truth = [t for t in TAGS if (int(row["image_id"][3:]) >> TAGS.index(t)) % 3 == 0]
        assert row["tags_true"] == " ".join(truth)
        above = [t for t in TAGS if float(row[f"tags_p_{t}"]) > 0.4]
        assert row["tags"] == " ".join(above)
    submission = read_rows(run_dir / "submission.csv")
    assert [r["image_id"] for r in submission] == [f"t{i}" for i in range(6)]
    assert list(submission[0]) == ["image_id", *probabilities, "tags"]
    card = json.loads((run_dir / "model.json").read_text())
    assert card["heads"] == [
        {"kind": "multilabel", "name": "tags", "num_classes": 4, "threshold": 0.4}
    ]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["overall"]["tags"]) == {"f1_micro", "f1_macro", "map"}
    report = next((run_dir / "reports").glob("*.md")).read_text()
    assert "tags (multilabel, 4 tags, threshold 0.4)" in report
    assert "| tags f1_micro | tags f1_macro | tags map |" in report

    again = folder / "again.csv"
    predicted = run("predict", shards, "--run", run_dir, "--out", again)
    assert predicted.exit_code == 0, predicted.output
    assert read_rows(again) == submission  # the run's threshold, 0.4
    low = folder / "low.csv"
    lowered = run("predict", shards, "--run", run_dir, "--out", low, "--threshold", 0.01)
    assert lowered.exit_code == 0, lowered.output
    assert {r["tags"] for r in read_rows(low)} == {" ".join(TAGS)}  # every tag is above 0.01
