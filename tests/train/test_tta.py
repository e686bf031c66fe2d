from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import write_csv
from tfrec_tools.builder.config import BuildConfig, ImageConfig
from tfrec_tools.builder.run import build
from tfrec_tools.errors import ShardError
from tfrec_tools.read.augment import AugmentConfig
from tfrec_tools.read.pipeline import ReadConfig
from tfrec_tools.train.specs import HeadSpec
from tfrec_tools.train.tta import predict_tta

HEAD = (HeadSpec("label", "binary"),)
FLIPS = AugmentConfig(flip_left_right=True, flip_up_down=True)


class Brightness:
    """A stand-in model: predicts each image's mean brightness, so the right prediction for
    every id is known. Records the batch sizes it is given."""

    def __init__(self) -> None:
        self.sizes: set[int] = set()

    def predict_on_batch(self, x):
        self.sizes.add(len(x))
        return np.asarray(x, dtype=np.float64).mean(axis=(1, 2, 3)) / 255.0


def brightness_shards(tmp_path, n: int = 23):
    images = tmp_path / "images"
    images.mkdir()
    levels = {}
    for i in range(n):
        level = 10 * i + 5
        Image.new("RGB", (8, 8), (level, level, level)).save(images / f"id{i:02d}.png")
        levels[f"id{i:02d}"] = level / 255.0
    csv_path = write_csv(
        tmp_path / "l.csv", ["id", "label"], [(k, i % 2) for i, k in enumerate(levels)]
    )
    config = BuildConfig(
        images=str(images),
        out=str(tmp_path / "shards"),
        labels_csv=str(csv_path),
        image=ImageConfig(size=(8, 8)),
        shards=3,
        workers=1,
    )
    build(config)
    return sorted(str(p) for p in (tmp_path / "shards").glob("*.tfrec")), levels


@pytest.mark.parametrize("passes", [1, 3])
def test_predictions_are_aligned_to_ids(tmp_path, passes):
    files, levels = brightness_shards(tmp_path)
    read = ReadConfig(batch_size=4, seed=0)  # 23 records: the last batch is partial
    model = Brightness()
    result = predict_tta(model, files, read, HEAD, passes=passes, augment=FLIPS, labeled=True)
    assert model.sizes == {4}  # the partial batch is padded: one traced shape per model
    assert sorted(result.ids) == sorted(levels)
    for image_id, value in zip(result.ids, result.values["label"]):
        assert value == pytest.approx(levels[image_id], abs=2 / 255)
    labels = dict(zip(result.ids, result.labels["label"]))
    assert [labels[f"id{i:02d}"] for i in range(4)] == [0, 1, 0, 1]


def test_unlabeled_prediction_keeps_every_id(tmp_path):
    files, levels = brightness_shards(tmp_path)
    result = predict_tta(
        Brightness(), files, ReadConfig(batch_size=5), HEAD, passes=2, augment=FLIPS, labeled=False
    )
    assert sorted(result.ids) == sorted(levels) and result.labels is None


def test_duplicate_ids_are_refused(tmp_path):
    files, _ = brightness_shards(tmp_path)
    copy = tmp_path / "copy" / "again00-8.tfrec"
    copy.parent.mkdir()
    copy.write_bytes(Path(files[0]).read_bytes())
    with pytest.raises(ShardError, match="expected every id exactly 2 times"):
        predict_tta(
            Brightness(),
            [*files, str(copy)],
            ReadConfig(batch_size=4),
            HEAD,
            passes=2,
            augment=FLIPS,
            labeled=True,
        )


class TagBrightness:
    """A stand-in multi-label model: three 'probabilities' per image, its mean brightness
    and two fixed values."""

    def predict_on_batch(self, x):
        level = np.asarray(x, dtype=np.float64).mean(axis=(1, 2, 3)) / 255.0
        return np.stack([level, np.full_like(level, 0.25), np.full_like(level, 0.75)], axis=1)


def test_multi_hot_labels_and_tag_probabilities_stay_with_their_ids(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    cells, levels = ["a", "b c", "", "a c"] * 3, {}
    for i in range(len(cells)):
        level = 20 * i + 5
        Image.new("RGB", (8, 8), (level, level, level)).save(images / f"id{i:02d}.png")
        levels[f"id{i:02d}"] = level / 255.0
    csv_path = write_csv(tmp_path / "t.csv", ["id", "tags"], list(zip(levels, cells)))
    config = BuildConfig(
        images=str(images),
        out=str(tmp_path / "shards"),
        labels_csv=str(csv_path),
        image=ImageConfig(size=(8, 8)),
        multi_label=True,
        shards=3,
        workers=1,
    )
    build(config)
    files = sorted(str(p) for p in (tmp_path / "shards").glob("*.tfrec"))
    head = (HeadSpec("tags", "multilabel", 3),)
    result = predict_tta(
        TagBrightness(), files, ReadConfig(batch_size=5, seed=0), head, passes=2,
        augment=FLIPS, labeled=True,
    )  # fmt: skip
    assert result.values["tags"].shape == result.labels["tags"].shape == (12, 3)
    hot = {"a": (1, 0, 0), "b c": (0, 1, 1), "": (0, 0, 0), "a c": (1, 0, 1)}
    for image_id, value, truth in zip(result.ids, result.values["tags"], result.labels["tags"]):
        assert value[0] == pytest.approx(levels[image_id], abs=2 / 255)
        assert tuple(truth) == hot[cells[int(image_id[2:])]]
