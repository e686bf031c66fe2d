"""TFRecord files and ``tf.train.Example`` records: written in plain Python, their framing
checked in plain Python (``check_frames``), read through TensorFlow (``iter_examples``, the one
reader of single records).

The build's workers write shards without importing TensorFlow (seconds of start-up and
hundreds of MB per process). An Example is the protobuf wire format with its feature map in
sorted key order (always the same bytes for the same record); the framing is TFRecord's:
length, masked CRC32C of the length, data, masked CRC32C of the data.
``tests/test_records.py`` checks TensorFlow reads both back exactly.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO

import google_crc32c

from tfrec_tools import fs
from tfrec_tools.errors import ShardError
from tfrec_tools.quiet import import_tensorflow
from tfrec_tools.schema import Schema

_MASK_DELTA = 0xA282EAD8
_LENGTH_DELIMITED = 2
# tf.train.Feature's oneof field numbers
_FEATURE_FIELD = {"bytes": 1, "float": 2, "int64": 3}
_KINDS = {"bytes_list": "bytes", "int64_list": "int64", "float_list": "float"}
_HEADER = 12  # the length (uint64) and its masked CRC (uint32)
_FOOTER = 4  # the data's masked CRC
# Headers of records closer than this are read from one buffer (a seek inside it is free).
# 300 MB of 10 KB records, evicted from the page cache: 0.22 s with 256 KB reads, 2.5 s with a
# 12-byte read per record (one disk request each); 0.07 s when cached. 100 KB records: 0.18 s.
_READ_BUFFER = 1 << 18
# The first bytes of a file TFRecordWriter compressed (GZIP, or ZLIB at any level).
_COMPRESSED = {
    b"\x1f\x8b": "gzip",
    b"\x78\x01": "zlib",  # a zlib header: 78, then one byte per group of levels
    b"\x78\x5e": "zlib",
    b"\x78\x9c": "zlib",
    b"\x78\xda": "zlib",
}
_UNPACK = {
    "gzip": "decompress it with `gzip -dc < IN > OUT`",
    "zlib": "decompress it with Python's zlib.decompress",
}


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
    """Writes framed records to a local path or a ``gs://`` URL. ``spans`` holds each
    frame's (byte offset, length) as written: the record index, known without reading back."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.spans: list[tuple[int, int]] = []
        self._handle: BinaryIO | None = None
        self._end = 0

    def __enter__(self) -> RecordWriter:
        self._handle = fs.open_write(self.path)
        return self

    def write(self, record: bytes) -> None:
        assert self._handle is not None
        framed = frame(record)
        self._handle.write(framed)
        self.spans.append((self._end, len(framed)))
        self._end += len(framed)

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
        packed = b"".join(map(_float32, _numbers(value)))
        listed = _delimited(1, packed)  # FloatList.value: packed floats
    else:
        packed = b"".join(_varint(int(v)) for v in _numbers(value))
        listed = _delimited(1, packed)  # Int64List.value: packed varints
    return _delimited(_FEATURE_FIELD[dtype], listed)


def _float32(value: float) -> bytes:
    """A float as float32; beyond float32's range, the infinity of its sign (as numpy casts)."""
    try:
        return struct.pack("<f", value)
    except OverflowError:
        return struct.pack("<f", math.copysign(math.inf, value))


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


def check_frames(path: str, limit: int | None = None) -> int:
    """The number of records of ``path``, every frame checked (see ``iter_frames``).

    Raises:
        ShardError: the first broken frame, by file, record and byte.
    """
    return sum(1 for _ in iter_frames(path, limit))


def iter_frames(path: str, limit: int | None = None) -> Iterator[int]:
    """The byte offset of each record of ``path`` (local or remote; the first ``limit``), its
    frame checked from the 12-byte header alone: the length's CRC, and the record within the
    file. Payloads are skipped, not read, nor their CRCs checked (TensorFlow checks those as
    it reads). TensorFlow trusts a length whose CRC matches: one of 2^60 bytes segfaults it.

    Raises (while iterating):
        ShardError: naming the file, record and byte: a compressed file, a length whose CRC
            does not match, a record longer than the file, a file cut short.
    """
    size = fs.size(path)
    offset = index = 0
    with _open_read(path) as handle:
        while offset < size and (limit is None or index < limit):
            handle.seek(offset)
            length = _frame_length(handle.read(_HEADER), path, index, offset, size)
            yield offset
            offset += _HEADER + length + _FOOTER
            index += 1


def _open_read(path: str):
    if fs.is_remote(path):
        return import_tensorflow().io.gfile.GFile(path, "rb")
    return open(path, "rb", buffering=_READ_BUFFER)


def _frame_length(header: bytes, path: str, index: int, offset: int, size: int) -> int:
    """The payload length a frame header states, once it is known to fit in the file."""
    where = f"{path}: record {index} (byte {offset})"
    if len(header) < _HEADER:
        raise ShardError(
            f"{where}: the file is cut short at byte {size} (inside the record's header): copy "
            "it again or rebuild it"
        )
    length = struct.unpack("<Q", header[:8])[0]
    if masked_crc(header[:8]) != struct.unpack("<I", header[8:])[0]:
        raise ShardError(_bad_header(header, where, path, index))
    if length > size:
        raise ShardError(
            f"{where} claims {length} bytes, more than the whole file ({size} bytes): the file "
            "is corrupted or not a TFRecord file; rebuild it"
        )
    needed, left = _HEADER + length + _FOOTER, size - offset
    if needed > left:
        raise ShardError(
            f"{where}: the file is cut short at byte {size} (the record needs {needed} bytes, "
            f"{left} are left): copy it again or rebuild it"
        )
    return length


def _bad_header(header: bytes, where: str, path: str, index: int) -> str:
    """What a header whose length CRC does not match means: at the start of the file, a
    compressed or foreign file; further on, corruption."""
    if index:
        return (
            f"{where} cannot be read: the checksum of its length does not match (the file is "
            "corrupted); rebuild it"
        )
    kind = _COMPRESSED.get(header[:2])
    if kind:
        return (
            f"{path}: compressed with {kind}: tfrec-tools reads uncompressed TFRecord files; "
            f"{_UNPACK[kind]} (TFRecordDataset reads it only with compression_type="
            f"'{kind.upper()}')"
        )
    return f"{path}: not a TFRecord file (the checksum of the first record's length does not match)"


def iter_examples(path: str, limit: int | None = None) -> Iterator[Any]:
    """The ``tf.train.Example`` records of ``path`` in order (the first ``limit`` when given).
    Check the framing first (``check_frames``): TensorFlow crashes on some broken frames.

    Raises (while iterating):
        tf.errors.OpError: the file cannot be read, is corrupted or cut short.
        ShardError: a record is not an Example.
    """
    from google.protobuf.message import DecodeError

    tf = import_tensorflow()
    records = tf.data.TFRecordDataset(path)
    for index, raw in enumerate(records if limit is None else records.take(limit)):
        try:
            example = parse_example(raw.numpy())
        except DecodeError as err:
            raise ShardError(f"{path}: record {index}: not a tf.train.Example ({err})") from err
        yield example


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
