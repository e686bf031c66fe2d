from __future__ import annotations

import pytest

from tfrec_tools.errors import ShardError
from tfrec_tools.shard_files import ShardSet, pick_set


def shard_set(name, labeled, folds=0, files=2):
    paths = tuple(f"d/{name}{i:02d}-5.tfrec" for i in range(files))
    manifest = None if labeled is None else f"d/{name}.manifest.json"
    return ShardSet(name, "d", paths, manifest, labeled, folds)


TRAIN, TEST = shard_set("train", True, 4, files=8), shard_set("test", False)


def test_train_takes_the_labeled_fold_assigned_set():
    assert pick_set([TEST, TRAIN, shard_set("val", True)], "train", "d") == TRAIN


def test_predict_takes_the_unlabeled_set():
    assert pick_set([TRAIN, TEST], "predict", "d") == TEST


def test_a_single_set_is_taken_whatever_the_role():
    assert pick_set([TRAIN], "predict", "d") == TRAIN


def test_two_candidates_are_listed_with_their_globs():
    with pytest.raises(ShardError) as err:
        pick_set([TRAIN, shard_set("extra", True, 4)], "train", "d")
    assert str(err.value) == (
        "d holds 2 shard sets: d/train[0-9]*.tfrec (8 files, labeled, 4 folds); "
        "d/extra[0-9]*.tfrec (2 files, labeled, 4 folds); pass the glob of a labeled set (quoted), "
        'e.g. "d/train[0-9]*.tfrec"'
    )


def test_foreign_shards_count_when_no_manifest_set_is_labeled():
    foreign = shard_set("ld_train", None)
    assert pick_set([TEST, foreign], "train", "d") == foreign


def test_an_empty_folder_has_no_shards():
    with pytest.raises(ShardError, match="d: no shard files"):
        pick_set([], "train", "d")
