"""Record index files: the format DALI and the `tfrecord` package read, checked against their
own tools and read by the `tfrecord` package itself (in a subprocess: its protobuf module and
TensorFlow's cannot be loaded in one process)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.malformed import write_frames, write_huge_frame
from tfrec_tools.builder.config import BuildConfig, ImageConfig
from tfrec_tools.builder.run import build
from tfrec_tools.errors import ShardError
from tfrec_tools.index import ensure_index, index_bytes, index_problem, read_index, shard_spans
from tfrec_tools.records import RecordWriter

RECORDS = [b"a", b"", b"x" * 300, b"yz"]
NO_TFRECORD = importlib.util.find_spec("tfrecord") is None
NEEDS_TFRECORD = pytest.mark.skipif(
    NO_TFRECORD, reason="the `tfrecord` package is not installed (pip install -e .[dev])"
)


def tfrecord2idx(shard: Path, index: Path) -> None:
    """The `tfrecord` package's own index writer, loaded from its file alone (its package
    would load protobuf classes that clash with TensorFlow's)."""
    root = Path(importlib.util.find_spec("tfrecord").submodule_search_locations[0])
    spec = importlib.util.spec_from_file_location("tfrecord2idx", root / "tools/tfrecord2idx.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.create_index(str(shard), str(index))


def test_spans_are_each_frames_offset_and_whole_length(tmp_path):
    shard = write_frames(tmp_path / "x-4.tfrec", RECORDS)
    assert shard_spans(str(shard)) == [(0, 17), (17, 16), (33, 316), (349, 18)]
    assert index_bytes(shard_spans(str(shard))) == b"0 17\n17 16\n33 316\n349 18\n"


def test_the_record_writer_knows_the_spans_without_reading_back(tmp_path):
    path = tmp_path / "x-4.tfrec"
    with RecordWriter(str(path)) as writer:
        for record in RECORDS:
            writer.write(record)
    assert writer.spans == shard_spans(str(path))


@NEEDS_TFRECORD
def test_our_index_is_byte_for_byte_what_tfrecord2idx_writes(tmp_path):
    shard = write_frames(tmp_path / "x-4.tfrec", RECORDS)
    tfrecord2idx(shard, tmp_path / "theirs.idx")
    assert index_bytes(shard_spans(str(shard))) == (tmp_path / "theirs.idx").read_bytes()


def test_an_empty_shard_has_an_empty_index(tmp_path):
    shard = write_frames(tmp_path / "x-0.tfrec", [])
    assert ensure_index(str(shard)) == "written"
    assert Path(f"{shard}.idx").read_bytes() == b""
    assert read_index(f"{shard}.idx") == []


def test_ensure_index_writes_then_checks_then_rewrites(tmp_path):
    shard = str(write_frames(tmp_path / "x-4.tfrec", RECORDS))
    assert ensure_index(shard) == "written"
    assert ensure_index(shard) == "checked"
    Path(f"{shard}.idx").write_bytes(b"0 17\n17 16\n33 999\n349 18\n")
    with pytest.raises(ShardError) as caught:
        ensure_index(shard)
    assert str(caught.value) == (
        f"{shard}.idx: line 3 says '33 999', but record 2 of {shard} is at byte 33, 316 bytes "
        f"long: the index does not match its shard; write it again with `tfrec index "
        f"--overwrite {shard}`"
    )
    assert ensure_index(shard, overwrite=True) == "rewritten"
    assert index_problem(shard) is None
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize(
    "text, expected",
    [
        (b"0 17\n17 16\n33 316\n", "3 lines for the 4 records of {shard}: line 4 is missing"),
        (b"0 17\n17 16\n33 316\n349 18\n367 5\n", "line 5 lists a record beyond the 4 of {shard}"),
        (b"0 17\n17 sixteen\n", "line 2 is not 'OFFSET LENGTH' ('17 sixteen')"),
    ],
)
def test_index_problems_name_the_index_and_its_first_wrong_line(tmp_path, text, expected):
    shard = str(write_frames(tmp_path / "x-4.tfrec", RECORDS))
    Path(f"{shard}.idx").write_bytes(text)
    problem = index_problem(shard)
    assert problem.startswith(f"{shard}.idx: {expected.format(shard=shard)}")
    assert problem.endswith(f"write it again with `tfrec index --overwrite {shard}`")


def test_a_missing_index_is_a_problem_naming_it(tmp_path):
    shard = str(write_frames(tmp_path / "x-4.tfrec", RECORDS))
    assert index_problem(shard) == f"{shard}.idx: not found; write it with `tfrec index {shard}`"
    with pytest.raises(ShardError, match=r"x-4.tfrec.idx: index file not found; write it with"):
        read_index(f"{shard}.idx")


def test_a_broken_shard_gets_no_index(tmp_path):
    shard = write_huge_frame(tmp_path / "x-1.tfrec")
    with pytest.raises(ShardError, match="claims 1152921504606846976 bytes"):
        ensure_index(str(shard))
    assert not Path(f"{shard}.idx").exists()


READER = """
import hashlib, json, sys
from tfrecord.reader import tfrecord_iterator, tfrecord_loader

out = {}
for shard in sys.argv[1:]:
    index = shard + ".idx"
    parts = [
        [hashlib.sha256(bytes(r)).hexdigest() for r in tfrecord_iterator(shard, index, (i, 3))]
        for i in range(3)
    ]
    ids = [r["image_id"].decode() for r in tfrecord_loader(shard, index, {"image_id": "byte"},
                                                             shard=(0, 1))]
    out[shard] = {"parts": parts, "ids": ids}
print(json.dumps(out))
"""


@NEEDS_TFRECORD
def test_the_tfrecord_package_reads_every_record_of_a_build_through_our_indexes(dataset, tmp_path):
    import tensorflow as tf

    images, csv_path = dataset
    config = BuildConfig(
        images=str(images),
        out=str(tmp_path / "out"),
        labels_csv=str(csv_path),
        image=ImageConfig(size=(8, 8)),
        shards=2,
        workers=1,
    )
    build(config)
    shards = sorted(str(p) for p in (tmp_path / "out").glob("*.tfrec"))
    run = subprocess.run([sys.executable, "-c", READER, *shards], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    theirs = json.loads(run.stdout)
    for shard in shards:
        raw = [r.numpy() for r in tf.data.TFRecordDataset(shard)]
        parts = theirs[shard]["parts"]
        assert all(parts), "every third of the index holds records"
        assert sum(parts, []) == [hashlib.sha256(r).hexdigest() for r in raw]
        ids = [tf.train.Example.FromString(r).features.feature["image_id"] for r in raw]
        assert theirs[shard]["ids"] == [i.bytes_list.value[0].decode() for i in ids]
    assert sum(len(v["ids"]) for v in theirs.values()) == 48
