"""Record index files: ``train07-1233.tfrec.idx`` beside its shard, one ASCII line per record,
``"{offset} {length}\\n"``: the byte offset of the record's frame and the frame's whole length
(12-byte header, payload, 4-byte CRC). It is the file DALI's and the ``tfrecord`` package's
``tfrecord2idx`` write, and what ``fn.readers.tfrecord(index_path=...)`` and
``tfrecord.reader.tfrecord_loader(path, index_path, ...)`` read to split a shard among workers
and to seek to any record without walking the file. An empty shard has an empty index.
"""

from __future__ import annotations

from collections.abc import Iterable

from tfrec_tools import fs, naming
from tfrec_tools.errors import ShardError
from tfrec_tools.records import iter_frames

Span = tuple[int, int]  # one record's frame: (byte offset, length in bytes)


def index_bytes(spans: Iterable[Span]) -> bytes:
    """The index file of frames ``spans``: always the same bytes for the same shard."""
    return "".join(f"{offset} {length}\n" for offset, length in spans).encode("ascii")


def shard_spans(shard: str) -> list[Span]:
    """The frame of each record of ``shard``, from its headers alone (``iter_frames``).

    Raises:
        ShardError: the shard's framing is broken (by file, record and byte).
    """
    offsets = list(iter_frames(shard))
    # iter_frames walks to the file's end: the last frame ends there
    ends = offsets[1:] + [fs.size(shard)] if offsets else []
    return [(offset, end - offset) for offset, end in zip(offsets, ends)]


def write_index(shard: str, spans: Iterable[Span] | None = None) -> str:
    """Write the index of ``shard`` (from ``spans``, else from its frames) under a temporary
    name, fsynced, then renamed into place; its path.

    Raises:
        ShardError: no spans given and the shard's framing is broken.
    """
    path = naming.index_name(shard)
    fs.write_bytes_atomic(path, index_bytes(shard_spans(shard) if spans is None else spans))
    return path


def read_index(path: str) -> list[Span]:
    """The spans an index file lists.

    Raises:
        ShardError: the file is missing, or a line is not two numbers (naming the line).
    """
    if not fs.exists(path):
        shard = path.removesuffix(naming.INDEX_SUFFIX)
        raise ShardError(f"{path}: index file not found; write it with `tfrec index {shard}`")
    spans = []
    for number, line in enumerate(fs.read_bytes(path).decode("ascii", "replace").splitlines()):
        fields = line.split()
        if len(fields) != 2 or not all(f.isdigit() for f in fields):
            raise ShardError(f"{path}: line {number + 1} is not 'OFFSET LENGTH' ({line[:40]!r})")
        spans.append((int(fields[0]), int(fields[1])))
    return spans


def index_problem(shard: str, index: str | None = None) -> str | None:
    """How the index of ``shard`` (default: the ``.idx`` beside it) disagrees with the shard's
    frames, naming the index and its first wrong line; None when every line is right.

    Raises:
        ShardError: the shard's framing is broken (its index cannot be checked).
    """
    index = index or naming.index_name(shard)
    if not fs.exists(index):
        return f"{index}: not found; write it with `tfrec index {shard}`"
    actual = shard_spans(shard)
    try:
        listed = read_index(index)
    except ShardError as err:
        return _redo(str(err), shard)
    wrong = _first_wrong_line(listed, actual, shard)
    return _redo(f"{index}: {wrong}", shard) if wrong else None


def _first_wrong_line(listed: list[Span], actual: list[Span], shard: str) -> str | None:
    for line, (says, frame) in enumerate(zip(listed, actual), start=1):
        if says != frame:
            return (
                f"line {line} says '{says[0]} {says[1]}', but record {line - 1} of {shard} is "
                f"at byte {frame[0]}, {frame[1]} bytes long"
            )
    if len(listed) < len(actual):
        lines = f"{len(listed)} line{'' if len(listed) == 1 else 's'}"
        missing = len(listed) + 1
        return f"{lines} for the {len(actual)} records of {shard}: line {missing} is missing"
    if len(listed) > len(actual):
        return f"line {len(actual) + 1} lists a record beyond the {len(actual)} of {shard}"
    return None


def _redo(problem: str, shard: str) -> str:
    return (
        f"{problem}: the index does not match its shard; write it again with "
        f"`tfrec index --overwrite {shard}`"
    )


def ensure_index(shard: str, *, overwrite: bool = False) -> str:
    """Write the index of ``shard`` when it has none (or ``overwrite``), else check it.

    Returns:
        "written", "rewritten" (``overwrite``) or "checked".

    Raises:
        ShardError: the shard's framing is broken, or (without ``overwrite``) its index does
            not match it.
    """
    exists = fs.exists(naming.index_name(shard))
    if exists and not overwrite:
        problem = index_problem(shard)
        if problem:
            raise ShardError(problem)
        return "checked"
    write_index(shard)
    return "rewritten" if exists else "written"
