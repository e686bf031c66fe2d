from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from tests.helpers import write_csv
from tfrec_tools.cli import main


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_build_prints_summary_and_lands_every_row(dataset, tmp_path):
    images, csv_path = dataset
    result = run(
        "build",
        images,
        csv_path,
        "--out",
        tmp_path / "out",
        "--size",
        "16",
        "--folds",
        "2",
        "--shards",
        "4",
        "--group-col",
        "patient_id",
        "--workers",
        "1",
    )
    assert result.exit_code == 0, result.output
    assert "wrote 48 records to 4 shards in 2 folds" in result.output
    assert "rows: 48, landed: 48, rejected: 0" in result.output


def test_strict_exits_1_when_a_row_is_rejected(dataset, tmp_path):
    images, csv_path = dataset
    (images / "a" / "img001.jpg").unlink()
    result = run(
        "build",
        images,
        csv_path,
        "--out",
        tmp_path / "out",
        "--size",
        "16",
        "--shards",
        "2",
        "--workers",
        "1",
        "--strict",
    )
    assert result.exit_code == 1
    assert "missing file: 1" in result.output
    assert result.output.strip().endswith("Error: --strict: 1 rows rejected")


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--id-col", "name"],
            "Error: {csv}: no column 'name' (--id-col); the CSV has: image_id, label, patient_id, "
            "age, site",
        ),
        (
            ["--shards", "10", "--folds", "4"],
            "Error: `folds` must divide `shards` so each shard is one fold. Received: shards=10, "
            "folds=4; try --shards 8 or 12, or --folds 2 or 5 or 10 with --shards 10",
        ),
        (
            ["--shards", "13", "--group-col", "patient_id"],
            "Error: cannot fill 13 shards from 12 groups: every shard needs at least one; "
            "pass --shards 12 or fewer",
        ),
        (
            ["--name", "train2"],
            "Error: `name` must be 1 to 200 bytes of printable characters without * ? [ ] / \\ "
            "or '..', not start with '.' (a hidden file) and not end with a digit (the shard "
            "index follows it). Received: name='train2'",
        ),
    ],
)
def test_bad_options_give_one_line_errors(dataset, tmp_path, args, message):
    images, csv_path = dataset
    result = run("build", images, csv_path, "--out", tmp_path / "out", "--workers", "1", *args)
    assert result.exit_code == 1
    assert result.output.strip() == message.format(csv=csv_path)


def test_existing_build_needs_overwrite(dataset, tmp_path):
    images, csv_path = dataset
    args = [
        "build",
        images,
        csv_path,
        "--out",
        tmp_path / "out",
        "--size",
        "8",
        "--shards",
        "2",
        "--workers",
        "1",
    ]
    assert run(*args).exit_code == 0
    result = run(*args)
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: {tmp_path / 'out'} already holds a build named 'train' (train.manifest.json, "
        "...); pass --overwrite to replace it or --resume to finish an interrupted build"
    )
    assert run(*args, "--overwrite").exit_code == 0


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--size", "big"], "Invalid value for '--size': `size` must look like 256 or 256x384"),
        (["--fit", "stretch"], "Invalid value for '--fit'"),
        (["--quality", "0"], "Invalid value for '--quality'"),
        (["--overwrite", "--resume"], "--overwrite and --resume exclude each other"),
        (["--fit", "keep", "--size", "64"], "--size has no effect with --fit keep"),
    ],
)
def test_bad_usage_exits_2(dataset, tmp_path, args, fragment):
    images, csv_path = dataset
    result = run("build", images, csv_path, "--out", tmp_path / "out", *args)
    assert result.exit_code == 2
    assert fragment in result.output


