"""Record places from the index file or the framing walk, and single records read there."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.loader.conftest import write_index
from tfrec_tools.errors import ShardError
from tfrec_tools.loader.offsets import RecordReader, record_offsets

REDO = "rebuild the shards, or delete the index file (the loader then walks the shard)"


def first_shard(folder: Path) -> Path:
    return sorted(folder.glob("*.tfrec"))[0]


def test_the_index_file_and_the_walk_give_the_same_places(shards):
    shard = first_shard(shards)
    walked = record_offsets(str(shard))
    write_index(shard)
    indexed = record_offsets(str(shard))
    assert len(walked[0]) == 12 and walked[0][0] == 0
    assert all(np.array_equal(a, b) for a, b in zip(walked, indexed))
    assert walked[0][-1] + walked[1][-1] == shard.stat().st_size


def test_records_read_at_their_places_are_the_payloads(shards):
    import tensorflow as tf

    shard = str(first_shard(shards))
    reader = RecordReader()
    payloads = [reader.read(shard, int(o), int(n), "w") for o, n in zip(*record_offsets(shard))]
    assert payloads == [r.numpy() for r in tf.data.TFRecordDataset(shard)]


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        ("0 100\nabc\n", "line 2 is 'abc', expected \"<offset> <length>\""),
        ("0 100\n100\n", "line 2 is '100', expected \"<offset> <length>\""),
        (
            "0 100\n101 50\n",
            "line 2 (101 50) does not follow the record before it (expected offset 100)",
        ),
        ("0 100\n", "its 1 records end at byte 100, the shard has {size} bytes"),
    ],
)
def test_an_index_that_does_not_tile_its_shard_is_refused(shards, lines, problem):
    shard = first_shard(shards)
    index = write_index(shard)
    index.write_text(lines)
    with pytest.raises(ShardError) as err:
        record_offsets(str(shard))
    size = shard.stat().st_size
    assert str(err.value) == f"{index}: {problem.format(size=size)}; {REDO}"


def test_a_corrupted_record_is_named(shards):
    shard = first_shard(shards)
    offsets, lengths = record_offsets(str(shard))
    data = bytearray(shard.read_bytes())
    data[offsets[1] + 40] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(ShardError) as err:
        RecordReader().read(str(shard), int(offsets[1]), int(lengths[1]), f"{shard}: record 1")
    assert str(err.value) == (
        f"{shard}: record 1: the record's checksum does not match (the file is corrupted); "
        "rebuild it"
    )


def test_a_place_that_holds_no_record_is_named(shards):
    shard = first_shard(shards)
    offsets, lengths = record_offsets(str(shard))
    with pytest.raises(ShardError) as err:
        RecordReader().read(str(shard), int(offsets[1]) + 1, int(lengths[1]), "w")
    assert str(err.value) == (
        f"w: no record of {lengths[1]} bytes at byte {offsets[1] + 1} (the shard changed after "
        f"its index was written, or is cut short); {REDO}"
    )
