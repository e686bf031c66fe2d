"""TFRecord files and ``tf.train.Example`` records: written in plain Python, read through
TensorFlow (``iter_examples``, the one reader of single records).

The build's workers write shards without importing TensorFlow (seconds of start-up and
hundreds of MB per process). An Example is the protobuf wire format with its feature map in
sorted key order (always the same bytes for the same record); the framing is TFRecord's:
length, masked CRC32C of the length, data, masked CRC32C of the data.
``tests/test_records.py`` checks TensorFlow reads both back exactly.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO

import google_crc32c

from tfrec_tools import fs
from tfrec_tools.quiet import import_tensorflow
from tfrec_tools.schema import Schema

_MASK_DELTA = 0xA282EAD8
_LENGTH_DELIMITED = 2
# tf.train.Feature's oneof field numbers
_FEATURE_FIELD = {"bytes": 1, "float": 2, "int64": 3}
_KINDS = {"bytes_list": "bytes", "int64_list": "int64", "float_list": "float"}


def masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame(record: bytes) -> bytes:
    """One record in TFRecord framing."""
    length = struct.pack("<Q", len(record))
    return (
        length
        + struct.pack("<I", masked_crc(length))
        + record
        + struct.pack("<I", masked_crc(record))
    )


class RecordWriter:
    """Writes framed records to a local path or a ``gs://`` URL."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._handle: BinaryIO | None = None

    def __enter__(self) -> RecordWriter:
        self._handle = fs.open_write(self.path)
        return self

    def write(self, record: bytes) -> None:
        assert self._handle is not None
        self._handle.write(frame(record))

    def __exit__(self, *exc_info) -> None:
        assert self._handle is not None
        self._handle.close()


def encode_example(schema: Schema, values: Mapping[str, Any]) -> bytes:
    """A serialised ``tf.train.Example`` holding one value per schema feature, or a list
    (tuple) of numbers for a feature with a shape (a multi-hot label)."""
    entries = b"".join(
        _delimited(
            1, _delimited(1, name.encode("utf-8")) + _delimited(2, _feature(dtype, values[name]))
        )
        for name, dtype in sorted((s.name, s.dtype) for s in schema.features)
    )
    return _delimited(1, entries)  # Example.features -> Features.feature (a map)


def _feature(dtype: str, value: Any) -> bytes:
    if dtype == "bytes":
        data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        listed = _delimited(1, data)  # BytesList.value: repeated bytes
    elif dtype == "float":
        packed = b"".join(struct.pack("<f", v) for v in _numbers(value))
        listed = _delimited(1, packed)  # FloatList.value: packed floats
    else:
        packed = b"".join(_varint(int(v)) for v in _numbers(value))
        listed = _delimited(1, packed)  # Int64List.value: packed varints
    return _delimited(_FEATURE_FIELD[dtype], listed)


def _numbers(value: Any) -> tuple | list:
    return value if isinstance(value, (tuple, list)) else (value,)


def _delimited(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | _LENGTH_DELIMITED) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    value &= 0xFFFFFFFFFFFFFFFF  # negative int64: two's complement, 10 bytes
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def iter_examples(path: str, limit: int | None = None) -> Iterator[Any]:
    """The ``tf.train.Example`` records of ``path`` in order (the first ``limit`` when given).

    Raises (while iterating):
        tf.errors.OpError: the file cannot be read, is corrupted or cut short.
        google.protobuf.message.DecodeError: a record is not an Example.
    """
    tf = import_tensorflow()
    records = tf.data.TFRecordDataset(path)
    for raw in records if limit is None else records.take(limit):
        yield parse_example(raw.numpy())


def parse_example(raw: bytes) -> Any:
    """One serialised record -> ``tf.train.Example``."""
    return import_tensorflow().train.Example.FromString(raw)


def feature_kind(feature: Any) -> str | None:
    """The dtype of a ``tf.train.Feature`` ("bytes", "int64", "float"), None when unset."""
    return _KINDS.get(feature.WhichOneof("kind"))


def feature_values(feature: Any) -> Any:
    """Every value of a ``tf.train.Feature`` (a protobuf repeated field; empty when unset)."""
    kind = feature.WhichOneof("kind")
    return getattr(feature, kind).value if kind else []
