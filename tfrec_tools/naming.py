"""Shard and side-file names: built and parsed here and nowhere else.

A shard is named ``{name}{NN}-{count}.tfrec`` (``train07-1233.tfrec``): NN is the shard index,
count is the exact number of records in the file, so totals can be read from names alone.
The side files of a build are named here too: ``train.rejected.csv``, ``train.unmatched.txt``,
``train.hashes.csv``, ``train.duplicates.csv``,
the state folder ``.train.build`` of an unfinished build and the lock ``.train.lock``.
A build of several sizes in one pass puts each size's build in a folder of its own: ``256``,
``256x384`` (``size_folder``).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable

from tfrec_tools.errors import ShardError

SHARD_SUFFIX = ".tfrec"
PARTIAL_SUFFIX = ".tfrec.partial"
TEMP_SUFFIX = ".partial"
INDEX_SUFFIX = ".idx"  # a shard's record index: "offset length" per line (DALI, `tfrecord`)
REJECTED_SUFFIX = ".rejected.csv"
UNMATCHED_SUFFIX = ".unmatched.txt"
HASHES_SUFFIX = ".hashes.csv"
DUPLICATES_SUFFIX = ".duplicates.csv"
STATE_SUFFIX = ".build"
# The count is the last run of digits before the suffix, after a dash; only the base name is
# read, so digits in folder names (``data-2.1/``) never leak in.
_COUNT = re.compile(r"-(\d+)\.tfrec(?:ords?)?$")
_SIZE_FOLDER = re.compile(r"^\d+(x\d+)?$", re.ASCII)  # size_folder's names
_OURS = re.compile(r"^(?P<name>.+?)(?P<index>\d+)-(?P<count>\d+)\.tfrec$")


def base_name(path: str) -> str:
    """The file name of a local or ``gs://`` path (both use ``/``; ``\\`` too on Windows)."""
    return posixpath.basename(str(path).replace("\\", "/"))


def folder_name(path: str) -> str:
    """The folder of a local or ``gs://`` path, as written (``"."`` for a bare name)."""
    return str(path)[: -len(base_name(path))].rstrip("/\\") or "."


def index_width(num_shards: int) -> int:
    """Digits used for shard indices: at least 2, enough for the last index."""
    return max(2, len(str(max(num_shards - 1, 0))))


def shard_stem(name: str, index: int, num_shards: int) -> str:
    """``train07`` for shard 7 of a build named ``train`` with up to 100 shards."""
    return f"{name}{index:0{index_width(num_shards)}d}"


def shard_name(name: str, index: int, num_shards: int, count: int) -> str:
    """The final file name of a complete shard holding ``count`` records."""
    return f"{shard_stem(name, index, num_shards)}-{count}{SHARD_SUFFIX}"


def index_name(shard: str) -> str:
    """``train07-1233.tfrec.idx``: the record index beside the shard ``train07-1233.tfrec``
    (a path in, a path out): one line per record, its frame's byte offset and length."""
    return f"{shard}{INDEX_SUFFIX}"


def partial_name(name: str, index: int, num_shards: int, *, pid: int) -> str:
    """Where process ``pid`` writes a shard before it is complete: ``train07.4242.tfrec.partial``
    (never matches ``*.tfrec``; two processes never write the same file)."""
    return f"{shard_stem(name, index, num_shards)}.{pid}{PARTIAL_SUFFIX}"


def is_partial_of(path: str, name: str) -> bool:
    """Whether ``path`` is an unfinished shard of the build named ``name`` (and not of a build
    whose name merely starts the same way), written by any process."""
    base = base_name(path)
    stem = base[: -len(PARTIAL_SUFFIX)] if base.endswith(PARTIAL_SUFFIX) else ""
    index, _, pid = stem[len(name) :].partition(".")
    return stem.startswith(name) and index.isdigit() and (pid.isdigit() or not pid)


def temp_name(path: str, pid: int) -> str:
    """Where process ``pid`` writes ``path`` before renaming it into place."""
    return f"{path}.{pid}{TEMP_SUFFIX}"


