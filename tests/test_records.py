from __future__ import annotations

import math

import pytest

from tests.malformed import JPEG_BYTES, compress, header, write_frames, write_huge_frame
from tfrec_tools.errors import ShardError
from tfrec_tools.records import RecordWriter, encode_example, frame
from tfrec_tools.schema import ColumnSpec, LabelSpec, build_schema

SCHEMA = build_schema(
    (LabelSpec("label", "classification", ("a", "b")),),
    (ColumnSpec("age", "numeric"), ColumnSpec("site", "categorical", ("x",))),
    with_fold=True,
)
VALUES = [
    dict(
        image=b"\xff\xd8abc",
        image_id="id/ü 1",
        height=64,
        width=48,
        label=1,
        fold=0,
        age=math.nan,
        site=-1,
    ),
    dict(image=b"", image_id="", height=0, width=2**40, label=0, fold=3, age=-1.5e30, site=0),
]


def tf_example(values):
    import tensorflow as tf

    feature = {}
    for spec in SCHEMA.features:
        value = values[spec.name]
        if spec.dtype == "bytes":
            data = value.encode() if isinstance(value, str) else value
            feature[spec.name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))
        elif spec.dtype == "int64":
            feature[spec.name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
        else:
            feature[spec.name] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
    return tf.train.Example(features=tf.train.Features(feature=feature))


@pytest.mark.parametrize("values", VALUES)
def test_encoded_example_parses_as_the_tensorflow_one(values):
    import tensorflow as tf

    ours = tf.train.Example.FromString(encode_example(SCHEMA, values))
    expected = tf_example(values)
    for key in ("image", "image_id", "height", "width", "label", "fold", "site"):
        assert ours.features.feature[key] == expected.features.feature[key], key
    age = ours.features.feature["age"].float_list.value[0]
    assert (math.isnan(age) and math.isnan(values["age"])) or age == pytest.approx(values["age"])


def test_a_float_beyond_float32_is_stored_as_the_infinity_of_its_sign():
    import tensorflow as tf

    values = dict(VALUES[0], age=1e39)
    parsed = tf.train.Example.FromString(encode_example(SCHEMA, values))
    assert parsed.features.feature["age"].float_list.value[0] == math.inf
    values = dict(VALUES[0], age=-1e39)
    parsed = tf.train.Example.FromString(encode_example(SCHEMA, values))
    assert parsed.features.feature["age"].float_list.value[0] == -math.inf


def test_encoding_is_stable_and_key_order_free():
    first = encode_example(SCHEMA, VALUES[0])
    assert first == encode_example(SCHEMA, dict(reversed(list(VALUES[0].items()))))


def test_framing_equals_tensorflows_writer(tmp_path):
    import tensorflow as tf

    records = [encode_example(SCHEMA, v) for v in VALUES] + [b"", b"x" * 70000]
    with RecordWriter(str(tmp_path / "ours.tfrec")) as writer:
        for record in records:
            writer.write(record)
    with tf.io.TFRecordWriter(str(tmp_path / "tf.tfrec")) as writer:
        for record in records:
            writer.write(record)
    assert (tmp_path / "ours.tfrec").read_bytes() == (tmp_path / "tf.tfrec").read_bytes()
    read = [r.numpy() for r in tf.data.TFRecordDataset(str(tmp_path / "ours.tfrec"))]
    assert read == records
    assert frame(b"")[:8] == b"\x00" * 8


def test_a_multi_hot_label_is_one_packed_int64_list_tensorflow_parses():
    import tensorflow as tf

    schema = build_schema(
        (LabelSpec("tags", "multilabel", ("a", "b", "c", "d")),), (), with_fold=False
    )
    values = dict(image=b"x", image_id="i", height=1, width=1, tags=(1, 0, 1, 1))
    ours = tf.train.Example.FromString(encode_example(schema, values))
    expected = tf.train.Feature(int64_list=tf.train.Int64List(value=[1, 0, 1, 1]))
    assert ours.features.feature["tags"] == expected
    spec = {"tags": tf.io.FixedLenFeature([4], tf.int64)}
    parsed = tf.io.parse_example([encode_example(schema, values)] * 2, spec)["tags"]
    assert parsed.numpy().tolist() == [[1, 0, 1, 1]] * 2


def test_iter_examples_reads_back_what_we_wrote_and_stops_at_the_limit(tmp_path):
    from tfrec_tools.records import feature_kind, feature_values, iter_examples

    path = str(tmp_path / "x.tfrec")
    with RecordWriter(path) as writer:
        for values in VALUES:
            writer.write(encode_example(SCHEMA, values))
    examples = list(iter_examples(path))
    assert [list(feature_values(e.features.feature["height"])) for e in examples] == [[64], [0]]
    assert len(list(iter_examples(path, limit=1))) == 1
    feature = examples[0].features.feature
    assert (feature_kind(feature["image_id"]), feature_kind(feature["age"])) == ("bytes", "float")


def test_check_frames_counts_records_reading_only_their_headers(tmp_path):
    from tfrec_tools.records import check_frames

    records = [encode_example(SCHEMA, v) for v in VALUES] + [b"", b"x" * 70000]
    path = write_frames(tmp_path / "ok.tfrec", records)
    assert check_frames(str(path)) == 4
    (tmp_path / "empty.tfrec").write_bytes(b"")
    assert check_frames(str(tmp_path / "empty.tfrec")) == 0


def test_a_frame_claiming_2_to_the_60_bytes_is_named_without_tensorflow(tmp_path):
    from tfrec_tools.records import check_frames

    path = write_huge_frame(tmp_path / "bad-1.tfrec")
    with pytest.raises(ShardError) as err:
        check_frames(str(path))
    assert str(err.value) == (
        f"{path}: record 0 (byte 0) claims 1152921504606846976 bytes, more than the whole file "
        "(112 bytes): the file is corrupted or not a TFRecord file; rebuild it"
    )


def test_a_file_cut_short_inside_a_record_or_a_header(tmp_path):
    from tfrec_tools.records import check_frames

    data = frame(b"a" * 10) + frame(b"b" * 20)  # frames of 26 and 36 bytes
    (tmp_path / "cut.tfrec").write_bytes(data[:-5])
    with pytest.raises(ShardError) as err:
        check_frames(str(tmp_path / "cut.tfrec"))
    assert str(err.value) == (
        f"{tmp_path / 'cut.tfrec'}: record 1 (byte 26): the file is cut short at byte 57 (the "
        "record needs 36 bytes, 31 are left): copy it again or rebuild it"
    )
    (tmp_path / "cut.tfrec").write_bytes(data[:30])
    with pytest.raises(ShardError, match=r"record 1 \(byte 26\): the file is cut short at byte 30"):
        check_frames(str(tmp_path / "cut.tfrec"))


def test_a_bad_length_checksum_is_named(tmp_path):
    from tfrec_tools.records import check_frames

    data = bytearray(frame(b"a" * 10) + frame(b"b" * 20))
    data[26] ^= 0x01  # the second record's length
    (tmp_path / "bad.tfrec").write_bytes(bytes(data))
    with pytest.raises(ShardError) as err:
        check_frames(str(tmp_path / "bad.tfrec"))
    assert str(err.value) == (
        f"{tmp_path / 'bad.tfrec'}: record 1 (byte 26) cannot be read: the checksum of its "
        "length does not match (the file is corrupted); rebuild it"
    )
    (tmp_path / "text.tfrec").write_bytes(b"this is not a TFRecord file at all")
    with pytest.raises(ShardError) as err:
        check_frames(str(tmp_path / "text.tfrec"))
    assert str(err.value) == (
        f"{tmp_path / 'text.tfrec'}: not a TFRecord file (the checksum of the first record's "
        "length does not match)"
    )


@pytest.mark.parametrize(
    "kind, hint",
    [
        ("gzip", "decompress it with `gzip -dc < IN > OUT`"),
        ("zlib", "decompress it with Python's zlib.decompress"),
    ],
)
def test_a_compressed_file_is_named_as_such(tmp_path, kind, hint):
    from tfrec_tools.records import check_frames

    path = compress(write_frames(tmp_path / "x.tfrec", [b"a" * 40000, b"b"]), kind)
    with pytest.raises(ShardError) as err:
        check_frames(str(path))
    assert str(err.value) == (
        f"{path}: compressed with {kind}: tfrec-tools reads uncompressed TFRecord files; "
        f"{hint} (TFRecordDataset reads it only with compression_type='{kind.upper()}')"
    )


def test_limit_walks_only_the_first_frames(tmp_path):
    from tfrec_tools.records import check_frames

    path = tmp_path / "x.tfrec"
    path.write_bytes(frame(b"a") + header(2**40) + b"x")
    assert check_frames(str(path), limit=1) == 1
    with pytest.raises(ShardError, match=r"record 1 \(byte 17\) claims 1099511627776 bytes"):
        check_frames(str(path))


def test_iter_examples_names_a_record_that_is_not_an_example(tmp_path):
    from tfrec_tools.records import iter_examples

    good = encode_example(SCHEMA, VALUES[0])
    path = write_frames(tmp_path / "x.tfrec", [good, JPEG_BYTES])
    with pytest.raises(ShardError) as err:
        list(iter_examples(str(path)))
    assert str(err.value).startswith(f"{path}: record 1: not a tf.train.Example (")
