"""read.parse: keys from the manifest, given or guessed; decoding to a static uint8 shape."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import make_dataset
from tfrec_tools.builder.config import BuildConfig, ImageConfig
from tfrec_tools.builder.run import build
from tfrec_tools.errors import ConfigError, ShardError
from tfrec_tools.manifest import read_manifest
from tfrec_tools.quiet import import_tensorflow
from tfrec_tools.read.parse import (
    RecordKeys,
    decode_image,
    guess_keys,
    parse_record,
    resolve_format,
)
from tfrec_tools.schema import FeatureSpec, Schema
from tfrec_tools.shard_files import load_manifest

tf = import_tensorflow()

MELANOMA = {"image": "bytes", "image_name": "bytes", "target": "int64", "patient_id": "bytes"}
FLOWERS = {"image": "bytes", "class": "int64", "id": "bytes"}


def encoded(pixels: np.ndarray, fmt: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def foreign_record(layout: dict[str, str], index: int, image: bytes) -> bytes:
    """One tf.train.Example in a public-Kaggle layout: bytes keys hold ``<key>-<index>`` (the
    image key its bytes), int64 keys ``index % 3``."""
    feature = {}
    for key, kind in layout.items():
        if kind == "int64":
            feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=[index % 3]))
        else:
            value = image if key == "image" else f"{key}-{index}".encode()
            feature[key] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_foreign(path: Path, layout: dict[str, str], sizes, *, start: int = 0, fmt="JPEG"):
    """A shard of ``len(sizes)`` records, image i a flat grey of value 10 * i at sizes[i]
    ((h, w)); returns the path as str."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for i, (height, width) in enumerate(sizes, start):
            pixels = np.full((height, width, 3), 10 * i, np.uint8)
            writer.write(foreign_record(layout, i, encoded(pixels, fmt)))
    return str(path)


def schema_of(layout: dict[str, str]) -> Schema:
    return Schema(tuple(FeatureSpec(name, kind) for name, kind in layout.items()))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("parse")
    images, csv_path = make_dataset(root, n=12, groups=4)
    config = BuildConfig(
        images=str(images),
        labels_csv=str(csv_path),
        out=str(root / "shards"),
        image=ImageConfig(size=(16, 16)),
        shards=2,
        feature_cols=("age", "site"),
        workers=1,
    )
    build(config)
    return sorted(str(p) for p in (root / "shards").glob("*.tfrec"))


def test_keys_and_size_from_manifest(built):
    fmt = resolve_format(built, load_manifest(built))
    assert fmt.keys == RecordKeys("image", "image_id", ("label",), ("age", "site"))
    assert fmt.schema.names == ("image", "image_id", "label", "age", "site")
    assert (fmt.image_format, fmt.stored_size, fmt.size, fmt.resize) == (
        "jpeg",
        (16, 16),
        (16, 16),
        False,
    )


def test_manifest_keys_can_be_narrowed(built):
    keys = RecordKeys(labels=("label",))
    fmt = resolve_format(built, load_manifest(built), keys)
    assert fmt.keys == keys and fmt.schema.names == ("image", "image_id", "label")


@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        (MELANOMA, RecordKeys("image", "image_name", ("target",))),
        (FLOWERS, RecordKeys("image", "id", ("class",))),
        ({"image_raw": "bytes", "label": "float"}, RecordKeys("image_raw", None, ("label",))),
        ({"img": "bytes", "image_id": "int64"}, RecordKeys("img", "image_id")),
    ],
)
def test_guess_keys_of_public_layouts(layout, expected):
    assert guess_keys(schema_of(layout), "x.tfrec") == expected


def test_guess_skips_a_label_candidate_of_the_wrong_dtype():
    layout = {"image": "bytes", "label": "bytes", "target": "float"}
    assert guess_keys(schema_of(layout), "x.tfrec").labels == ("target",)


def test_guess_without_image_key_names_file_and_keys():
    with pytest.raises(ShardError) as err:
        guess_keys(schema_of({"pixels": "bytes", "target": "int64"}), "a/b.tfrec")
    assert str(err.value) == (
        "a/b.tfrec: no image key found (looked for a bytes key named one of image, image_raw, "
        "img, image_bytes, image/encoded, jpeg, bytes; the shard has: pixels (bytes), "
        "target (int64)); name it with RecordKeys(image=...)"
    )


def test_missing_explicit_key_lists_the_shard_keys(tmp_path):
    path = write_foreign(tmp_path / "m.tfrec", MELANOMA, [(8, 8)])
    with pytest.raises(ConfigError) as err:
        resolve_format([path], keys=RecordKeys(id="image_name", labels=("label",)))
    assert str(err.value) == (
        f"{path}: record key 'label' not found (the shard has: image (bytes), "
        "image_name (bytes), patient_id (bytes), target (int64))"
    )


def test_explicit_image_key_must_hold_bytes(tmp_path):
    path = write_foreign(tmp_path / "f.tfrec", FLOWERS, [(8, 8)])
    with pytest.raises(ConfigError, match=r"image key 'class' must hold bytes\. Received: int64"):
        resolve_format([path], keys=RecordKeys(image="class", id="id"))


