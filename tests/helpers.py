"""Test helpers: tiny images and CSVs made with PIL at test time, and a record reader."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("cat", "dog", "emu")


def make_image(path: Path, size=(40, 30), *, seed: int = 0, fmt: str = "JPEG", mode="RGB"):
    """A small noisy image (size is (width, height)) saved as fmt at path."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    image = Image.fromarray(pixels).convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return path


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def make_dataset(root: Path, n: int = 48, groups: int = 12, size=(40, 30)):
    """n labeled images in two sub-folders, a CSV with label, patient_id, age and site."""
    rows = []
    for i in range(n):
        folder = "a" if i % 2 else "b"
        make_image(root / "images" / folder / f"img{i:03d}.jpg", size, seed=i)
        age = "" if i % 11 == 0 else f"{20 + i % 50}.5"
        rows.append(
            (f"img{i:03d}", CLASSES[i % 3], f"p{i % groups:02d}", age, ("head", "torso")[i % 2])
        )
    csv_path = write_csv(
        root / "labels.csv", ["image_id", "label", "patient_id", "age", "site"], rows
    )
    return root / "images", csv_path


def read_records(files: Sequence[str]) -> list[dict]:
    """Every record of the files, each feature as a Python value (first element of lists)."""
    import tensorflow as tf

    records = []
    for raw in tf.data.TFRecordDataset(list(files)):
        example = tf.train.Example.FromString(raw.numpy())
        record = {}
        for key, feature in example.features.feature.items():
            kind = feature.WhichOneof("kind")
            record[key] = list(getattr(feature, kind).value)[0]
        records.append(record)
    return records


def write_foreign_shard(path: Path, rows: Sequence[dict], *, seed: int = 0) -> Path:
    """A shard written the way public Kaggle datasets are: plain tf.train.Example, one JPEG
    under ``image`` (the same picture for every row when seed is fixed) and the row's keys."""
    import io

    import tensorflow as tf

    buffer = io.BytesIO()
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(buffer, "JPEG")
    with tf.io.TFRecordWriter(str(path)) as writer:
        for row in rows:
            feature = {
                "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[buffer.getvalue()]))
            }
            for key, value in row.items():
                if isinstance(value, str):
                    feature[key] = tf.train.Feature(
                        bytes_list=tf.train.BytesList(value=[value.encode()])
                    )
                else:
                    feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
            writer.write(
                tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
            )
    return path


def scene(seed: int, size: int = 64) -> Image.Image:
    """A smooth random background with three discs (edges and low frequencies, as photos)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(3):
        x, y = rng.integers(0, size * 3 // 4, 2)
        r = rng.integers(size // 10, size // 4)
        draw.ellipse((x, y, x + r, y + r), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return image
