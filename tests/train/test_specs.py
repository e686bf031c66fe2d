"""HeadSpec and InputSpec checks, and the heads and inputs a manifest gives."""

from __future__ import annotations

import dataclasses
import re

import pytest

from tests.helpers import make_dataset
from tfrec_tools.builder.config import BuildConfig, ImageConfig
from tfrec_tools.builder.run import build
from tfrec_tools.errors import ConfigError
from tfrec_tools.manifest import read_manifest
from tfrec_tools.schema import LabelSpec
from tfrec_tools.train.specs import HeadSpec, InputSpec, heads_from_manifest, inputs_from_manifest


@pytest.mark.parametrize(
    ("head", "message"),
    [
        (("y", "ordinal", 1), "`kind` of head 'y' must be one of"),
        (("y", "multiclass", 1), "multiclass head 'y' needs `num_classes` >= 2"),
        (("y", "binary", 2), "binary head 'y' has one output: `num_classes` must be 1"),
        (("y", "multilabel", 0), "multilabel head 'y' needs `num_classes` (tags) >= 1"),
        (
            ("y", "multilabel", 3, 1.0),
            "`threshold` of head 'y' must be in (0, 1). Received: threshold=1.0",
        ),
    ],
)
def test_head_spec_is_checked(head, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        HeadSpec(*head)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    root = tmp_path_factory.mktemp("build")
    image_dir, csv_path = make_dataset(root, n=12, groups=6)
    config = BuildConfig(
        images=str(image_dir),
        labels_csv=str(csv_path),
        out=str(root / "shards"),
        image=ImageConfig(size=(40, 48)),
        shards=2,
        feature_cols=("age", "site"),
        workers=1,
    )
    return read_manifest(build(config).manifest_path)


def test_heads_and_inputs_from_a_real_build(manifest):
    assert heads_from_manifest(manifest) == (HeadSpec("label", "multiclass", 3),)
    assert inputs_from_manifest(manifest) == InputSpec(
        (40, 48), numeric=("age",), categorical=(("site", 2),)
    )
    assert inputs_from_manifest(manifest, image_size=(64, 64)).image_size == (64, 64)


def test_heads_from_manifest_binary_regression_and_one_class(manifest):
    two = LabelSpec("sick", "classification", ("no", "yes"))
    edited = dataclasses.replace(manifest, labels=(two, LabelSpec("bmi", "regression")))
    assert heads_from_manifest(edited) == (
        HeadSpec("sick", "binary"),
        HeadSpec("bmi", "regression"),
    )
    tags = LabelSpec("tags", "multilabel", ("a", "b", "c", "d"))
    assert heads_from_manifest(dataclasses.replace(manifest, labels=(tags,)), threshold=0.3) == (
        HeadSpec("tags", "multilabel", 4, threshold=0.3),
    )
    one = dataclasses.replace(manifest, labels=(LabelSpec("y", "classification", ("a",)),))
    with pytest.raises(ConfigError, match="label 'y' has 1 class"):
        heads_from_manifest(one)
    with pytest.raises(ConfigError, match="hold no labels"):
        heads_from_manifest(dataclasses.replace(manifest, labels=()))


def test_inputs_from_manifest_needs_a_size_when_images_keep_theirs(manifest):
    keep = dataclasses.replace(manifest, image={**manifest.image, "size": None})
    with pytest.raises(ConfigError, match="keep each image's own size"):
        inputs_from_manifest(keep)
    assert inputs_from_manifest(keep, image_size=(32, 32)).image_size == (32, 32)
