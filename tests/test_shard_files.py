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


@pytest.mark.parametrize("role", ["train", "predict", None])
def test_every_file_resolved_has_sound_framing(tmp_path, role):
    from tests.malformed import write_frames, write_huge_frame
    from tfrec_tools.shard_files import resolve_files

    write_frames(tmp_path / "a00-1.tfrec", [b"x"])
    bad = write_huge_frame(tmp_path / "a01-1.tfrec")
    with pytest.raises(
        ShardError, match=rf"^{bad}: record 0 \(byte 0\) claims 1152921504606846976"
    ):
        resolve_files(str(tmp_path), role)
    assert len(resolve_files(str(tmp_path), role, check=False)) == 2


def test_a_file_checked_once_is_checked_again_when_it_changes(tmp_path):
    from tests.malformed import write_frames, write_huge_frame
    from tfrec_tools.shard_files import resolve_files

    path = write_frames(tmp_path / "a00-1.tfrec", [b"x"])
    assert resolve_files(str(path)) == [str(path)]
    write_huge_frame(path)
    with pytest.raises(ShardError, match="claims 1152921504606846976 bytes"):
        resolve_files(str(path))
