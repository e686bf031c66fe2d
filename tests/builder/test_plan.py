from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest

from tests.helpers import make_dataset, write_csv
from tfrec_tools.builder.config import BuildConfig, ImageConfig
from tfrec_tools.builder.plan import make_plan
from tfrec_tools.builder.table import read_table
from tfrec_tools.errors import ConfigError, DataError
from tfrec_tools.fs import walk_files
from tfrec_tools.schema import FeatureSpec, LabelSpec


def plan_for(images, csv_path, **options):
    options.setdefault("group_col", "patient_id")
    config = BuildConfig(images=str(images), out="unused", labels_csv=str(csv_path), **options)
    return make_plan(config, list(walk_files(str(images))), read_table(str(csv_path)))


def shard_ids(plan):
    return [[row.image_id for row in shard.rows] for shard in plan.shards]


def test_plan_is_deterministic_and_seeded(dataset):
    first = plan_for(*dataset, shards=4, folds=2, seed=1)
    assert shard_ids(first) == shard_ids(plan_for(*dataset, shards=4, folds=2, seed=1))
    assert shard_ids(first) != shard_ids(plan_for(*dataset, shards=4, folds=2, seed=2))
    assert first.fingerprint == plan_for(*dataset, shards=4, folds=2, seed=1).fingerprint


def test_groups_never_span_shards(dataset):
    plan = plan_for(*dataset, shards=6, folds=3)
    table = pd.read_csv(dataset[1]).set_index("image_id")
    owner = {}
    for shard in plan.shards:
        for row in shard.rows:
            group = table.loc[row.image_id, "patient_id"]
            assert owner.setdefault(group, shard.index) == shard.index


def test_every_shard_is_stratified(tmp_path):
    images, csv_path = make_dataset(tmp_path, n=120, groups=120)
    plan = plan_for(images, csv_path, shards=4, folds=4, group_col=None)
    for shard in plan.shards:
        counts = Counter(row.values[0] for row in shard.rows)
        assert sorted(counts.values()) == [10, 10, 10]  # 40 of each class over 4 shards


def test_shards_map_to_folds_round_robin(dataset):
    plan = plan_for(*dataset, shards=6, folds=3)
    assert [s.fold for s in plan.shards] == [0, 1, 2, 0, 1, 2]


def test_every_row_lands_once_or_is_rejected(tmp_path):
    images, _ = make_dataset(tmp_path, n=12, groups=4)
    rows = [(f"img{i:03d}", "cat", "p1") for i in range(10)]  # rows 2..11
    rows += [("ghost", "dog", "p1"), ("img001", "dog", "p2"), ("a/img003.jpg", "dog", "p3")]
    rows += [("img010", "", "p1"), ("img011", "cat", ""), ("", "cat", "p1")]
    csv_path = write_csv(tmp_path / "x.csv", ["image_id", "label", "patient_id"], rows)
    plan = plan_for(images, csv_path, shards=1)
    planned = [row.row for shard in plan.shards for row in shard.rows]
    rejected = {r.row: r.reason for r in plan.rejected}
    assert sorted(planned + list(rejected)) == list(range(2, 2 + 16))
    assert rejected == {
        12: "missing file",
        13: "duplicate id",
        14: "duplicate image",
        15: "missing label",
        16: "missing group",
        17: "missing id",
    }
    assert plan.num_rows == 16


def test_ids_match_by_path_with_or_without_extension_or_unique_stem(tmp_path):
    images, _ = make_dataset(tmp_path, n=4, groups=2)
    rows = [("a/img001.jpg", "cat", "p"), ("b/img002", "dog", "p"), ("img003", "cat", "q")]
    plan = plan_for(
        images, write_csv(tmp_path / "x.csv", ["id", "label", "patient_id"], rows), shards=1
    )
    assert not plan.rejected
    assert [r.image_id for r in plan.shards[0].rows] != []
    assert plan.unmatched == ("b/img000.jpg",)


