"""Where each record of a shard sits: its index file (``naming.index_name``: one
``"{offset} {length}"`` line per record, the whole frame), else a walk of the frame headers;
and single records read at those places, their checksum checked."""

from __future__ import annotations

import os
import struct

import numpy as np

from tfrec_tools import naming
from tfrec_tools.errors import ShardError
from tfrec_tools.records import iter_frames, masked_crc

_HEADER, _FOOTER = 12, 4  # a frame: length (8) and its CRC (4), payload, the payload's CRC (4)
_REDO = "rebuild the shards, or delete the index file (the loader then walks the shard)"


def record_offsets(path: str) -> tuple[np.ndarray, np.ndarray]:
    """The frame offsets and lengths (int64 arrays) of every record of a local shard: from its
    index file when there is one, else from a walk of its frame headers (``iter_frames``).

    Raises:
        ShardError: the index cannot be parsed or does not tile the shard, or (no index) the
            shard's framing is broken.
    """
    size = os.path.getsize(path)
    index = naming.index_name(path)
    if not os.path.exists(index):
        offsets = np.fromiter(iter_frames(path), dtype=np.int64)
        return offsets, np.diff(offsets, append=size)
    offsets, lengths = _parse_index(index)
    _check_tiling(index, offsets, lengths, size)
    return offsets, lengths


def _parse_index(index: str) -> tuple[np.ndarray, np.ndarray]:
    with open(index, "rb") as handle:
        text = handle.read()
    try:
        numbers = np.array(text.split(), dtype=np.int64)
    except (ValueError, OverflowError):
        numbers = None
    if numbers is None or len(numbers) % 2:
        raise ShardError(f"{index}: {_first_bad_line(text)}; {_REDO}")
    pairs = numbers.reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1]


def _first_bad_line(text: bytes) -> str:
    for number, line in enumerate(text.decode("utf-8", "replace").splitlines(), start=1):
        fields = line.split()
        if len(fields) != 2 or not all(f.isdigit() for f in fields):
            return f'line {number} is {line!r}, expected "<offset> <length>"'
    return "a line holds something other than two numbers"


def _check_tiling(index: str, offsets: np.ndarray, lengths: np.ndarray, size: int) -> None:
    """Each frame starts where the one before ends, the last ends at the end of the shard."""
    ends = offsets + lengths
    starts = np.concatenate(([0], ends[:-1]))
    bad = np.flatnonzero((offsets != starts) | (lengths < _HEADER + _FOOTER))
    if len(bad):
        line = int(bad[0])
        raise ShardError(
            f"{index}: line {line + 1} ({offsets[line]} {lengths[line]}) does not follow the "
            f"record before it (expected offset {starts[line]}); {_REDO}"
        )
    end = int(ends[-1]) if len(ends) else 0
    if end != size:
        raise ShardError(
            f"{index}: its {len(offsets)} records end at byte {end}, the shard has {size} "
            f"bytes; {_REDO}"
        )


class RecordReader:
    """Reads single records by place with ``os.pread``: it moves no shared file position, so
    DataLoader workers forked from one parent read through the same descriptors safely."""

    def __init__(self) -> None:
        self._fds: dict[str, int] = {}

    def read(self, path: str, offset: int, length: int, where: str) -> bytes:
        """The payload of the frame at ``offset`` (``length`` bytes in all), checked.

        Raises:
            ShardError: the frame is cut short or its checksums do not match; the message
                starts with ``where``.
        """
        if path not in self._fds:
            self._fds[path] = os.open(path, os.O_RDONLY)
        frame = os.pread(self._fds[path], length, offset)
        payload = frame[_HEADER:-_FOOTER]
        header_ok = len(frame) == length and frame[:8] == struct.pack("<Q", len(payload))
        if not header_ok or masked_crc(frame[:8]) != struct.unpack("<I", frame[8:_HEADER])[0]:
            raise ShardError(
                f"{where}: no record of {length} bytes at byte {offset} (the shard changed "
                f"after its index was written, or is cut short); {_REDO}"
            )
        if masked_crc(payload) != struct.unpack("<I", frame[-_FOOTER:])[0]:
            raise ShardError(
                f"{where}: the record's checksum does not match (the file is corrupted); rebuild it"
            )
        return payload

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds = {}

    def __getstate__(self) -> dict:
        return {"_fds": {}}  # descriptors do not travel to spawned workers

    def __del__(self) -> None:
        self.close()
