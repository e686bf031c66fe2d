"""`tfrec kaggle-metadata`: a real build, described for `kaggle datasets create`."""

from __future__ import annotations

import json

from click.testing import CliRunner

from tfrec_tools.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def build(dataset, out, *extra):
    images, csv_path = dataset
    args = ["build", images, csv_path, "--out", out, "--size", "16", "--shards", "2"]
    result = run(*args, "--workers", "1", *extra)
    assert result.exit_code == 0, result.output


def test_metadata_describes_every_file_and_is_not_overwritten(dataset, tmp_path):
    out = tmp_path / "out"
    build(dataset, out, "--folds", "2")
    result = run("kaggle-metadata", out, "--id", "alice/tiny-shards", "--license", "CC-BY-4.0")
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "dataset-metadata.json").read_text())
    assert meta["licenses"] == [{"name": "CC-BY-4.0"}]
    paths = [r["path"] for r in meta["resources"]]
    assert all((out / p).is_file() for p in paths)
    assert {p for p in paths if p.endswith(".tfrec")} == {p.name for p in out.glob("*.tfrec")}
    assert f"wrote {out / 'dataset-metadata.json'}: 1 build (train), {len(paths)} files" in (
        result.output
    )
    assert f"next: kaggle datasets create -p {out}" in result.output

    again = run("kaggle-metadata", out, "--id", "alice/tiny-shards")
    assert again.exit_code == 1
    assert "dataset-metadata.json exists: pass --overwrite to replace it" in again.output
    assert run("kaggle-metadata", out, "--id", "alice/tiny-shards", "--overwrite").exit_code == 0


def test_a_bad_id_or_license_is_a_usage_error(dataset, tmp_path):
    result = run("kaggle-metadata", tmp_path, "--id", "alice/abc")
    assert result.exit_code == 2
    assert "the slug must be 6 to 50 characters long (received 3)" in result.output
    licensed = run("kaggle-metadata", tmp_path, "--id", "alice/tiny-shards", "--license", "MIT")
    assert licensed.exit_code == 2
    assert run("kaggle-metadata", tmp_path).exit_code == 2  # --id is required
