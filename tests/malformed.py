"""Malformed shards made at test time: a frame claiming 2^60 bytes, records that are not
Examples, compressed and truncated files."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

from tfrec_tools.records import frame, masked_crc

JPEG_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"  # raw image bytes written as a record


def header(length: int) -> bytes:
    """A frame header whose length checksum is valid, whatever the length."""
    raw = struct.pack("<Q", length)
    return raw + struct.pack("<I", masked_crc(raw))


def write_huge_frame(path: Path) -> Path:
    """The issue's 112-byte shard: its first frame claims 2^60 bytes (TensorFlow segfaults)."""
    path.write_bytes(header(2**60) + b"x" * 100)
    return path


def write_frames(path: Path, records: list[bytes]) -> Path:
    path.write_bytes(b"".join(frame(r) for r in records))
    return path


def compress(path: Path, kind: str) -> Path:
    """The file compressed as TFRecordWriter's GZIP or ZLIB option does (the whole stream)."""
    data = path.read_bytes()
    path.write_bytes(gzip.compress(data) if kind == "gzip" else zlib.compress(data))
    return path
