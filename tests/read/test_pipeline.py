"""read.pipeline: get_dataset over tiny built and foreign shards."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import make_dataset, write_csv
from tests.read.test_parse import FLOWERS, MELANOMA, write_foreign
from tfrec_tools.builder.config import BuildConfig, ImageConfig
from tfrec_tools.builder.run import build
from tfrec_tools.errors import ConfigError, ShardError
from tfrec_tools.manifest import read_manifest
from tfrec_tools.quiet import import_tensorflow
from tfrec_tools.read.augment import DEFAULT_AUGMENT, PRESETS
from tfrec_tools.read.parse import RecordKeys
from tfrec_tools.read.pipeline import ReadConfig, get_dataset, stage_order

tf = import_tensorflow()

N = 24  # records in the labeled build


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> dict[str, Path]:
    """A labeled build (label + age + site, 4 shards), an unlabeled one, two label columns."""
    root = tmp_path_factory.mktemp("pipeline")
    images, csv_path = make_dataset(root / "data", n=N, groups=6)
    common = dict(image=ImageConfig(size=(16, 16)), workers=1)
    build(
        BuildConfig(
            images=str(images),
            labels_csv=str(csv_path),
            out=str(root / "train"),
            shards=4,
            folds=2,
            group_col="patient_id",
            feature_cols=("age", "site"),
            **common,
        ),
    )
    build(
        BuildConfig(
            images=str(images), out=str(root / "test"), shards=2, labels_from="none", **common
        ),
    )
    rows = [(f"img{i:03d}", ("cat", "dog")[i % 2], i / 4) for i in range(N)]
    multi = write_csv(root / "multi.csv", ["image_id", "kind", "score"], rows)
    build(
        BuildConfig(
            images=str(images),
            labels_csv=str(multi),
            out=str(root / "multi"),
            label_cols=("kind", "score"),
            shards=2,
            **common,
        ),
    )
    return {"root": root, "csv": csv_path, **{k: root / k for k in ("train", "test", "multi")}}


def batches(dataset, limit: int | None = None) -> list:
    """The dataset's batches as numpy structures (at most ``limit``)."""
    return list(dataset.take(limit or -1).as_numpy_iterator())


def flat(values) -> list:
    return [v.decode() if isinstance(v, bytes) else v for v in np.concatenate(values).tolist()]


def ordered_pass(folder: Path, **options) -> tuple[list, list]:
    """(ids, labels) of one pass of ``with_ids`` batches."""
    got = batches(get_dataset(str(folder), ReadConfig(batch_size=5, with_ids=True, **options)))
    return flat([b[2] for b in got]), flat([b[1] for b in got])


def test_round_trip_every_id_once_with_its_csv_label(shards):
    ids, labels = ordered_pass(shards["train"])
    classes = read_manifest(str(shards["train"] / "train.manifest.json")).labels[0].classes
    with open(shards["csv"]) as handle:
        expected = {row["image_id"]: row["label"] for row in csv.DictReader(handle)}
    assert sorted(ids) == sorted(expected) and len(ids) == N
    assert {i: classes[label] for i, label in zip(ids, labels)} == expected


def test_order_is_the_same_on_every_pass(shards):
    dataset = get_dataset(str(shards["train"]), ReadConfig(batch_size=5, with_ids=True))
    first, second = (flat([b[2] for b in batches(dataset)]) for _ in range(2))
    assert first == second
    assert ordered_pass(shards["train"], ordered=True)[0] == first
    assert ordered_pass(shards["train"], ordered=True, cache="decoded")[0] == first


def test_features_become_dict_inputs_with_csv_values(shards):
    dataset = get_dataset(str(shards["train"]), ReadConfig(batch_size=N, with_ids=True))
    x, y, ids = next(iter(dataset))
    assert sorted(x) == ["age", "image", "site"]
    assert (x["image"].dtype, x["age"].dtype, x["site"].dtype, y.dtype) == (
        tf.uint8,
        tf.float32,
        tf.int64,
        tf.int64,
    )
    assert x["image"].shape == (N, 16, 16, 3) and x["age"].shape == (N,)
    vocabulary = read_manifest(str(shards["train"] / "train.manifest.json")).features[1].vocabulary
    with open(shards["csv"]) as handle:
        rows = {row["image_id"]: row for row in csv.DictReader(handle)}
    for image_id, age, site in zip(flat([ids.numpy()]), x["age"].numpy(), x["site"].numpy()):
        row = rows[image_id]
        assert vocabulary[site] == row["site"]
        assert age == pytest.approx(float(row["age"])) if row["age"] else np.isnan(age)