def test_ambiguous_stem_is_rejected_with_the_candidates(tmp_path):
    images, _ = make_dataset(tmp_path, n=2, groups=1)
    (images / "c").mkdir()
    (images / "c" / "img001.jpg").write_bytes((images / "a" / "img001.jpg").read_bytes())
    csv_path = write_csv(
        tmp_path / "x.csv", ["id", "label"], [("img001", "cat"), ("img000", "dog")]
    )
    plan = plan_for(images, csv_path, shards=1, group_col=None)
    (rejection,) = plan.rejected
    assert rejection.reason == "ambiguous id"
    assert "a/img001.jpg, c/img001.jpg" in rejection.detail


def test_label_kinds(tmp_path):
    images, _ = make_dataset(tmp_path, n=6, groups=1)
    ids = [f"img{i:03d}" for i in range(6)]
    rows = [(i, n % 3, f"{n * 0.5}", "xyz"[n % 3]) for n, i in enumerate(ids)]
    csv_path = write_csv(tmp_path / "x.csv", ["id", "int", "float", "text"], rows)
    plan = plan_for(images, csv_path, shards=1, group_col=None, label_cols=("int", "float", "text"))
    kinds = [(s.name, s.kind, s.classes) for s in plan.labels]
    assert kinds == [
        ("int", "classification", ("0", "1", "2")),
        ("float", "regression", ()),
        ("text", "classification", ("x", "y", "z")),
    ]
    values = {r.image_id: r.values for r in plan.shards[0].rows}
    assert values["img004"] == (1, 2.0, 1)


def test_feature_columns_record_missing_values(dataset):
    plan = plan_for(*dataset, shards=2, feature_cols=("age", "site"))
    age, site = plan.columns
    assert (age.kind, age.missing) == ("numeric", 5)
    assert (site.kind, site.vocabulary) == ("categorical", ("head", "torso"))
    assert [s.name for s in plan.schema.features][-2:] == ["age", "site"]


def test_folds_must_divide_shards():
    with pytest.raises(
        ConfigError,
        match="Received: shards=10, folds=4; try --shards 8 or 12, or --folds 2 or 5 or 10",
    ):
        BuildConfig(images="x", out="y", labels_csv="z", shards=10, folds=4)


def test_more_shards_than_groups_is_a_clear_error(dataset):
    with pytest.raises(DataError, match="cannot fill 16 shards from 12 groups"):
        plan_for(*dataset, shards=16)


def test_auto_shard_count_is_a_multiple_of_folds_within_groups(dataset):
    plan = plan_for(*dataset, folds=5)  # 48 records: fewer than 32 a shard above 5 shards
    assert len(plan.shards) == 5
    assert plan.layout.reason.endswith("one shard per fold (48 records fill 1 shard of 32+)")


def test_missing_column_lists_the_columns_there_are(dataset):
    with pytest.raises(
        DataError,
        match="no column 'klass' \\(--label-col\\); the CSV has: "
        "image_id, label, patient_id, age, site",
    ):
        plan_for(*dataset, label_cols=("klass",))


def test_reserved_column_name_is_refused(tmp_path):
    images, _ = make_dataset(tmp_path, n=2, groups=1)
    csv_path = write_csv(tmp_path / "x.csv", ["id", "fold"], [("img000", 1), ("img001", 2)])
    with pytest.raises(ConfigError, match="column 'fold' would overwrite the record key"):
        plan_for(images, csv_path, group_col=None, label_cols=("fold",))


def test_unlabeled_plan_takes_every_image(tmp_path):
    images, _ = make_dataset(tmp_path, n=5, groups=1)
    (images / "notes.txt").write_text("not an image")
    config = BuildConfig(
        images=str(images), out="o", image=ImageConfig(size=(8, 8)), shards=2, labels_from="none"
    )
    plan = make_plan(config, list(walk_files(str(images))), None)
    ids = sorted(r.image_id for s in plan.shards for r in s.rows)
    assert ids == ["a/img001", "a/img003", "b/img000", "b/img002", "b/img004"]
    assert plan.labels == () and all(s.fold is None for s in plan.shards)


