"""What the loader reads: manifest, folder or files; folds; keys; one-line errors naming the
file for shards it cannot serve."""

from __future__ import annotations

import json

import pytest

from tests.helpers import write_foreign_shard
from tfrec_tools.errors import ConfigError, ShardError
from tfrec_tools.loader import Keys, RecordDataset
from tfrec_tools.loader.offsets import record_offsets
from tfrec_tools.loader.source import open_shards
from tfrec_tools.record_keys import ID_KEYS, LABEL_KEYS


def test_a_manifest_a_folder_and_its_files_give_the_same_records(built):
    by_manifest = open_shards(built / "train.manifest.json")
    by_folder = open_shards(built)
    by_glob = open_shards([str(built / "train*.tfrec")])
    assert by_manifest.files == by_folder.files == by_glob.files and len(by_glob.files) == 4
    assert by_glob.manifest == by_manifest.manifest and by_glob.keys == by_manifest.keys
    assert by_manifest.keys == Keys(labels=("label",), features=("age", "site"))


def test_foreign_shards_get_their_keys_guessed(tmp_path):
    rows = [{"image_name": f"x{i}", "target": i % 2} for i in range(5)]
    shard = write_foreign_shard(tmp_path / "a.tfrec", rows)
    dataset = RecordDataset(shard)
    assert dataset.keys == Keys("image", "image_name", ("target",))
    assert [dataset[i]["id"] for i in range(5)] == [f"x{i}" for i in range(5)]
    assert dataset[1]["target"] == 1 and dataset[1]["image"].shape == (12, 12, 3)


def test_shards_without_ids_are_refused_naming_the_file(tmp_path):
    shard = write_foreign_shard(tmp_path / "a.tfrec", [{"target": 1}])
    with pytest.raises(ShardError) as err:
        RecordDataset(tmp_path)
    assert str(err.value) == (
        f"{shard}: the records have no id key (looked for a bytes or int64 key named one of "
        f"{', '.join(ID_KEYS)}; they hold: image, target); name it with Keys(id=...)"
    )


def test_shards_without_labels_are_refused_naming_the_file(tmp_path):
    shard = write_foreign_shard(tmp_path / "a.tfrec", [{"image_id": "x"}])
    with pytest.raises(ShardError) as err:
        RecordDataset(shard)
    assert str(err.value) == (
        f"{shard}: the records have no label key (looked for a int64 or float key named one "
        f"of {', '.join(LABEL_KEYS)}; they hold: image, image_id); name it with "
        "Keys(labels=...) or pass labeled=False"
    )
    assert RecordDataset(shard, labeled=False)[0].keys() == {"image", "id"}


def test_an_unlabeled_build_needs_labeled_false(built, tmp_path):
    data = json.loads((built / "train.manifest.json").read_text())
    data["labels"] = []
    manifest = tmp_path / "test.manifest.json"
    manifest.write_text(json.dumps({**data, "shards": []}))
    with pytest.raises(ShardError) as err:
        open_shards(manifest)
    assert str(err.value) == (
        f"{manifest}: the build has no label column (an unlabeled set); pass labeled=False "
        "to read images and ids"
    )


def test_a_shard_whose_first_record_lacks_a_named_key_is_named(built):
    with pytest.raises(ConfigError) as err:
        RecordDataset(built, keys=Keys(labels=("target",)))
    shard = sorted(built.glob("*.tfrec"))[0]
    assert str(err.value).startswith(
        f"{shard}: record 0 has no key 'target' (it holds: age (float), "
    )


@pytest.mark.parametrize(
    ("folds", "message"),
    [
        ([2], "`folds` must be among the build's folds [0, 1]. Received: folds=[2]"),
        ([0, 5], "`folds` must be among the build's folds [0, 1]. Received: folds=[0, 5]"),
        ([], "`folds` must be among the build's folds [0, 1]. Received: folds=[]"),
    ],
)
def test_folds_outside_the_build_are_refused(built, folds, message):
    with pytest.raises(ConfigError) as err:
        open_shards(built, folds=folds)
    assert str(err.value) == f"{built / 'train.manifest.json'}: {message}"


def test_folds_need_a_manifest(tmp_path):
    shard = write_foreign_shard(tmp_path / "a.tfrec", [{"image_id": "x", "label": 0}])
    with pytest.raises(ConfigError) as err:
        open_shards(shard, folds=[0])
    assert str(err.value) == (
        f"{shard}: `folds` needs the shards' manifest, and none lists these files. "
        "Received: folds=[0]; pass folds=None"
    )


def test_a_shard_that_disagrees_with_its_manifest_is_named(shards):
    shard = sorted(shards.glob("*.tfrec"))[1]
    offsets, _ = record_offsets(str(shard))
    shard.write_bytes(shard.read_bytes()[: offsets[-1]])  # its last record dropped
    with pytest.raises(ShardError) as err:
        open_shards(shards)
    assert str(err.value) == f"{shard}: 11 records, its manifest says 12; rebuild the shards"


def test_a_shard_missing_from_its_folder_is_named(shards):
    missing = sorted(shards.glob("*.tfrec"))[3]
    missing.unlink()
    with pytest.raises(ShardError) as err:
        open_shards(shards)
    assert str(err.value) == (
        f"{missing}: listed in {shards / 'train.manifest.json'} but missing; copy it again or "
        "rebuild"
    )


def test_shards_on_a_bucket_are_refused():
    with pytest.raises(ConfigError) as err:
        open_shards("gs://bucket/shards")
    assert str(err.value) == (
        "gs://bucket/shards: the loader reads local files; copy the shards to a local disk "
        "(or mount the bucket, e.g. with gcsfuse)"
    )


@pytest.mark.parametrize(
    ("name", "problem"), [("nope.tfrec", "no such file"), ("nope*.tfrec", "no file matches")]
)
def test_paths_that_name_no_shard_are_refused(tmp_path, name, problem):
    with pytest.raises(ShardError) as err:
        open_shards([str(tmp_path / name)])
    assert str(err.value) == f"{tmp_path / name}: {problem}"


def test_a_folder_of_several_builds_needs_one_manifest(shards):
    (shards / "test.manifest.json").write_text("{}")
    with pytest.raises(ConfigError) as err:
        open_shards(shards)
    assert str(err.value) == (
        f"{shards} holds 2 manifests (test.manifest.json, train.manifest.json); pass one of "
        f"them, e.g. {shards / 'test.manifest.json'}"
    )