def test_unlabeled_gives_image_and_id(shards):
    got = batches(get_dataset(str(shards["test"]), ReadConfig(batch_size=10)))
    assert [type(b) for b in got] == [tuple] * 3 and all(len(b) == 2 for b in got)
    assert got[0][0].shape == (10, 16, 16, 3) and got[0][0].dtype == np.uint8
    # no CSV: the id is the image's path under the image folder, without extension
    expected = sorted(f"{'ab'[i % 2 == 0]}/img{i:03d}" for i in range(N))
    assert sorted(flat([b[1] for b in got])) == expected


def test_two_label_columns_give_dict_targets(shards):
    x, y = next(iter(get_dataset(str(shards["multi"]), ReadConfig(batch_size=6))))
    assert x.shape == (6, 16, 16, 3)
    assert sorted(y) == ["kind", "score"]
    assert (y["kind"].dtype, y["score"].dtype) == (tf.int64, tf.float32)


def test_with_ids_gives_a_third_element(shards):
    element = get_dataset(str(shards["train"]), ReadConfig(batch_size=4, with_ids=True))
    assert len(element.element_spec) == 3 and element.element_spec[2].dtype == tf.string


def test_drop_remainder_gives_static_batch_dims(shards):
    files = str(shards["train"])
    kept = get_dataset(files, ReadConfig(batch_size=5))
    dropped = get_dataset(files, ReadConfig(batch_size=5, drop_remainder=True))
    assert kept.element_spec[0]["image"].shape.as_list() == [None, 16, 16, 3]
    assert dropped.element_spec[0]["image"].shape.as_list() == [5, 16, 16, 3]
    assert dropped.element_spec[1].shape.as_list() == [5]
    assert sum(len(b[1]) for b in batches(dropped)) == 20  # 24 records, the last 4 dropped


def test_global_batch_size_is_used_as_given(shards, monkeypatch):
    class EightReplicas:
        num_replicas_in_sync = 8

    monkeypatch.setattr(tf.distribute, "get_strategy", lambda: EightReplicas())
    monkeypatch.setattr(tf.distribute, "has_strategy", lambda: True)
    got = batches(get_dataset(str(shards["train"]), ReadConfig(batch_size=7)))
    assert [len(b[1]) for b in got] == [7, 7, 7, 3]


def test_float32_images_are_scaled_copies(shards):
    files = str(shards["train"])
    (x8, _), (x32, _) = (
        next(iter(get_dataset(files, ReadConfig(batch_size=3, image_dtype=dtype))))
        for dtype in ("uint8", "float32")
    )
    assert x32["image"].dtype == tf.float32
    np.testing.assert_allclose(x32["image"].numpy(), x8["image"].numpy() / 255, atol=1e-6)


@pytest.mark.parametrize("cache", ["encoded", "decoded", "path"])
def test_cache_modes_give_the_same_records(shards, tmp_path, cache):
    files = str(shards["train"])
    cache = str(tmp_path / "cache" / "train") if cache == "path" else cache
    (tmp_path / "cache").mkdir()
    plain = batches(get_dataset(files, ReadConfig(batch_size=8, with_ids=True)))
    config = ReadConfig(batch_size=8, with_ids=True, cache=cache)
    for _ in range(2):  # the second dataset reads a file cache the first one wrote
        dataset = get_dataset(files, config)
        for _ in range(2):  # the second pass reads an in-memory cache
            got = batches(dataset)
            assert len(got) == len(plain)
            for (x, y, ids), (x0, y0, ids0) in zip(got, plain):
                np.testing.assert_array_equal(x["image"], x0["image"])
                assert (ids.tolist(), y.tolist()) == (ids0.tolist(), y0.tolist())


def test_file_cache_is_named_after_files_and_sizes(shards, tmp_path):
    prefix = str(tmp_path / "c")
    for size in ((16, 16), (8, 8)):
        config = ReadConfig(batch_size=24, cache=prefix, image_size=size)
        batches(get_dataset(str(shards["train"]), config))
    assert len({p.name.split(".")[0] for p in tmp_path.glob("c-*.index")}) == 2


def test_cache_stays_ahead_of_repeat_shuffle_and_augment():
    order = stage_order(ReadConfig(batch_size=1, cache="decoded"))
    assert order.index("decode") < order.index("cache") < order.index("repeat")
    assert order.index("repeat") < order.index("shuffle") < order.index("augment")
    order = stage_order(ReadConfig(batch_size=1, cache="encoded"))
    assert order.index("read") + 1 == order.index("cache") < order.index("repeat")
    assert order.index("shuffle") < order.index("parse")


def first_batches(files: str, seed: int, n: int = 3, **options) -> list:
    config = ReadConfig(batch_size=4, training=True, seed=seed, with_ids=True, **options)
    return batches(get_dataset(files, config), n)


