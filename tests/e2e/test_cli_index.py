"""`tfrec index`: the record index of foreign shards, written, checked or written again."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from tests.helpers import write_foreign_shard
from tests.malformed import write_huge_frame
from tfrec_tools.cli import main
from tfrec_tools.index import index_bytes, shard_spans


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def foreign(folder: Path) -> list[Path]:
    """A Kaggle-like folder: two train shards and a test shard (two shard sets)."""
    folder.mkdir()
    paths = []
    for name, count in (("train00", 3), ("train01", 2), ("test00", 4)):
        rows = [{"image_name": f"{name}_{i}", "target": i % 2} for i in range(count)]
        paths.append(write_foreign_shard(folder / f"{name}-{count}.tfrec", rows))
    return paths


def index_of(shard: Path) -> Path:
    return shard.with_name(shard.name + ".idx")


def test_a_folder_gets_an_index_for_every_shard_of_every_set(tmp_path):
    shards = foreign(tmp_path / "shards")
    result = run("index", tmp_path / "shards")
    assert result.exit_code == 0, result.output
    assert result.output == "3 shards: 3 indexes written\n"
    for shard in shards:
        assert index_of(shard).read_bytes() == index_bytes(shard_spans(str(shard)))
    assert run("index", tmp_path / "shards").output == "3 shards: 3 indexes checked\n"


def test_a_wrong_index_is_one_error_line_and_overwrite_writes_it_again(tmp_path):
    shard = foreign(tmp_path / "shards")[0]
    run("index", shard)
    first_line = index_of(shard).read_text().splitlines()[0]
    index_of(shard).write_text(first_line + "\n")  # a record short
    result = run("index", tmp_path / "shards/train*.tfrec")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"Error: {index_of(shard)}: 1 line for the 3 records of {shard}: line 2 is missing: the "
        f"index does not match its shard; write it again with `tfrec index --overwrite {shard}`"
    ]
    result = run("index", "--overwrite", tmp_path / "shards/train*.tfrec")
    assert result.output == "2 shards: 1 index written, 1 index rewritten\n"
    assert index_of(shard).read_bytes() == index_bytes(shard_spans(str(shard)))


def test_a_broken_shard_is_one_error_line_and_gets_no_index(tmp_path):
    bad = write_huge_frame(tmp_path / "bad-1.tfrec")
    result = run("index", bad)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {bad}: record 0 (byte 0) claims")
    assert len(result.output.splitlines()) == 1
    assert not index_of(bad).exists()


def test_a_path_that_names_nothing_is_an_error(tmp_path):
    result = run("index", tmp_path / "nowhere")
    assert result.exit_code == 1
    assert result.output == f"Error: {tmp_path / 'nowhere'}: no such file or folder\n"
