"""dataset-metadata.json for Kaggle: the id's rules, a resource per file of every build in the
folder, and no overwrite without asking."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tfrec_tools import kaggle
from tfrec_tools.errors import ConfigError, ShardError
from tfrec_tools.manifest import Manifest, ShardEntry, manifest_path, write_manifest
from tfrec_tools.schema import LabelSpec, Schema


def write_build(folder: Path, name: str, *, folds: int = 2, classes=("cat", "dog")) -> Manifest:
    """A manifest and the (empty) shard files it lists; kaggle.py never reads the shards."""
    shards = []
    for index in range(2):
        histogram = {"label": {c: index + i + 1 for i, c in enumerate(classes)}} if classes else {}
        count = sum(histogram.get("label", {"-": 3}).values())
        file = f"{name}0{index}-{count}.tfrec"
        (folder / file).write_bytes(b"")
        fold = index % folds if folds else None
        shards.append(ShardEntry(file, index, fold, count, 0, "0" * 64, histogram))
    labels = (LabelSpec("label", "classification", tuple(classes)),) if classes else ()
    manifest = Manifest(
        name, "0.1.0", {}, Schema(), {"size": [16, 16], "format": "jpeg"}, labels, (), None,
        folds, tuple(shards), {"records": sum(s.count for s in shards), "rejected": 1}, "x",
    )  # fmt: skip
    write_manifest(manifest, manifest_path(str(folder), name))
    (folder / f"{name}.rejected.csv").write_text("row,image_id,path,reason,detail\n")
    return manifest


@pytest.mark.parametrize("good", ["alice/melanoma-256", "a-b_c/x12345", "bob/" + "a" * 50])
def test_a_valid_id_passes(good):
    assert kaggle.check_dataset_id(good) == good


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("melanoma-256", "`--id` must be OWNER/SLUG (e.g. alice/melanoma-256). Received: "),
        ("alice/abc", "the slug must be 6 to 50 characters long (received 3)"),
        ("alice/" + "a" * 51, "the slug must be 6 to 50 characters long (received 51)"),
        ("alice/Melanoma_256", "lowercase letters, digits and hyphens"),
        ("alice/-melanoma", "lowercase letters, digits and hyphens"),
        ("a/b/melanoma", "`--id` must be OWNER/SLUG"),
        ("al ice/melanoma", "`--id` must be OWNER/SLUG"),
    ],
)
def test_a_bad_id_is_refused_saying_the_rule(bad, message):
    with pytest.raises(ConfigError) as err:
        kaggle.check_dataset_id(bad)
    assert message in str(err.value)
    assert repr(bad) in str(err.value)


def test_metadata_has_the_kaggle_fields(tmp_path):
    write_build(tmp_path, "train")
    meta = kaggle.dataset_metadata(str(tmp_path), dataset_id="alice/skin-lesions")
    assert meta["id"] == "alice/skin-lesions"
    assert meta["title"] == "Skin lesions"
    assert meta["licenses"] == [{"name": "CC0-1.0"}]
    assert "**train**: 8 records in 2 shards" in meta["description"]


def test_every_file_of_every_build_is_described(tmp_path):
    write_build(tmp_path, "train")
    write_build(tmp_path, "test", folds=0, classes=())
    (tmp_path / "train00-3.tfrec.idx").write_text("0 10\n")
    (tmp_path / "notes.txt").write_text("not ours")
    meta = kaggle.dataset_metadata(str(tmp_path), dataset_id="alice/skin-lesions")
    described = {r["path"]: r["description"] for r in meta["resources"]}
    assert list(described) == [
        "test.manifest.json", "test00-3.tfrec", "test01-3.tfrec", "test.rejected.csv",
        "train.manifest.json", "train00-3.tfrec", "train00-3.tfrec.idx", "train01-5.tfrec",
        "train.rejected.csv",
    ]  # fmt: skip
    assert described["train01-5.tfrec"] == (
        "shard 1 of 2 of the 'train' build: fold 1, 5 records; label: dog 3, cat 2"
    )
    assert described["test00-3.tfrec"] == "shard 0 of 2 of the 'test' build: 3 records, unlabeled"
    assert "record index of train00-3.tfrec" in described["train00-3.tfrec.idx"]
    assert "rows of the 'train' build that were rejected (1)" in described["train.rejected.csv"]
    assert "manifest of the 'train' build" in described["train.manifest.json"]


def test_a_long_histogram_is_cut_to_the_largest_classes(tmp_path):
    write_build(tmp_path, "train", classes=[f"c{i}" for i in range(9)])
    meta = kaggle.dataset_metadata(str(tmp_path), dataset_id="alice/many-classes")
    shard = next(r for r in meta["resources"] if r["path"].startswith("train00"))
    assert shard["description"].endswith("label: c8 9, c7 8, c6 7, c5 6, c4 5, +4 more")


def test_title_and_license_are_checked(tmp_path):
    write_build(tmp_path, "train")
    with pytest.raises(ConfigError, match=r"`--title` must be 6 to 50 characters. Received: 'x'"):
        kaggle.dataset_metadata(str(tmp_path), dataset_id="alice/skin-lesions", title="x")
    with pytest.raises(ConfigError, match="`--license` must be one of"):
        kaggle.dataset_metadata(str(tmp_path), dataset_id="alice/skin-lesions", license_name="MIT")


def test_a_folder_without_a_manifest_is_refused(tmp_path):
    (tmp_path / "foreign00-3.tfrec").write_bytes(b"")
    with pytest.raises(ShardError, match=r"no \*\.manifest\.json: `tfrec kaggle-metadata`"):
        kaggle.dataset_metadata(str(tmp_path), dataset_id="alice/skin-lesions")


def test_a_missing_shard_is_refused(tmp_path):
    write_build(tmp_path, "train")
    (tmp_path / "train01-5.tfrec").unlink()
    with pytest.raises(ShardError, match="train01-5.tfrec: listed in .*train.manifest.json but"):
        kaggle.dataset_metadata(str(tmp_path), dataset_id="alice/skin-lesions")


def test_an_unfinished_build_is_refused(tmp_path):
    write_build(tmp_path, "train")
    (tmp_path / ".train.build").mkdir()
    with pytest.raises(ShardError, match=r"the build 'train' is unfinished \(.*\.train\.build"):
        kaggle.dataset_metadata(str(tmp_path), dataset_id="alice/skin-lesions")


def test_an_existing_metadata_file_is_kept_without_overwrite(tmp_path):
    write_build(tmp_path, "train")
    meta = kaggle.dataset_metadata(str(tmp_path), dataset_id="alice/skin-lesions")
    path = kaggle.write_metadata(str(tmp_path), meta)
    assert json.loads(Path(path).read_text())["id"] == "alice/skin-lesions"
    with pytest.raises(ConfigError, match="dataset-metadata.json exists: pass --overwrite"):
        kaggle.write_metadata(str(tmp_path), {**meta, "id": "alice/other-name"})
    kaggle.write_metadata(str(tmp_path), {**meta, "id": "alice/other-name"}, overwrite=True)
    assert json.loads(Path(path).read_text())["id"] == "alice/other-name"