@pytest.mark.parametrize("preset", ["none", "standard"])
def test_a_seed_reproduces_training_batches(shards, preset):
    files = str(shards["train"])
    one, again, other = (
        first_batches(files, seed, n=8, augment=PRESETS[preset]) for seed in (1, 1, 2)
    )
    for (x, y, ids), (x2, y2, ids2) in zip(one, again):
        np.testing.assert_array_equal(x["image"], x2["image"])
        assert (ids.tolist(), y.tolist()) == (ids2.tolist(), y2.tolist())
    assert [b[2].tolist() for b in one] != [b[2].tolist() for b in other]


def test_training_repeats_and_shuffles(shards):
    got = first_batches(str(shards["train"]), seed=3, n=12)  # 48 records: past one epoch
    ids = flat([b[2] for b in got])
    assert len(ids) == 2 * N and set(ids) <= set(ordered_pass(shards["train"])[0])
    assert ids[:N] != ordered_pass(shards["train"])[0] and ids[:N] != ids[N:]
    assert [len(b[2]) for b in got] == [4] * 12  # drop_remainder defaults on in training


def images_by_id(got: list) -> list[dict[bytes, np.ndarray]]:
    """Batches of two epochs of N records -> one {id: image} per epoch."""
    found: list[dict[bytes, np.ndarray]] = [{}, {}]
    for step, (x, _, ids) in enumerate(got):
        for image, image_id in zip(x["image"], ids):
            found[step * len(ids) // N][image_id] = image
    return found


def test_augmentation_is_fresh_each_epoch_and_off_with_none(shards):
    def two_epochs(augment):
        # shuffle_buffer=1 keeps epochs apart (a big buffer mixes records across the repeat)
        got = first_batches(
            str(shards["train"]), seed=5, n=2 * N // 4, augment=augment, shuffle_buffer=1
        )
        return images_by_id(got)

    plain, augmented = two_epochs(PRESETS["none"]), two_epochs(PRESETS["standard"])
    assert sorted(plain[0]) == sorted(plain[1]) == sorted(augmented[1])
    assert all(np.array_equal(plain[0][k], plain[1][k]) for k in plain[0])
    changed = [not np.array_equal(augmented[0][k], plain[0][k]) for k in plain[0]]
    fresh = [not np.array_equal(augmented[0][k], augmented[1][k]) for k in plain[0]]
    assert sum(changed) > N // 2 and sum(fresh) > N // 2


def test_tta_passes_differ_yet_a_seed_replays_them(shards):
    files = str(shards["train"])
    config = ReadConfig(batch_size=8, with_ids=True, augment=PRESETS["standard"], seed=9)

    def passes():
        dataset = get_dataset(files, config)
        return [np.concatenate([b[0]["image"] for b in batches(dataset)]) for _ in range(2)]

    first, again = passes(), passes()
    assert not np.array_equal(first[0], first[1])
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])


def test_training_defaults_to_the_standard_preset(shards):
    files = str(shards["train"])
    plain = first_batches(files, seed=4, augment=PRESETS["none"])
    default = first_batches(files, seed=4)
    assert [b[2].tolist() for b in plain] == [b[2].tolist() for b in default]
    assert not np.array_equal(plain[0][0]["image"], default[0][0]["image"])


@pytest.mark.parametrize(
    ("layout", "ids", "labels"),
    [
        (MELANOMA, [f"image_name-{i}" for i in range(5)], [0, 1, 2, 0, 1]),
        (FLOWERS, [f"id-{i}" for i in range(5)], [0, 1, 2, 0, 1]),
    ],
)
def test_foreign_public_layouts(tmp_path, layout, ids, labels):
    path = write_foreign(tmp_path / "x00-5.tfrec", layout, [(10, 10)] * 5)
    x, y, got_ids = next(iter(get_dataset(path, ReadConfig(batch_size=5, with_ids=True))))
    assert x.shape == (5, 10, 10, 3) and y.dtype == tf.int64
    assert (flat([got_ids.numpy()]), y.numpy().tolist()) == (ids, labels)


def test_image_size_resizes_foreign_images_of_mixed_sizes(tmp_path):
    sizes = [(10, 10), (30, 18), (7, 40), (64, 64)]
    path = write_foreign(tmp_path / "f.tfrec", FLOWERS, sizes, fmt="PNG")
    x, _ = next(iter(get_dataset(path, ReadConfig(batch_size=4, image_size=(12, 14)))))
    assert x.shape == (4, 12, 14, 3) and x.dtype == tf.uint8
    assert [np.unique(image).tolist() for image in x.numpy()] == [[0], [10], [20], [30]]


