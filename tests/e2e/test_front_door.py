"""The product's one-liners, typed as a new user types them (issue: the front door)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.helpers import CLASSES, make_image, read_records, write_csv
from tfrec_tools.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A competition folder: images/ + labels.csv (96 rows), test_images/ (60), and
    class_images/CLASS/*.png (3 classes)."""
    root = tmp_path_factory.mktemp("project")
    rows = []
    for i in range(96):
        make_image(root / "images" / f"img{i:03d}.jpg", (16, 16), seed=i)
        rows.append((f"img{i:03d}", CLASSES[i % 3]))
    write_csv(root / "labels.csv", ["image_id", "label"], rows)
    for i in range(60):
        make_image(root / "test_images" / f"t{i:03d}.jpg", (16, 16), seed=500 + i)
    for i in range(72):
        make_image(root / "class_images" / CLASSES[i % 3] / f"c{i:03d}.png", (16, 16), seed=i)
    return root


@pytest.fixture
def in_project(project, monkeypatch):
    monkeypatch.chdir(project)
    yield project


def test_the_one_liners_work_as_typed(in_project, monkeypatch):
    built = run("build", "images/", "labels.csv", "--shards", "16", "--size", "16")
    assert built.exit_code == 0, built.output
    assert "plan: 16 shards of ~6 records, 4 folds of 4" in built.output
    assert "wrote 96 records to 16 shards in 4 folds" in built.output
    assert "manifest: shards/train.manifest.json" in built.output

    test = run("build", "test_images/", "--size", "16")
    assert test.exit_code == 0, test.output
    assert "wrote 60 records to 1 shard\n" in test.output  # not 16 shards of 3-4
    assert sorted(p.name for p in (in_project / "shards").glob("test*.tfrec")) == [
        "test00-60.tfrec"
    ]

    inspected = run("inspect", "shards/")
    assert inspected.exit_code == 0, inspected.output
    assert "== test ==" in inspected.output and "== train ==" in inspected.output
    assert inspected.output.rstrip().endswith("2 shard sets: all OK")

    monkeypatch.chdir(in_project / "shards")
    here = run("inspect")
    assert here.exit_code == 0 and "2 shard sets: all OK" in here.output
    monkeypatch.chdir(in_project)

    trained = run("train", "shards/", "--epochs", "1", "--quiet")
    assert trained.exit_code == 0, trained.output
    run_dir = next((in_project / "runs").iterdir())
    assert f"run folder: runs/{run_dir.name}" in trained.output
    assert "training set: " in trained.output and "test set: " in trained.output
    assert (run_dir / "submission.csv").exists() and (run_dir / "oof.csv").exists()

    again = run("train", "shards/", "--epochs", "1", "--quiet", "--fold", "0")
    assert again.exit_code == 0, again.output
    assert len(list((in_project / "runs").iterdir())) == 2  # a new folder, never the old one

    predicted = run("predict", "shards/")
    assert predicted.exit_code == 0, predicted.output
    newest = max((in_project / "runs").iterdir(), key=lambda p: int(p.name.rsplit("-", 1)[1]))
    assert (newest / "predictions-test-tta1.csv").exists()


def test_class_folders_build_labels_identical_to_folder_names(tmp_path):
    out = tmp_path / "out"
    result = run("build", _class_images(tmp_path), "--out", out)
    assert result.exit_code == 0, result.output
    assert "labels from class folders (3 classes: cat, dog, emu)" in result.output
    manifest = json.loads((out / "train.manifest.json").read_text())
    classes = manifest["labels"][0]["classes"]
    assert manifest["folds"] >= 2 and manifest["labels"][0]["name"] == "label"
    records = read_records(sorted(str(p) for p in out.glob("train*.tfrec")))
    assert len(records) == 72
    for record in records:
        folder = record["image_id"].decode().split("/")[0]
        assert classes[record["label"]] == folder


def _class_images(root: Path) -> Path:
    for i in range(72):
        make_image(root / "imgs" / CLASSES[i % 3] / f"c{i:03d}.png", (16, 16), seed=i)
    return root / "imgs"


