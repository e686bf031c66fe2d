"""File access for local paths and remote URLs (``gs://``; ``s3://`` with tensorflow-io) alike.

Local paths use the standard library (fast, no TensorFlow import); URLs go through
``tf.io.gfile`` so outputs on Cloud Storage work from Kaggle and Colab TPUs.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from collections.abc import Iterator

from tfrec_tools import naming
from tfrec_tools.quiet import import_tensorflow

_CHUNK = 1 << 20


def is_remote(path: str) -> bool:
    return "://" in str(path)


def _gfile():
    tf = import_tensorflow()

    return tf.io.gfile


def join(*parts: str) -> str:
    return posixpath.join(*parts) if is_remote(parts[0]) else os.path.join(*parts)


def exists(path: str) -> bool:
    return _gfile().exists(path) if is_remote(path) else os.path.exists(path)


def isdir(path: str) -> bool:
    return _gfile().isdir(path) if is_remote(path) else os.path.isdir(path)


def makedirs(path: str) -> None:
    _gfile().makedirs(path) if is_remote(path) else os.makedirs(path, exist_ok=True)


def listdir(path: str) -> list[str]:
    """The names in a folder, sorted; a sub-folder's name without the ``/`` that Cloud
    Storage's listing appends (tensorflow/tensorflow#39167), so names compare alike."""
    if not is_remote(path):
        return sorted(os.listdir(path))
    return sorted(name.rstrip("/") for name in _gfile().listdir(path))


def remove(path: str) -> None:
    _gfile().remove(path) if is_remote(path) else os.remove(path)


def rmtree(path: str) -> None:
    if is_remote(path):
        _gfile().rmtree(path)
    else:
        import shutil

        shutil.rmtree(path)


def rename(src: str, dst: str) -> None:
    """Move src to dst, replacing dst (atomic on local file systems)."""
    _gfile().rename(src, dst, overwrite=True) if is_remote(src) else os.replace(src, dst)


def read_bytes(path: str, *, limit: int | None = None) -> bytes:
    """The bytes of ``path``; with ``limit``, at most that many."""
    size = -1 if limit is None else limit
    if is_remote(path):
        tf = import_tensorflow()
        try:
            with tf.io.gfile.GFile(path, "rb") as handle:
                return handle.read(size)
        except tf.errors.OpError as err:  # callers handle OSError, local or remote alike
            raise OSError(f"{path}: {err.message}") from err
    with open(path, "rb") as handle:
        return handle.read(size)


def open_write(path: str):
    """A binary file handle for writing ``path`` (local or remote)."""
    return _gfile().GFile(path, "wb") if is_remote(path) else open(path, "wb")


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Write data under a temporary name of this process, then rename it into place (making
    its folder). Local files reach the disk before the rename, and the rename before the
    return, so a power cut leaves the old file or the new one, never a torn one."""
    folder = posixpath.dirname(path) if is_remote(path) else os.path.dirname(path)
    if folder and not exists(folder):
        makedirs(folder)
    tmp = naming.temp_name(path, os.getpid())
    try:
        with open_write(tmp) as handle:
            handle.write(data)
        sync(tmp)
        rename(tmp, path)
    except BaseException:  # a full disk or Ctrl-C leaves no temp file behind
        if exists(tmp):
            remove(tmp)
        raise
    sync(folder or ".")


def sync(path: str) -> None:
    """Flush a local file, or a folder's entries (renames in it), to the disk; remote objects
    are durable once written, so nothing to do there."""
    if is_remote(path):
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def same_file(one: str, other: str) -> bool:
    """Whether two paths name one existing file or folder (local: through links and relative
    paths; remote: the same URL)."""
    if is_remote(one) or is_remote(other):
        return one == other
    try:
        return os.path.samefile(one, other)
    except OSError:  # one of them does not exist (yet)
        return False


def size(path: str) -> int:
    return _gfile().stat(path).length if is_remote(path) else os.path.getsize(path)


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    opener = _gfile().GFile if is_remote(path) else open
    with opener(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def walk_files(root: str) -> Iterator[str]:
    """Every file below root as a path relative to root with ``/`` separators, sorted."""
    if is_remote(root):
        for folder, _, files in _gfile().walk(root):
            rel = posixpath.relpath(folder, root) if folder != root else ""
            for name in sorted(files):
                yield posixpath.join(rel, name) if rel else name
        return
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        rel = os.path.relpath(folder, root)
        for name in sorted(files):
            yield name if rel == "." else f"{rel.replace(os.sep, '/')}/{name}"