def test_missing_csv_and_folder_are_named(tmp_path):
    (tmp_path / "img").mkdir()
    result = run("build", tmp_path / "img", tmp_path / "nope.csv", "--out", tmp_path / "o")
    assert result.output.strip() == f"Error: {tmp_path / 'nope.csv'}: labels CSV not found"
    result = run("build", tmp_path / "nothing", "--out", tmp_path / "o")
    assert result.output.strip() == f"Error: {tmp_path / 'nothing'}: image folder not found"


def test_empty_csv_is_named(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "empty.csv").write_text("")
    result = run("build", tmp_path / "img", tmp_path / "empty.csv", "--out", tmp_path / "o")
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {tmp_path / 'empty.csv'}: cannot read as CSV")


def test_all_rows_rejected_is_an_error(tmp_path):
    (tmp_path / "img").mkdir()
    csv_path = write_csv(tmp_path / "l.csv", ["id", "label"], [("a", "x"), ("b", "y")])
    result = run("build", tmp_path / "img", csv_path, "--out", tmp_path / "o")
    assert result.exit_code == 1
    assert (
        result.output.strip()
        == f"Error: {tmp_path / 'img'}: no usable image (all 2 rows rejected); reasons in "
        f"{tmp_path / 'o' / 'train.rejected.csv'}"
    )
    assert (tmp_path / "o" / "train.rejected.csv").read_text().count("missing file") == 2


def test_cli_worker_pool_output_is_byte_identical(dataset, tmp_path):
    """The CLI process has not loaded TensorFlow, so its pool forks; in-process it spawns."""
    import hashlib
    from pathlib import Path

    images, csv_path = dataset
    common = [str(images), str(csv_path), "--size", "16", "--shards", "4", "--folds", "2"]
    tfrec = Path(sys.executable).with_name("tfrec")
    subprocess.run(
        [tfrec, "build", *common, "--out", tmp_path / "two", "--workers", "2"],
        check=True,
        capture_output=True,
    )
    assert run("build", *common, "--out", tmp_path / "one", "--workers", "1").exit_code == 0

    def digests(folder):
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}

    assert digests(tmp_path / "one") == digests(tmp_path / "two")


def test_all_rejected_leaves_a_finished_builds_rejected_list_alone(dataset, tmp_path):
    images, csv_path = dataset
    out = tmp_path / "out"
    assert (
        run(
            "build",
            images,
            csv_path,
            "--out",
            out,
            "--size",
            "8",
            "--shards",
            "2",
            "--workers",
            "1",
        ).exit_code
        == 0
    )
    before = (out / "train.rejected.csv").read_bytes()
    bad = write_csv(tmp_path / "bad.csv", ["image_id", "label"], [("ghost", "x")])
    result = run("build", images, bad, "--out", out, "--size", "8", "--workers", "1")
    assert result.exit_code == 1 and "no usable image" in result.output
    assert (out / "train.rejected.csv").read_bytes() == before


def test_all_rejected_with_overwrite_replaces_the_old_build(dataset, tmp_path):
    images, csv_path = dataset
    out = tmp_path / "out"
    assert (
        run(
            "build",
            images,
            csv_path,
            "--out",
            out,
            "--size",
            "8",
            "--shards",
            "2",
            "--workers",
            "1",
        ).exit_code
        == 0
    )
    bad = write_csv(tmp_path / "bad.csv", ["image_id", "label"], [("ghost", "x")])
    result = run("build", images, bad, "--out", out, "--size", "8", "--workers", "1", "--overwrite")
    assert result.exit_code == 1 and "reasons in" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["train.rejected.csv"]


