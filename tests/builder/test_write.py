from __future__ import annotations

import errno
import hashlib
import os
import threading
from pathlib import Path

import pytest

from tests.helpers import make_image
from tfrec_tools import fs
from tfrec_tools.builder.config import ImageConfig
from tfrec_tools.builder.plan import ShardSpec
from tfrec_tools.builder.rows import RowSpec
from tfrec_tools.builder.write import ShardJob, write_shard
from tfrec_tools.errors import ResourceError
from tfrec_tools.index import index_bytes, shard_spans
from tfrec_tools.schema import build_schema


def job_for(out: Path, **image) -> ShardJob:
    out.mkdir(exist_ok=True)
    return ShardJob(
        out=str(out),
        name="train",
        num_shards=1,
        schema=build_schema((), (), with_fold=False),
        labels=(),
        value_keys=(),
        image=ImageConfig(size=(8, 8), **image),
    )


def spec_for(*paths: Path) -> ShardSpec:
    return ShardSpec(0, None, tuple(RowSpec(i, p.stem, str(p), ()) for i, p in enumerate(paths)))


def write_within(seconds: float, spec: ShardSpec, job: ShardJob):
    """write_shard in a thread: a read that blocks (a FIFO) fails the test instead of hanging."""
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(result=write_shard(spec, job)))
    thread.daemon = True
    thread.start()
    thread.join(seconds)
    return outcome.get("result")


def reasons(result) -> list[tuple[str, str]]:
    return [(r.image_id, r.reason) for r in result.rejected]


def test_fifo_and_device_are_rejected_without_reading(tmp_path):
    good = make_image(tmp_path / "good.jpg")
    fifo = tmp_path / "fifo.jpg"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.jpg"
    zero.symlink_to("/dev/zero")
    result = write_within(10, spec_for(good, fifo, zero), job_for(tmp_path / "out"))
    if result is None:  # a reader stuck on the FIFO gets its end of file
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert result is not None, "reading a FIFO blocked the build"
    assert reasons(result) == [("fifo", "not a regular file"), ("zero", "not a regular file")]
    assert result.entry.count == 1


def test_file_above_the_cap_is_rejected_unread(tmp_path, monkeypatch):
    big = tmp_path / "big.jpg"
    with open(big, "wb") as handle:
        handle.truncate(64 << 20)  # sparse: 64 MB of nothing
    monkeypatch.setattr(fs, "read_bytes", pytest.fail)
    result = write_shard(spec_for(big), job_for(tmp_path / "out", max_pixels=1000))
    assert reasons(result) == [("big", "file too large")]
    assert "67108864 bytes" in result.rejected[0].detail


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EROFS])
def test_a_full_disk_stops_the_build(tmp_path, monkeypatch, code):
    good = make_image(tmp_path / "good.jpg")

    def full(self, record):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr("tfrec_tools.builder.write.RecordWriter.write", full)
    with pytest.raises(ResourceError, match=os.strerror(code)):
        write_shard(spec_for(good), job_for(tmp_path / "out"))
    assert not list((tmp_path / "out").iterdir())  # the partial shard gave its space back


def test_running_out_of_memory_stops_the_build(tmp_path, monkeypatch):
    good = make_image(tmp_path / "good.jpg")

    def no_memory(data, config):
        raise MemoryError

    monkeypatch.setattr("tfrec_tools.builder.write.prepare_image", no_memory)
    with pytest.raises(ResourceError, match="out of memory"):
        write_shard(spec_for(good), job_for(tmp_path / "out"))


def test_an_unreadable_file_is_still_a_rejection(tmp_path):
    gone = make_image(tmp_path / "gone.jpg")
    spec = spec_for(gone)
    gone.unlink()  # deleted between the plan and the write
    result = write_shard(spec, job_for(tmp_path / "out"))
    assert reasons(result) == [("gone", "unreadable file")]


def test_the_shard_is_on_disk_before_its_name_says_it_is_complete(tmp_path, monkeypatch):
    events = []
    real_rename = fs.rename
    monkeypatch.setattr(fs, "sync", lambda path: events.append(("sync", Path(path).name)))
    monkeypatch.setattr(
        fs, "rename", lambda a, b: (events.append(("rename", Path(a).name)), real_rename(a, b))
    )
    write_shard(spec_for(make_image(tmp_path / "good.jpg")), job_for(tmp_path / "out"))
    partial = f"train00.{os.getpid()}.tfrec.partial"
    index = f"train00-1.tfrec.idx.{os.getpid()}.partial"
    # the index is in place first: a shard's final name never exists without its index
    assert events == [
        ("sync", partial),
        ("sync", index),
        ("rename", index),
        ("sync", "out"),
        ("rename", partial),
        ("sync", "out"),
    ]


def test_the_index_lists_every_frame_and_the_entry_its_sha256(tmp_path):
    images = [make_image(tmp_path / f"{i}.jpg", seed=i) for i in range(3)]
    result = write_shard(spec_for(*images), job_for(tmp_path / "out"))
    shard = tmp_path / "out" / "train00-3.tfrec"
    index = tmp_path / "out" / "train00-3.tfrec.idx"
    assert index.read_bytes() == index_bytes(shard_spans(str(shard)))
    assert result.entry.index_file == "train00-3.tfrec.idx"
    assert result.entry.index_sha256 == hashlib.sha256(index.read_bytes()).hexdigest()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [shard.name, index.name]


def test_a_shard_without_records_gets_an_empty_index(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a picture")
    result = write_shard(spec_for(bad), job_for(tmp_path / "out"))
    assert result.entry.count == 0
    assert (tmp_path / "out" / "train00-0.tfrec.idx").read_bytes() == b""


def test_a_full_disk_while_writing_the_index_leaves_nothing(tmp_path, monkeypatch):
    def full(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)

    monkeypatch.setattr(fs, "write_bytes_atomic", full)
    with pytest.raises(ResourceError, match="train00-1.tfrec.idx: No space left"):
        write_shard(spec_for(make_image(tmp_path / "good.jpg")), job_for(tmp_path / "out"))
    assert not list((tmp_path / "out").iterdir())


def test_result_holds_each_stored_record_hash_and_survives_save_and_load(tmp_path):
    from tests.helpers import read_records
    from tfrec_tools.builder.write import load_results, save_result
    from tfrec_tools.phash import bytes_hash

    good = [make_image(tmp_path / f"img{i}.jpg", seed=i) for i in range(3)]
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"no image")
    result = write_shard(spec_for(good[0], bad, good[1], good[2]), job_for(tmp_path / "out"))
    stored = read_records([str(tmp_path / "out" / result.entry.file)])
    assert [h.image_id for h in result.hashes] == ["img0", "img1", "img2"]
    assert {h.shard for h in result.hashes} == {result.entry.file}
    for row, record in zip(result.hashes, stored):
        assert row.sha256 == hashlib.sha256(record["image"]).hexdigest()
        assert bin(row.phash ^ bytes_hash(record["image"])).count("1") <= 12  # 8x8 px
    state = tmp_path / "state"
    state.mkdir()
    save_result(str(state), result)
    assert load_results(str(state))[0] == result