def test_foreign_features_and_unlabeled_without_id(tmp_path):
    path = write_foreign(tmp_path / "f.tfrec", {"image": "bytes", "site": "int64"}, [(8, 8)] * 3)
    plain = get_dataset(path, ReadConfig(batch_size=3))
    assert plain.element_spec.shape.as_list() == [None, 8, 8, 3]  # no label, no id: x alone
    keys = RecordKeys(image="image", id=None, features=("site",))
    x = next(iter(get_dataset(path, ReadConfig(batch_size=3), keys=keys)))
    assert sorted(x) == ["image", "site"] and x["site"].numpy().tolist() == [0, 1, 2]


def test_missing_file_and_empty_list_are_one_line_errors(tmp_path):
    missing = str(tmp_path / "nope00-3.tfrec")
    with pytest.raises(ShardError) as err:
        get_dataset([missing], ReadConfig(batch_size=2))
    assert str(err.value) == f"{missing}: no such file or folder"
    with pytest.raises(ShardError) as err:
        get_dataset([], ReadConfig(batch_size=2))
    assert str(err.value) == ("no shard files given (expected files, folders or globs): []")


def test_a_file_that_is_no_tfrecord_is_named(tmp_path):
    path = tmp_path / "junk00-3.tfrec"
    path.write_bytes(b"this is not a TFRecord file at all")
    with pytest.raises(ShardError, match=rf"^{path}: not a TFRecord file \(the checksum of"):
        get_dataset(str(path), ReadConfig(batch_size=2))


def test_bad_keys_and_ids_are_config_errors(shards, tmp_path):
    first = str(sorted(shards["train"].glob("*.tfrec"))[0])
    with pytest.raises(ConfigError) as err:
        get_dataset(str(shards["train"]), ReadConfig(batch_size=2), keys=RecordKeys(labels=("y",)))
    assert str(err.value).startswith(f"{first}: record key 'y' not found (the shard has: image")
    path = write_foreign(tmp_path / "f.tfrec", {"image": "bytes", "target": "int64"}, [(8, 8)])
    with pytest.raises(ConfigError) as err:
        get_dataset(path, ReadConfig(batch_size=2, with_ids=True))
    assert str(err.value) == (
        f"{path}: `with_ids=True` needs an id key, and the records have none; pass "
        "keys=RecordKeys(id=...) naming one"
    )


def test_file_cache_folder_must_exist(shards, tmp_path):
    prefix = str(tmp_path / "absent" / "c")
    with pytest.raises(ConfigError, match=r"folder '.*absent' does not exist"):
        get_dataset(str(shards["train"]), ReadConfig(batch_size=2, cache=prefix))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"batch_size": 0}, "`batch_size` must be an int >= 1. Received: batch_size=0"),
        ({"batch_size": True}, "`batch_size` must be an int >= 1. Received: batch_size=True"),
        ({"shuffle_buffer": 0}, "`shuffle_buffer` must be an int >= 1. Received: shuffle_buffer=0"),
        (
            {"image_size": (16,)},
            "`image_size` must be None or (height, width) of positive ints. "
            "Received: image_size=(16,)",
        ),
        (
            {"cache": ""},
            "`cache` must be one of ('none', 'encoded', 'decoded') or a file prefix. Received: ''",
        ),
        (
            {"image_dtype": "float16"},
            "`image_dtype` must be one of ('uint8', 'float32'). Received: 'float16'",
        ),
        ({"seed": 1.5}, "`seed` must be an int or None. Received: seed=1.5"),
        (
            {"augment": "standard"},
            "`augment` must be an AugmentConfig or None. Received: 'standard'",
        ),
    ],
)
def test_read_config_validation(options, message):
    with pytest.raises(ConfigError) as err:
        ReadConfig(**{"batch_size": 2, **options})
    assert str(err.value) == message


def test_resolved_defaults():
    training, evaluation = ReadConfig(batch_size=1, training=True), ReadConfig(batch_size=1)
    assert (training.is_ordered, training.is_repeated, training.drops_remainder) == (
        False,
        True,
        True,
    )
    assert (evaluation.is_ordered, evaluation.is_repeated, evaluation.drops_remainder) == (
        True,
        False,
        False,
    )
    assert ReadConfig(batch_size=1, training=True, seed=0).is_ordered
    # the augmentation is settled once, at construction: the default preset when training
    assert training.augment is PRESETS[DEFAULT_AUGMENT] and evaluation.augment is None


def test_a_frame_longer_than_its_file_stops_get_dataset_before_tensorflow_reads_it(tmp_path):
    from tests.malformed import write_huge_frame

    path = write_huge_frame(tmp_path / "bad00-1.tfrec")  # TensorFlow would segfault on it
    with pytest.raises(
        ShardError, match=rf"^{path}: record 0 \(byte 0\) claims 1152921504606846976"
    ):
        get_dataset(str(path), ReadConfig(batch_size=2))