class FakeBar:
    """Stands in for tqdm and records how `tfrec build` drives it."""

    made: list[FakeBar] = []

    def __init__(self, **options) -> None:
        self.options, self.done, self.closed = options, 0, False
        FakeBar.made.append(self)

    def update(self, images: int) -> None:
        self.done += images

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("flags, bars", [([], 1), (["--no-progress"], 0)])
def test_the_cli_draws_the_progress_bar(dataset, tmp_path, monkeypatch, flags, bars):
    monkeypatch.setattr("tqdm.tqdm", FakeBar)
    monkeypatch.setattr(FakeBar, "made", [])
    images, csv_path = dataset
    args = ["--out", tmp_path / "out", "--size", "8", "--shards", "2", "--workers", "1"]
    assert run("build", images, csv_path, *args, *flags).exit_code == 0
    assert len(FakeBar.made) == bars
    for bar in FakeBar.made:
        assert bar.options == {"total": 48, "unit": "img", "desc": "build train", "disable": None}
        assert bar.done == 48 and bar.closed


# Runs `tfrec build` with every image taking 0.2 s to prepare (workers fork and inherit it).
SLOW_TFREC = """
import sys, time
from tfrec_tools.builder import write
real = write.prepare_image
def slow(data, config):
    time.sleep(0.2)
    return real(data, config)
write.prepare_image = slow
from tfrec_tools.cli import main
main(prog_name="tfrec")
"""


def wait_for(condition, process, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_second_build_fails_and_ctrl_c_leaves_a_resumable_build(dataset, tmp_path):
    images, csv_path = dataset
    out = tmp_path / "out"
    args = [images, csv_path, "--out", out, "--size", "8", "--shards", "4", "--folds", "2"]
    first = subprocess.Popen(
        [sys.executable, "-c", SLOW_TFREC, "build", *map(str, args), "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C reaches
    )
    try:
        wait_for(lambda: list(out.glob("*.tfrec.partial")), first)  # shards being written
        second = run("build", *args, "--overwrite", "--workers", "1")
        os.killpg(first.pid, signal.SIGINT)
        _, stderr = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert second.exit_code == 1
    assert f"another build named 'train' is writing there (pid {first.pid})" in second.output
    assert first.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == (
        f"Interrupted. The shards written so far stay in {out}; run the same command with "
        "--resume to finish the build."
    )
    assert not (out / ".train.lock").exists()
    resumed = run("build", *args, "--resume", "--workers", "1")
    assert resumed.exit_code == 0, resumed.output
    assert "wrote 48 records to 4 shards" in resumed.output
    assert not list(out.glob("*.partial"))


def test_every_image_undecodable_exits_1_and_says_where_the_reasons_are(dataset, tmp_path):
    images, csv_path = dataset
    for path in images.rglob("*.jpg"):
        path.write_bytes(b"GIF89a not really")
    out = tmp_path / "out"
    result = run("build", images, csv_path, "--out", out, "--size", "8", "--workers", "1")
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        f"Error: {images}: no image could be stored (all 48 rows rejected); reasons in "
        f"{out / 'train.rejected.csv'}"
    )
    assert sorted(p.name for p in out.iterdir()) == ["train.rejected.csv"]


def test_running_out_of_memory_is_one_line_not_48_rejections(dataset, tmp_path, monkeypatch):
    def no_memory(data, config):
        raise MemoryError

    monkeypatch.setattr("tfrec_tools.builder.write.prepare_image", no_memory)
    images, csv_path = dataset
    result = run("build", images, csv_path, "--out", tmp_path / "out", "--workers", "1")
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error: ") and "out of memory" in last and "--resume" in last


def test_ctrl_c_during_an_overwrite_says_to_resume_in_place_of_overwrite(dataset, monkeypatch):
    """`--overwrite --resume` is refused, so the hint after an interrupted --overwrite build
    must not say "the same command with --resume"."""
    images, csv_path = dataset

    def interrupted(config, **_):
        raise KeyboardInterrupt

    monkeypatch.setattr("tfrec_tools.builder.run.build", interrupted)
    result = run("build", images, csv_path, "--out", "o", "--size", "8", "--overwrite")
    assert result.exit_code == 130
    assert result.output.strip().splitlines()[-1] == (
        "Interrupted. The shards written so far stay in o; run the same command with --resume "
        "in place of --overwrite to finish the build."
    )