def test_dry_run_prints_the_plan_and_writes_nothing(in_project, tmp_path):
    out = tmp_path / "never"
    result = run("build", "images/", "labels.csv", "--out", out, "--dry-run")
    assert result.exit_code == 0, result.output
    assert not out.exists()
    reason = "5 shards of ~19 records, 5 folds of 1: one shard per fold (96 records fill 3 shards"
    assert f"shards: {reason}" in result.output
    assert "rejected while planning: 0" in result.output
    plan = json.loads(run("build", "images/", "labels.csv", "--dry-run", "--json").output)
    assert plan["folds"] == 5 and plan["records"] == 96 and plan["shards"] == 5
    for counts in plan["per_fold"].values():  # 32 of each class over 5 folds: 6 or 7 each
        assert set(counts) == set(CLASSES) and set(counts.values()) <= {6, 7}
    assert set(plan["worst_share_deviation"]) == set(CLASSES)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dry-run", "--resume"], "--dry-run writes nothing, so --resume has no meaning"),
        (["--dry-run", "--overwrite"], "--dry-run writes nothing, so --overwrite has no"),
        (["--json"], "--json prints the plan of --dry-run: add --dry-run"),
    ],
)
def test_contradictions_exit_2(in_project, args, message):
    result = run("build", "images/", "labels.csv", *args)
    assert result.exit_code == 2 and message in result.output


def test_a_folder_with_two_labeled_sets_asks_for_a_glob(in_project, tmp_path):
    out = tmp_path / "two"
    for name in ("train", "extra"):
        built = run("build", "images/", "labels.csv", "--out", out, "--name", name, "--size", "8")
        assert built.exit_code == 0, built.output
    result = run("train", out, "--epochs", "1")
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {out} holds 2 shard sets: {out}/extra[0-9]*.tfrec (5 ")
    assert "pass the glob of a labeled set (quoted)" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_predict_without_a_run_says_to_pass_one(in_project, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.makedirs("shards")
    result = run("predict", str(in_project / "shards"))
    assert result.exit_code == 1 and "no finished run under runs/" in result.output


def test_the_glob_of_a_set_leaves_out_sets_whose_names_it_starts(in_project, tmp_path):
    import glob

    out = tmp_path / "three"
    for name in ("train", "train_b"):
        built = run("build", "images/", "labels.csv", "--out", out, "--name", name, "--size", "8")
        assert built.exit_code == 0, built.output
    hint = built.output.strip().splitlines()[-1]
    assert hint == f'next: tfrec inspect {out}  then  tfrec train "{out}/train_b[0-9]*.tfrec"'
    again = run("build", "images/", "labels.csv", "--out", out, "--size", "8", "--overwrite")
    assert f'tfrec train "{out}/train[0-9]*.tfrec"' in again.output  # not the folder: 2 sets
    result = run("train", out, "--epochs", "1")
    pattern = result.output.split('e.g. "')[1].split('"')[0]
    assert sorted(os.path.basename(p)[:6] for p in glob.glob(pattern)) == ["train0"] * 5


def test_hidden_folders_are_neither_classes_nor_images(tmp_path):
    images = _class_images(tmp_path)
    make_image(images / ".ipynb_checkpoints" / "c000-checkpoint.png", (16, 16))
    result = run("build", images, "--dry-run")
    assert "labels from class folders (3 classes: cat, dog, emu)" in result.output


def test_a_labeled_build_coded_like_another_is_named_test(in_project, tmp_path):
    out = tmp_path / "holdout"
    assert run("build", "images/", "labels.csv", "--out", out, "--size", "8").exit_code == 0
    vocab = out / "train.manifest.json"
    result = run(
        "build", "images/", "labels.csv", "--out", out, "--vocab-from", vocab, "--folds", "0"
    )
    assert result.exit_code == 0 and f"manifest: {out}/test.manifest.json" in result.output


def test_dry_run_says_when_the_real_build_would_need_overwrite(in_project, tmp_path):
    out = tmp_path / "again"
    (out / "train.rejected.csv").parent.mkdir()
    (out / "train.rejected.csv").write_text("row\n")  # any output of the build counts
    result = run("build", "images/", "labels.csv", "--out", out, "--dry-run")
    assert f"note: {out} already holds a build named 'train'" in result.output
    fresh = run("build", "images/", "labels.csv", "--out", tmp_path / "new", "--dry-run")
    assert "already holds" not in fresh.output