def is_temp_of(path: str, base: str) -> bool:
    """Whether ``path`` is a temporary of the file named ``base``, left by any process."""
    entry = base_name(path)
    if not (entry.startswith(base + ".") and entry.endswith(TEMP_SUFFIX)):
        return False
    pid = entry[len(base) + 1 : -len(TEMP_SUFFIX)]  # "" for a temp named before pids were
    return not pid or pid.isdigit()


# --- side files a build writes beside its shards (the manifest's name lives in manifest.py) --


def rejected_name(name: str) -> str:
    """``train.rejected.csv``: the rows of the build named ``name`` that did not land."""
    return f"{name}{REJECTED_SUFFIX}"


def unmatched_name(name: str) -> str:
    """``train.unmatched.txt``: the images no row of the build named ``name`` names."""
    return f"{name}{UNMATCHED_SUFFIX}"


def hashes_name(name: str) -> str:
    """``train.hashes.csv``: the perceptual hash and sha256 of every image the build stored."""
    return f"{name}{HASHES_SUFFIX}"


def duplicates_name(name: str) -> str:
    """``train.duplicates.csv``: the exact and near-duplicate groups the build found."""
    return f"{name}{DUPLICATES_SUFFIX}"


def state_dir_name(name: str) -> str:
    """``.train.build``: the hidden folder that makes an interrupted build resumable; it is
    removed when the build finishes."""
    return f".{name}{STATE_SUFFIX}"


def size_folder(size: tuple[int, int]) -> str:
    """``256`` (square) or ``256x384`` (height x width): the folder, inside ``--out``, of
    each size's build in a pass of several sizes (``--size 256,256x384``)."""
    height, width = size
    return str(height) if height == width else f"{height}x{width}"


def is_size_folder(path: str) -> bool:
    """Whether ``path`` is named like a size folder of a pass (``256``, ``256x384``)."""
    return _SIZE_FOLDER.match(base_name(path)) is not None


def lock_name(name: str) -> str:
    """``.train.lock``: held by the process writing the build named ``name`` (local folders)."""
    return f".{name}.lock"


def is_state_dir(path: str) -> bool:
    """Whether ``path`` is named like the state folder of some build (``.{name}.build``)."""
    base = base_name(path)
    hidden = base.startswith(".") and base.endswith(STATE_SUFFIX)
    return hidden and len(base) > len(f".{STATE_SUFFIX}")  # a name between the two


_OF = re.compile(r"-\d+-of-\d+\.tfrec(?:ords?)?$")  # TFDS/Beam "-00003-of-00010": no count


def parse_count(path: str) -> int | None:
    """The record count stated in a shard's file name, or None when the name states none."""
    if _OF.search(base_name(path)):
        return None
    match = _COUNT.search(base_name(path))
    return int(match.group(1)) if match else None


def parse_shard_name(path: str) -> tuple[str, int, int] | None:
    """``(name, index, count)`` for a name of our form, else None."""
    match = _OURS.match(base_name(path))
    if not match:
        return None
    return match.group("name"), int(match.group("index")), int(match.group("count"))


def count_data_items(files: Iterable[str]) -> int:
    """Total records in ``files``, read from their names alone (``name-NNN.tfrec``).

    Raises:
        ShardError: a file name states no count.
    """
    total = 0
    for path in files:
        count = parse_count(path)
        if count is None:
            raise ShardError(
                f"{path}: the file name states no record count (expected '<name>-<count>.tfrec'); "
                "count its records with `tfrec inspect` instead"
            )
        total += count
    return total


def set_glob(name: str, extension: str = SHARD_SUFFIX) -> str:
    """The glob of the shards of the build named ``name`` alone: ``train[0-9]*.tfrec`` (the
    index's first digit keeps ``train_b00-9.tfrec`` out); ``*.tfrecord`` for an empty name."""
    return f"{name}[0-9]*{extension}" if name else f"*{extension}"
