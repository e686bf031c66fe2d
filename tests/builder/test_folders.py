from __future__ import annotations

import pytest

from tfrec_tools.builder.config import BuildConfig
from tfrec_tools.builder.plan import make_plan
from tfrec_tools.errors import ConfigError


def plan_of(files, **options):
    return make_plan(BuildConfig(images="imgs", out="o", **options), files, None)


def class_files(per_class=40, classes=("dog", "cat", "10", "2")):
    return [f"{c}/{i:03d}.jpg" for c in classes for i in range(per_class)]


def test_class_folders_label_by_folder_name_sorted_as_keras_sorts():
    plan = plan_of(class_files())
    assert plan.config.labels_from == "folders" and plan.config.name == "train"
    (label,) = plan.labels
    assert (label.name, label.classes) == ("label", ("10", "2", "cat", "dog"))
    for shard in plan.shards:
        for row in shard.rows:
            assert label.classes[row.values[0]] == row.image_id.split("/")[0]


def test_class_folders_are_stratified_and_fold_assigned():
    plan = plan_of(class_files(per_class=80))
    assert plan.config.folds == 5
    for shard in plan.shards:
        counts = [sum(1 for r in shard.rows if r.values[0] == c) for c in range(4)]
        assert max(counts) - min(counts) <= 1


def test_flat_folder_is_unlabeled_and_named_test():
    plan = plan_of([f"{i:03d}.png" for i in range(60)])
    assert plan.labels == () and plan.config.name == "test" and plan.config.folds == 0


def test_one_folder_is_a_container_not_a_class():
    plan = plan_of([f"all/{i:03d}.png" for i in range(40)])
    assert plan.labels == ()


def test_images_at_two_depths_are_ambiguous():
    files = class_files(per_class=5) + ["stray.jpg"]
    with pytest.raises(
        ConfigError,
        match=r"imgs: images at 2 depths \(1 at the top level, 20 one folder down\).*--labels-",
    ):
        plan_of(files)


def test_forced_folders_reject_top_level_images_with_a_reason():
    files = class_files(per_class=40) + ["stray.jpg"]
    plan = plan_of(files, labels_from="folders")
    assert [(r.image_id, r.reason) for r in plan.rejected] == [("stray", "no class")]
    assert sum(len(s.rows) for s in plan.shards) == 160


def test_forced_folders_label_nested_images_by_their_top_folder():
    plan = plan_of(["cat/a/1.jpg", "dog/b/c/2.jpg"] * 1, labels_from="folders", folds=0)
    ids = {r.image_id: r.values for s in plan.shards for r in s.rows}
    assert ids == {"cat/a/1": (0,), "dog/b/c/2": (1,)}


def test_forced_none_keeps_class_folders_unlabeled():
    plan = plan_of(class_files(per_class=10), labels_from="none")
    assert plan.labels == () and plan.config.folds == 0


def test_label_key_renames_the_record_key():
    plan = plan_of(class_files(), label_key="target")
    assert plan.labels[0].name == "target" and "target" in plan.schema.names


def test_label_key_cannot_take_a_reserved_name():
    with pytest.raises(ConfigError, match="column 'fold' would overwrite"):
        plan_of(class_files(), label_key="fold")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"labels_from": "folders", "labels_csv": "x.csv"}, "--labels-from folders takes no"),
        ({"labels_from": "csv"}, "--labels-from csv needs a LABELS_CSV"),
        ({"labels_from": "none", "folds": 5}, "--folds needs labels"),
        ({"labels_from": "nope"}, "`labels_from` must be one of auto, csv, folders, none"),
    ],
)
def test_contradictory_label_options(options, message):
    with pytest.raises(ConfigError, match=message):
        BuildConfig(images="imgs", **options)


def test_vocab_from_gives_a_holdout_set_the_training_codes():
    files = class_files(per_class=40, classes=("dog", "emu", "owl"))
    plan = make_plan(
        BuildConfig(images="imgs", out="o", name="holdout"),
        files,
        None,
        vocabularies={"label": ("cat", "dog", "emu")},
    )
    assert plan.labels[0].classes == ("cat", "dog", "emu")
    codes = {r.image_id.split("/")[0]: r.values[0] for s in plan.shards for r in s.rows}
    assert codes == {"dog": 1, "emu": 2}
    assert {r.reason for r in plan.rejected} == {"unknown class"} and len(plan.rejected) == 40