def synthetic_plan(n: int, groups: int, **options):
    """A plan over n listed (not written) images in `groups` groups, classes cycling a/b/c."""
    files = [f"img{i:04d}.jpg" for i in range(n)]
    table = pd.DataFrame(
        {
            "image_id": [f"img{i:04d}" for i in range(n)],
            "label": [("a", "b", "c")[i % 3] for i in range(n)],
            "patient_id": [f"p{i % groups}" for i in range(n)],
        },
        index=range(2, n + 2),  # spreadsheet rows, as read_table numbers them
    )
    config = BuildConfig(images="imgs", out="o", labels_csv="x.csv", **options)
    return make_plan(config, files, table)


def test_auto_shards_never_exceed_the_groups():
    plan = synthetic_plan(640, 12, group_col="patient_id")  # records allow 20, groups 10
    assert len(plan.shards) == 10
    assert plan.layout.reason.endswith("no more than the 12 groups can fill")


def test_auto_layout_aligns_to_tpu_cores_and_folds_when_the_data_allows():
    plan = synthetic_plan(3000, 3000, folds=4)
    assert (len(plan.shards), plan.config.folds) == (16, 4)
    assert "a multiple of 8 (TPU cores) and 4" in plan.layout.reason


def test_labeled_builds_get_five_folds_by_default():
    plan = synthetic_plan(3000, 3000)
    assert plan.config.folds == 5 and len(plan.shards) % 5 == 0
    assert {s.fold for s in plan.shards} == set(range(5))


def test_labels_without_any_label_column_build_unstratified(tmp_path):
    images, _ = make_dataset(tmp_path, n=6, groups=1)
    ids = [(f"img{i:03d}", i) for i in range(6)]
    csv_path = write_csv(tmp_path / "x.csv", ["id", "size_cm"], ids)
    options = {"group_col": None, "feature_cols": ("size_cm",), "shards": 3}
    with pytest.raises(ConfigError, match="has no label column and the images of .* sit in 2 cl"):
        plan_for(images, csv_path, **options)  # images/a, images/b: folder labels, or none?
    plan = plan_for(images, csv_path, labels_from="csv", **options)
    assert plan.labels == () and len(plan.shards) == 3 and plan.config.name == "test"


def test_file_name_with_extension_matches_when_unique(tmp_path):
    images, _ = make_dataset(tmp_path, n=3, groups=1)
    csv_path = write_csv(
        tmp_path / "x.csv", ["id", "label"], [("img001.jpg", "a"), ("img002.jpg", "b")]
    )
    plan = plan_for(images, csv_path, shards=1, group_col=None)
    assert not plan.rejected
    assert sorted(r.path for r in plan.shards[0].rows) == [
        str(images / "a" / "img001.jpg"),
        str(images / "b" / "img002.jpg"),
    ]


def test_unmatched_lists_only_images_no_row_names(tmp_path):
    images, _ = make_dataset(tmp_path, n=3, groups=1)
    csv_path = write_csv(tmp_path / "x.csv", ["id", "label"], [("img000", "a"), ("img001", "")])
    plan = plan_for(images, csv_path, shards=1, group_col=None)
    assert plan.unmatched == ("b/img002.jpg",)  # img001 is named (its row was rejected)


# -- multi-label ---------------------------------------------------------------------------


def tagged_csv(tmp_path, cells, n: int = 12, **columns):
    """A CSV naming make_dataset's first n images, with a ``tags`` column from ``cells``
    (cycled) and a group per pair of rows."""
    rows = [(f"img{i:03d}", cells[i % len(cells)], f"p{i // 2}") for i in range(n)]
    return write_csv(tmp_path / "tags.csv", ["image_id", "tags", "patient_id"], rows)


