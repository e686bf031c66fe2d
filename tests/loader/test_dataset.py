"""The TensorFlow-free datasets: map-style by index, the stream by (rank, worker) slot."""

from __future__ import annotations

import io
import subprocess
import sys
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from tests.helpers import read_records
from tests.loader.conftest import write_index
from tfrec_tools.errors import ShardError
from tfrec_tools.loader import RecordDataset, RecordStream, Slot
from tfrec_tools.manifest import read_manifest


def tf_records(folder) -> dict[str, dict]:
    return {
        r["image_id"].decode(): r for r in read_records(sorted(map(str, folder.glob("*.tfrec"))))
    }


def test_len_is_the_manifest_total_and_samples_hold_what_tensorflow_reads(built):
    dataset = RecordDataset(built)
    manifest = read_manifest(str(built / "train.manifest.json"))
    assert len(dataset) == manifest.totals["records"] == 48
    expected = tf_records(built)
    samples = [dataset[i] for i in range(len(dataset))]
    assert sorted(s["id"] for s in samples) == sorted(expected)
    for sample in samples:
        record = expected[sample["id"]]
        assert sorted(sample) == ["age", "id", "image", "label", "site"]
        assert sample["label"] == record["label"] and sample["label"].dtype == np.int64
        assert sample["site"] == record["site"] and sample["age"].dtype == np.float32
        assert repr(float(sample["age"])) == repr(record["age"])  # NaN when missing
        pixels = np.asarray(Image.open(io.BytesIO(record["image"])).convert("RGB"))
        assert sample["image"].dtype == np.uint8 and np.array_equal(sample["image"], pixels)


def test_folds_pick_their_shards(built):
    manifest = read_manifest(str(built / "train.manifest.json"))
    for fold in (0, 1):
        dataset = RecordDataset(built / "train.manifest.json", folds=[fold])
        counts = sum(s.count for s in manifest.shards if s.fold == fold)
        assert len(dataset) == counts
        assert {s["id"] for s in (dataset[i] for i in range(len(dataset)))} == {
            r["image_id"].decode()
            for path in dataset.shards.files
            for r in read_records([path])
            if r["fold"] == fold
        }
    assert len(RecordDataset(built, folds=[0, 1])) == 48


def test_indexes_and_negative_indices(shards):
    for shard in shards.glob("*.tfrec"):
        write_index(shard)
    dataset = RecordDataset(shards)
    assert dataset[-1]["id"] == dataset[47]["id"]
    with pytest.raises(IndexError):
        dataset[48]


def test_transform_is_applied_to_the_image(built):
    dataset = RecordDataset(built, transform=lambda image: image[:8, :4].astype(np.float32))
    assert dataset[0]["image"].shape == (8, 4, 3) and dataset[0]["image"].dtype == np.float32


@pytest.mark.parametrize("with_index", [False, True])
def test_two_workers_times_two_ranks_read_each_id_exactly_once_per_epoch(shards, with_index):
    for shard in shards.glob("*.tfrec") if with_index else ():
        write_index(shard)
    stream = RecordStream(shards, shuffle=True, seed=5)
    orders = []
    for epoch in (0, 1):
        stream.set_epoch(epoch)
        read = [
            [
                s["id"]
                for s in stream.iter_share(Slot(rank=r, world_size=2, worker_id=w, num_workers=2))
            ]
            for r in (0, 1)
            for w in (0, 1)
        ]
        ids = Counter(i for share in read for i in share)
        assert len(ids) == 48 and set(ids.values()) == {1}
        orders.append(read)
    assert orders[0] != orders[1]


def test_a_stream_in_one_process_reads_every_record_in_file_order(built):
    dataset = RecordDataset(built)
    assert [s["id"] for s in RecordStream(built)] == [dataset[i]["id"] for i in range(48)]


def test_importing_and_reading_never_imports_tensorflow(built):
    code = (
        "import sys\n"
        "from tfrec_tools.loader import RecordDataset, RecordStream\n"
        f"dataset = RecordDataset({str(built)!r}, folds=[0])\n"
        "assert len(dataset) == 24 and dataset[3]['image'].shape == (16, 16, 3)\n"
        f"assert len(list(RecordStream({str(built)!r}))) == 48\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_record_missing_a_key_further_in_is_named(shards):
    dataset = RecordDataset(shards)
    keys = replace(dataset.keys, labels=("height", "nope"))
    dataset.shards = replace(dataset.shards, keys=keys)  # as if record 0 held them
    with pytest.raises(ShardError) as err:
        dataset[13]
    file = dataset.shards.files[1]
    assert str(err.value) == (
        f"{file}: record 1: 'nope' holds nothing (the key is missing), expected int64 or float"
    )
