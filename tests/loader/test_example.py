"""The plain-Python Example decoder against TensorFlow's own parser."""

from __future__ import annotations

import struct

import pytest

from tfrec_tools.errors import ShardError
from tfrec_tools.loader.example import decode_example


def tf_features(raw: bytes) -> dict:
    import tensorflow as tf

    example = tf.train.Example.FromString(raw)
    out = {}
    for key, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        out[key] = (
            kind.removesuffix("_list") if kind else None,
            list(getattr(feature, kind).value) if kind else [],
        )
    return out


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes([*out, value])


def field(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def example(entries: dict[str, bytes]) -> bytes:
    """An Example from already encoded Features, one map entry per key."""
    return field(
        1, b"".join(field(1, field(1, k.encode()) + field(2, v)) for k, v in entries.items())
    )


def test_every_record_of_a_build_decodes_as_tensorflow_reads_it(built):
    import tensorflow as tf

    records = [r.numpy() for r in tf.data.TFRecordDataset(sorted(map(str, built.glob("*.tfrec"))))]
    assert len(records) == 48
    for raw in records:  # repr: NaN (a missing age) equals itself
        assert repr(sorted(decode_example(raw, "x").items())) == repr(
            sorted(tf_features(raw).items())
        )


def test_packed_lists_negative_numbers_and_empty_features():
    import tensorflow as tf

    feature = {
        "b": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"a", b"", b"\xff"])),
        "f": tf.train.Feature(float_list=tf.train.FloatList(value=[1.5, -2.25, float("inf")])),
        "i": tf.train.Feature(int64_list=tf.train.Int64List(value=[0, -1, 2**63 - 1, -(2**63)])),
        "empty": tf.train.Feature(),
        "none": tf.train.Feature(int64_list=tf.train.Int64List(value=[])),
    }
    raw = tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
    decoded = decode_example(raw, "x")
    assert decoded == tf_features(raw)
    assert decoded["i"] == ("int64", [0, -1, 2**63 - 1, -(2**63)]) and decoded["empty"] == (
        None,
        [],
    )


def test_unpacked_numbers_and_unknown_fields_as_other_writers_write_them():
    ints = field(3, varint(1 << 3 | 0) + varint(5) + varint(1 << 3 | 0) + varint(-7))  # unpacked
    floats = field(2, b"".join(varint(1 << 3 | 5) + struct.pack("<f", v) for v in (0.5, 2.0)))
    unknown = varint(9 << 3 | 0) + varint(42)  # a field this reader does not know
    raw = example({"i": ints, "f": floats + unknown}) + unknown
    assert (
        decode_example(raw, "x")
        == tf_features(raw)
        == {
            "i": ("int64", [5, -7]),
            "f": ("float", [0.5, 2.0]),
        }
    )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x0a\x05ab", "a field of 5 bytes runs past the end (4 bytes)"),
        (b"\x0b", "wire type 3 at byte 1"),
        (b"\x08\x01", "field 1 has wire type 0, not length-delimited"),
        (b"\x0a\x80", "cut short inside a number"),
        (example({"f": field(2, field(1, b"abc"))}), "a float list of 3 bytes"),
    ],
)
def test_bytes_that_are_no_example_name_the_record(raw, reason):
    with pytest.raises(ShardError) as err:
        decode_example(raw, "a.tfrec: record 3")
    assert str(err.value) == f"a.tfrec: record 3: not a tf.train.Example ({reason})"
