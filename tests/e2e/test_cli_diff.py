"""`tfrec diff`: a build against itself exits 0; against a changed build it lists the change
and exits 1; an error exits 2 (as diff(1))."""

from __future__ import annotations

import json

from click.testing import CliRunner

from tfrec_tools.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def build(dataset, out, *extra):
    images, csv_path = dataset
    args = ["build", images, csv_path, "--out", out, "--size", "16", "--shards", "2"]
    result = run(*args, "--folds", "2", "--workers", "1", *extra)
    assert result.exit_code == 0, result.output


def test_a_build_against_itself_is_identical(dataset, tmp_path):
    build(dataset, tmp_path / "a")
    result = run("diff", tmp_path / "a", tmp_path / "a" / "train.manifest.json")
    assert result.exit_code == 0, result.output
    assert result.output.endswith("identical (manifests; --deep also compares records)\n")
    deep = run("diff", tmp_path / "a", tmp_path / "a", "--deep")
    assert (deep.exit_code, deep.output.splitlines()[-1]) == (0, "identical")


def test_a_changed_build_is_listed_and_exits_1(dataset, tmp_path):
    build(dataset, tmp_path / "a")
    build(dataset, tmp_path / "b", "--seed", "7")
    result = run("diff", tmp_path / "a", tmp_path / "b")
    assert result.exit_code == 1, result.output
    assert "options: 1 change\n  seed: 42 -> 7\n" in result.output
    assert "shards: 2 of 2 differ" in result.output
    assert "records: not compared: add --deep" in result.output
    assert result.output.splitlines()[-1] == "different: options, shards"

    deep = run("diff", tmp_path / "a", tmp_path / "b", "--deep", "--limit", "2")
    assert deep.exit_code == 1
    assert "records: 0 added, 0 removed, " in deep.output
    moved = next(line for line in deep.output.splitlines() if line.startswith("  moved: "))
    assert moved.count("(fold ") == 2 and " more" in moved
    assert deep.output.splitlines()[-1] == "different: options, shards, records"

    data = json.loads(run("diff", tmp_path / "a", tmp_path / "b", "--json", "--deep").output)
    assert data["identical"] is False
    assert data["sections"]["options"] == {"seed": [42, 7]}
    assert data["records"]["moved"] and data["records"]["added"] == []


def test_errors_exit_2(dataset, tmp_path):
    build(dataset, tmp_path / "a")
    missing = run("diff", tmp_path / "a", tmp_path / "nope")
    assert missing.exit_code == 2
    assert f"Error: {tmp_path / 'nope'}: no such file or folder" in missing.output
    build(dataset, tmp_path / "a", "--name", "again")
    several = run("diff", tmp_path / "a", tmp_path / "a")
    assert several.exit_code == 2
    assert "holds 2 builds (again.manifest.json, train.manifest.json)" in several.output
    assert run("diff", tmp_path / "a", tmp_path / "a", "--name", "again").exit_code == 0
    assert run("diff", tmp_path / "a", tmp_path / "a", "--limit", "0").exit_code == 2
