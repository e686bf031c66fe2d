"""``tf.train.Example`` records decoded from the protobuf wire format in plain Python.

Example{features: Features{feature: map<string, Feature>}}; a Feature holds one of
bytes_list (field 1), float_list (2) or int64_list (3), each a repeated ``value`` (field 1).
Numbers may come packed (our writer, TensorFlow) or one field each (other writers): both are
read. Fields this reader does not know are skipped, as protobuf itself does.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from tfrec_tools.errors import ShardError

_KINDS = {1: "bytes", 2: "float", 3: "int64"}
_VARINT, _FIXED64, _DELIMITED, _FIXED32 = 0, 1, 2, 5
_INT64_SIGN = 1 << 63
# the wire types each list's values may come in
_WIRES = {"bytes": (_DELIMITED,), "float": (_DELIMITED, _FIXED32), "int64": (_VARINT, _DELIMITED)}

# key -> (kind, values): kind "bytes", "float", "int64", or None for a Feature left empty
Features = dict[str, tuple[str | None, list]]


class _Malformed(ValueError):
    """The bytes are not a well-formed protobuf message."""


def decode_example(raw: bytes, where: str) -> Features:
    """The features of one serialised ``tf.train.Example``.

    Raises:
        ShardError: ``raw`` is not an Example; the message starts with ``where``.
    """
    features: Features = {}
    try:
        for message in _messages(memoryview(raw), 1):  # Example.features (occurrences merge)
            for entry in _messages(message, 1):  # Features.feature: one map entry each
                key, value = _map_entry(entry)
                features[key] = value
    except (_Malformed, UnicodeDecodeError) as err:
        raise ShardError(f"{where}: not a tf.train.Example ({err})") from err
    return features


def _messages(data: memoryview, number: int) -> Iterator[memoryview]:
    """The length-delimited values of field ``number`` (other fields skipped)."""
    for field, wire, value in _fields(data):
        if field == number:
            if wire != _DELIMITED:
                raise _Malformed(f"field {number} has wire type {wire}, not length-delimited")
            yield value  # type: ignore[misc]


def _map_entry(entry: memoryview) -> tuple[str, tuple[str | None, list]]:
    key = b"".join(bytes(k) for k in _messages(entry, 1)).decode("utf-8")
    kind, values = None, []
    for feature in _messages(entry, 2):
        for field, _, _ in _fields(feature):
            if field in _KINDS:  # the last kind set wins, as a protobuf oneof does
                kind = _KINDS[field]
                values = [v for listed in _messages(feature, field) for v in _values(kind, listed)]
    return key, (kind, values)


def _values(kind: str, listed: memoryview) -> list:
    values: list = []
    for field, wire, value in _fields(listed):
        if field != 1:
            continue
        if wire not in _WIRES[kind]:
            raise _Malformed(f"a {kind} value with wire type {wire}")
        if kind == "bytes":
            values.append(bytes(value))  # type: ignore[arg-type]
        elif kind == "float":  # packed: n * 4 bytes; unpacked: one fixed32 field each
            data = bytes(value)  # type: ignore[arg-type]
            if len(data) % 4:
                raise _Malformed(f"a float list of {len(data)} bytes")
            values.extend(struct.unpack(f"<{len(data) // 4}f", data))
        elif wire == _VARINT:
            values.append(_signed(value))  # type: ignore[arg-type]
        else:
            values.extend(_signed(v) for v in _packed_varints(value))  # type: ignore[arg-type]
    return values


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= _INT64_SIGN else value


def _packed_varints(data: memoryview) -> Iterator[int]:
    position = 0
    while position < len(data):
        value, position = _varint(data, position)
        yield value


def _fields(data: memoryview) -> Iterator[tuple[int, int, object]]:
    """(field number, wire type, value) of each field of a message: an int for varints, the
    bytes (a view) of everything else."""
    position, end = 0, len(data)
    while position < end:
        tag, position = _varint(data, position)
        wire = tag & 7
        if wire == _VARINT:
            value, position = _varint(data, position)
            yield tag >> 3, wire, value
            continue
        if wire == _DELIMITED:
            size, position = _varint(data, position)
        elif wire in (_FIXED32, _FIXED64):
            size = 4 if wire == _FIXED32 else 8
        else:
            raise _Malformed(f"wire type {wire} at byte {position}")
        if position + size > end:
            raise _Malformed(f"a field of {size} bytes runs past the end ({end} bytes)")
        yield tag >> 3, wire, data[position : position + size]
        position += size


def _varint(data: memoryview, position: int) -> tuple[int, int]:
    value = shift = 0
    while shift < 70:
        if position >= len(data):
            raise _Malformed("cut short inside a number")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7
    raise _Malformed("a number longer than 10 bytes")
