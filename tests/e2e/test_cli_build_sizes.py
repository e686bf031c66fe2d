"""`tfrec build --size A,B`: one shard set per size folder, then inspect and train one."""

from __future__ import annotations

import json

from tests.e2e.test_cli_build import run

BUILD = ("--folds", "2", "--shards", "4", "--group-col", "patient_id", "--workers", "1")


def test_build_of_two_sizes_then_inspect_and_train_one(dataset, tmp_path):
    images, csv_path = dataset
    out = tmp_path / "out"
    result = run("build", images, csv_path, "--out", out, "--size", "16,24x12", *BUILD)
    assert result.exit_code == 0, result.output
    assert f"build 'train' into {out}/16, {out}/24x12;" in result.output
    assert f"size 16: wrote 48 records to 4 shards in 2 folds; manifest: {out}/16/" in (
        result.output
    )
    assert "size 24x12: wrote 48 records to 4 shards in 2 folds" in result.output
    assert f"next: tfrec inspect {out}/24x12  then  tfrec train {out}/24x12" in result.output
    inspected = run("inspect", out / "24x12")
    assert inspected.exit_code == 0, inspected.output
    whole = run("inspect", out, "--grid", tmp_path / "sheet.png")  # the pass: each size's set
    assert whole.exit_code == 0, whole.output
    assert "== 16/train ==" in whole.output and "== 24x12/train ==" in whole.output
    assert whole.output.rstrip().endswith("2 shard sets: all OK")
    assert (tmp_path / "sheet-16-train.png").exists()
    copies = run("inspect", out, "--duplicates")  # the sizes of a pass are not copies
    assert copies.exit_code == 0, copies.output
    assert "duplicates: OK" in copies.output
    for command in (("diff", out, out / "16"), ("kaggle-metadata", out, "--id", "me/sizes-16")):
        refused = run(*command)
        assert f"{out} holds one build per size (16, 24x12): pass {out}/16" in refused.output
    ambiguous = run("train", out, "--epochs", "1")
    assert ambiguous.exit_code == 1
    assert ambiguous.output.strip() == (
        f"Error: {out} holds one build per size (16, 24x12): pass {out}/16 or {out}/24x12"
    )
    trained = run(
        "train", out / "16", "--out", tmp_path / "run", "--fold", "0", "--epochs", "1",
        "--batch-size", "8", "--warmup-epochs", "0", "--quiet",
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output


def test_dry_run_of_two_sizes_lists_the_folders(dataset, tmp_path):
    images, csv_path = dataset
    out = tmp_path / "out"
    args = ("build", images, csv_path, "--out", out, "--size", "16,32", *BUILD, "--dry-run")
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert f"  sizes: 16, 32 (one shard set each: {out}/16, {out}/32)" in result.output
    assert json.loads(run(*args, "--json").output)["sizes"] == ["16", "32"]


def test_a_size_listed_twice_is_a_usage_error(dataset, tmp_path):
    images, csv_path = dataset
    result = run("build", images, csv_path, "--size", "16,16x16")
    assert result.exit_code == 2
    assert "`size` lists 16 twice. Received: '16,16x16'" in result.output


def test_several_sizes_with_fit_keep_is_a_usage_error(dataset, tmp_path):
    images, csv_path = dataset
    result = run("build", images, csv_path, "--size", "16,32", "--fit", "keep")
    assert result.exit_code == 2
    assert "--size has no effect with --fit keep" in result.output
