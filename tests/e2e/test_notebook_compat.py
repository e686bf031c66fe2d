"""The reference notebooks' reader, in plain TensorFlow (no tfrec_tools import in the reader),
reads a default build made with --label-key target (docs/coming-from-notebooks.md)."""

from __future__ import annotations

import re

import numpy as np
import tensorflow as tf
from click.testing import CliRunner

from tests.helpers import CLASSES, make_image, write_csv
from tfrec_tools.cli import main

AUTO = tf.data.AUTOTUNE
IMAGE_SIZE = (32, 32)


def count_data_items(filenames):
    n = [int(re.compile(r"-([0-9]*)\.").search(fn).group(1)) for fn in filenames]
    return np.sum(n)


def decode_image(image_data, image_size=IMAGE_SIZE):
    image = tf.image.decode_jpeg(image_data, channels=3)
    image = tf.cast(image, tf.float32) / 255.0
    return tf.reshape(image, [*image_size, 3])


def read_labeled_tfrecord(example):
    schema = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "image_id": tf.io.FixedLenFeature([], tf.string),
        "target": tf.io.FixedLenFeature([], tf.int64),
    }
    example = tf.io.parse_single_example(example, schema)
    return decode_image(example["image"]), tf.cast(example["target"], tf.int32)


def read_unlabeled_tfrecord(example):
    schema = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "image_id": tf.io.FixedLenFeature([], tf.string),
    }
    example = tf.io.parse_single_example(example, schema)
    return decode_image(example["image"]), example["image_id"]


def get_dataset(files, labeled=True, batch_size=8):
    ds = tf.data.TFRecordDataset(files, num_parallel_reads=AUTO)
    ds = ds.map(read_labeled_tfrecord if labeled else read_unlabeled_tfrecord)
    return ds.batch(batch_size).prefetch(AUTO)


def test_notebook_reader_reads_our_shards(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = []
    for i in range(60):
        make_image(tmp_path / "train" / f"img{i:03d}.jpg", (40, 30), seed=i)
        rows.append((f"img{i:03d}", CLASSES[i % 3]))
        make_image(tmp_path / "test" / f"t{i:03d}.jpg", (20, 20), seed=100 + i)
    write_csv(tmp_path / "train.csv", ["image_id", "label"], rows)
    runner = CliRunner()
    for args in (
        ["build", "train", "train.csv", "--size", "32", "--label-key", "target"],
        ["build", "test", "--size", "32"],
    ):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, result.output

    train_files = sorted(tf.io.gfile.glob("shards/train*.tfrec"))
    test_files = sorted(tf.io.gfile.glob("shards/test*.tfrec"))
    assert count_data_items(train_files) == 60 and count_data_items(test_files) == 60
    labels = np.concatenate([y.numpy() for _, y in get_dataset(train_files)])
    images = next(iter(get_dataset(train_files)))[0]
    assert images.shape == (8, 32, 32, 3) and sorted(np.bincount(labels)) == [20, 20, 20]
    ids = [i for _, batch in get_dataset(test_files, labeled=False) for i in batch.numpy()]
    assert sorted(i.decode() for i in ids) == [f"t{i:03d}" for i in range(60)]