def test_multi_label_rows_hold_multi_hot_tags(tmp_path):
    images, _ = make_dataset(tmp_path, n=12, groups=1)
    csv_path = tagged_csv(tmp_path, ["haze primary", "water", "", "primary  haze water"])
    plan = plan_for(images, csv_path, shards=2, folds=2, label_cols=("tags",), multi_label=True)
    assert plan.labels == (LabelSpec("tags", "multilabel", ("haze", "primary", "water")),)
    assert plan.schema.features[4] == FeatureSpec("tags", "int64", (3,))
    values = {r.image_id: r.values[0] for s in plan.shards for r in s.rows}
    assert values["img000"] == (1, 1, 0) and values["img001"] == (0, 0, 1)
    assert values["img002"] == (0, 0, 0)  # an empty cell: no tag, and the row is kept
    assert values["img003"] == (1, 1, 1)
    assert not plan.rejected
    counts = [
        sum(Counter(i for r in s.rows for i, v in enumerate(r.values[0]) if v).values())
        for s in plan.shards
    ]
    assert counts == [9, 9]  # 18 tags over 2 shards, stratified


def test_multi_label_missing_tokens_are_missing_labels(tmp_path):
    images, _ = make_dataset(tmp_path, n=4, groups=1)
    csv_path = tagged_csv(tmp_path, ["a", "nan", "NA", "a b"], n=4)
    plan = plan_for(images, csv_path, shards=1, label_cols=("tags",), multi_label=True)
    assert [(r.row, r.reason, r.detail) for r in plan.rejected] == [
        (3, "missing label", "column 'tags' holds 'nan', a missing-value token"),
        (4, "missing label", "column 'tags' holds 'NA', a missing-value token"),
    ]


def test_multi_label_groups_never_span_shards(tmp_path):
    images, _ = make_dataset(tmp_path, n=24, groups=1)
    csv_path = tagged_csv(tmp_path, ["a", "b c", "a c", "b"], n=24)
    plan = plan_for(images, csv_path, shards=4, folds=2, label_cols=("tags",), multi_label=True)
    owner = {}
    for shard in plan.shards:
        for row in shard.rows:
            group = int(row.image_id[3:]) // 2
            assert owner.setdefault(group, shard.index) == shard.index
    assert plan.groups == 12


def test_multi_label_reuses_tags_and_rejects_rows_with_unknown_ones(tmp_path):
    images, _ = make_dataset(tmp_path, n=4, groups=1)
    csv_path = tagged_csv(tmp_path, ["b", "a z", "", "y x b"], n=4)
    config = BuildConfig(
        images=str(images),
        out="unused",
        labels_csv=str(csv_path),
        label_cols=("tags",),
        label_key="target",
        multi_label=True,
        vocab_from="train.manifest.json",
        shards=1,
    )
    files, table = list(walk_files(str(images))), read_table(str(csv_path))
    plan = make_plan(config, files, table, vocabularies={"target": ("b", "a")})
    assert plan.labels == (LabelSpec("target", "multilabel", ("b", "a")),)
    assert {r.image_id: r.values[0] for r in plan.shards[0].rows} == {
        "img000": (1, 0),
        "img002": (0, 0),
    }
    assert [(r.row, r.reason, r.detail) for r in plan.rejected] == [
        (3, "unknown tag", "'z' not among the 2 tags of --vocab-from train.manifest.json"),
        (5, "unknown tag", "'y', 'x' not among the 2 tags of --vocab-from train.manifest.json"),
    ]


def test_multi_label_options_are_checked(tmp_path):
    images, csv_path = make_dataset(tmp_path, n=4, groups=1)
    with pytest.raises(ConfigError, match="--label-sep separates the tags of --multi-label"):
        BuildConfig(images=str(images), labels_csv=str(csv_path), label_sep=";")
    with pytest.raises(ConfigError, match="--multi-label reads tag sets from a label column"):
        BuildConfig(images=str(images), multi_label=True)
    with pytest.raises(ConfigError, match="`label_sep` must not be empty"):
        BuildConfig(images=str(images), labels_csv=str(csv_path), multi_label=True, label_sep="")
    no_label = write_csv(tmp_path / "ids.csv", ["image_id"], [("img000",)])
    with pytest.raises(DataError, match="--multi-label needs a label column"):
        plan_for(images, no_label, group_col=None, multi_label=True, labels_from="csv")