def test_a_test_shard_mixed_into_train_shards_is_named(tmp_path):
    train = write_foreign(tmp_path / "train00-1.tfrec", MELANOMA, [(8, 8)])
    unlabeled = {k: v for k, v in MELANOMA.items() if k != "target"}
    test = write_foreign(tmp_path / "test00-1.tfrec", unlabeled, [(8, 8)])
    with pytest.raises(ShardError, match=rf"^{test}: record key 'target' not found"):
        resolve_format([train, test])


def test_record_keys_reject_repeats_and_the_image_input_name():
    with pytest.raises(ConfigError, match=r"Received twice: \['id'\]"):
        RecordKeys(image="img", id="id", labels=("id",))
    with pytest.raises(ConfigError, match="cannot hold 'image'"):
        RecordKeys(image="img", features=("image",))


def test_foreign_size_is_probed_from_the_first_image(tmp_path):
    path = write_foreign(tmp_path / "f.tfrec", FLOWERS, [(12, 20), (12, 20)], fmt="PNG")
    fmt = resolve_format([path])
    assert (fmt.image_format, fmt.stored_size, fmt.size, fmt.resize) == (
        None,
        None,
        (12, 20),
        False,
    )


def decoded(path: str, image_size=None) -> list[np.ndarray]:
    """Images of a shard decoded inside Dataset.map, as the pipeline does."""
    fmt = resolve_format([path], image_size=image_size)
    key = fmt.keys.image
    ds = tf.data.TFRecordDataset(path).map(lambda r: decode_image(parse_record(r, fmt)[key], fmt))
    assert ds.element_spec.shape == (*fmt.size, 3) and ds.element_spec.dtype == tf.uint8
    return [image.numpy() for image in ds]


def test_decode_png_and_resize_mixed_sizes(tmp_path):
    path = write_foreign(tmp_path / "f.tfrec", FLOWERS, [(8, 8), (30, 20), (5, 7)], fmt="PNG")
    images = decoded(path, image_size=(10, 12))
    assert [image.shape for image in images] == [(10, 12, 3)] * 3
    # flat greys stay the same grey through resize and the round back to uint8
    assert [np.unique(image).tolist() for image in images] == [[0], [10], [20]]


def test_decode_keeps_pixels_when_no_resize_is_needed(tmp_path):
    path = write_foreign(tmp_path / "f.tfrec", MELANOMA, [(9, 9), (9, 9)], fmt="PNG")
    images = decoded(path, image_size=(9, 9))
    assert [np.unique(image).tolist() for image in images] == [[0], [10]]


def test_foreign_image_of_another_size_fails_with_a_hint(tmp_path):
    path = write_foreign(tmp_path / "f.tfrec", FLOWERS, [(8, 8), (9, 9)], fmt="PNG")
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"pass ReadConfig\(image_size="):
        decoded(path)


def test_keep_size_manifest_needs_an_image_size(built, tmp_path):
    manifest = read_manifest(str(Path(built[0]).parent / "train.manifest.json"))
    kept = type(manifest)(**{**manifest.__dict__, "image": {**manifest.image, "size": None}})
    with pytest.raises(ConfigError, match=r"fit='keep'.*Received: image_size=None"):
        resolve_format(built, kept)
    assert resolve_format(built, kept, image_size=(8, 8)).size == (8, 8)


def test_a_multi_hot_label_parses_as_a_fixed_length_vector(tmp_path):
    from tfrec_tools.read.pipeline import ReadConfig, get_dataset

    images = tmp_path / "images"
    images.mkdir()
    cells = ["b a", "", "c", "a c b"]
    for i in range(len(cells)):
        Image.new("RGB", (8, 8), (40 * i, 0, 0)).save(images / f"i{i}.png")
    csv_path = tmp_path / "tags.csv"
    csv_path.write_text("image_id,tags\n" + "".join(f"i{i},{c}\n" for i, c in enumerate(cells)))
    out = tmp_path / "shards"
    config = BuildConfig(
        images=str(images),
        out=str(out),
        labels_csv=str(csv_path),
        image=ImageConfig(size=(8, 8)),
        multi_label=True,
        shards=1,
        folds=0,
        workers=1,
    )
    build(config)
    files = [str(p) for p in out.glob("*.tfrec")]
    fmt = resolve_format(files, load_manifest(files))
    assert fmt.keys.labels == ("tags",)
    assert fmt.schema.features[2] == FeatureSpec("tags", "int64", (3,))
    dataset = get_dataset(files, ReadConfig(batch_size=4, with_ids=True))
    _, y, ids = next(iter(dataset))
    assert y.dtype == tf.int64 and y.shape == (4, 3)
    got = dict(zip((i.decode() for i in ids.numpy()), map(tuple, y.numpy().tolist())))
    assert got == {"i0": (1, 1, 0), "i1": (0, 0, 0), "i2": (0, 0, 1), "i3": (1, 1, 1)}