def test_a_group_holding_most_rows_warns_with_the_fold_sizes():
    assert synthetic_plan(200, 200, group_col="patient_id", folds=4, shards=4).warnings == ()
    # 2, 1, 1, 1 records per fold is rounding, not a large group
    assert synthetic_plan(5, 5, group_col="patient_id", folds=4, shards=4).warnings == ()
    files = [f"img{i:04d}.jpg" for i in range(200)]
    table = pd.DataFrame(
        {
            "image_id": [f"img{i:04d}" for i in range(200)],
            "label": [("a", "b")[i % 2] for i in range(200)],
            "patient_id": ["big" if i < 140 else f"p{i}" for i in range(200)],
        },
        index=range(2, 202),
    )
    config = BuildConfig(
        images="imgs", out="o", labels_csv="x.csv", group_col="patient_id", folds=4, shards=4
    )
    plan = make_plan(config, files, table)
    assert plan.warnings == (
        "folds are uneven: 140, 20, 20, 20 records per fold; fold 0 holds 2.8x its share of 50, "
        "as group 'big' alone holds 140 rows and a group never spans folds: pass --folds 0 "
        "(no folds), or a --group-col with smaller groups",
    )


def labels_csv(tmp_path, labels, *, blank_after: int | None = None):
    """A CSV naming img000.. of make_dataset with these labels, a blank line after a row."""
    lines = ["image_id,label"]
    for i, label in enumerate(labels):
        lines.append(f"img{i:03d},{label}")
        if i == blank_after:
            lines.append("")
    path = tmp_path / "labels.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_rejected_rows_keep_their_spreadsheet_numbers_after_a_blank_line(tmp_path):
    images, _ = make_dataset(tmp_path, n=6, groups=1)
    csv_path = labels_csv(tmp_path, ["0", "1", "0", "", "1", "NAN"], blank_after=1)
    plan = plan_for(images, csv_path, group_col=None, shards=1)
    assert [(r.row, r.image_id, r.reason) for r in plan.rejected] == [
        (6, "img003", "missing label"),
        (8, "img005", "missing label"),
    ]
    assert sorted(r.row for r in plan.shards[0].rows) == [2, 3, 5, 7]


def test_infinity_among_integer_labels_rejects_its_row_and_keeps_the_classes(tmp_path):
    images, _ = make_dataset(tmp_path, n=6, groups=1)
    csv_path = labels_csv(tmp_path, ["0", "1", "inf", "2", "1", "0"])
    plan = plan_for(images, csv_path, group_col=None, shards=1)
    assert plan.labels == (LabelSpec("label", "classification", ("0", "1", "2")),)
    ((row, reason, detail),) = [(r.row, r.reason, r.detail) for r in plan.rejected]
    assert (row, reason) == (4, "non-finite label")
    assert detail == "column 'label' holds 'inf'; a numeric label must be finite (float32)"
    assert plan.notes == ("label 'label': integer classes 0..2 (every value is an integer)",)


def test_a_single_cell_deciding_the_kind_is_a_plan_warning(tmp_path):
    images, _ = make_dataset(tmp_path, n=6, groups=1)
    csv_path = labels_csv(tmp_path, ["0", "1", "2.0", "2", "1", "0"])
    plan = plan_for(images, csv_path, group_col=None, shards=1)
    assert plan.labels[0].kind == "regression"
    assert plan.warnings == (
        "label 'label' is a regression target only because of row 4 ('2.0'): every other "
        "value is an integer; if the labels are classes, fix that cell",
    )
