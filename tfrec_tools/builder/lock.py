"""One build of a name in a folder at a time: ``.{name}.lock``, held with ``flock`` from before
the output folder is touched until the build ends (or is interrupted), then removed.

A second build of the same name into the same local folder fails at once, naming the holder's
PID. The kernel releases the lock of a killed process, so a stale lock file never blocks.
Remote folders (``gs://``) have no locks: nothing stops two builds there.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from tfrec_tools import fs, naming
from tfrec_tools.errors import ConfigError

log = logging.getLogger(__name__)


@contextlib.contextmanager
def build_lock(out: str, name: str) -> Iterator[None]:
    """Hold the lock of the build ``name`` in the folder ``out`` (made if missing).

    Raises:
        ConfigError: another process holds it.
    """
    fs.makedirs(out)
    if fs.is_remote(out) or os.name == "nt":  # no flock on gs:// (nor on Windows)
        log.info("%s: no lock on this folder; run one build of %r there at a time", out, name)
        yield
        return
    path = fs.join(out, naming.lock_name(name))
    fd = _acquire(path, name)
    try:
        yield
    finally:
        os.remove(path)  # while still held: a waiting process then finds the new file
        os.close(fd)


def _acquire(path: str, name: str) -> int:
    """A descriptor of ``path`` holding its lock, with this process's PID written in."""
    import fcntl

    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise ConfigError(
                f"{naming.folder_name(path)}: another build named {name!r} is writing there "
                f"(pid {holder}); wait for it to end, or pass another --out or --name"
            ) from None
        if _still_there(fd, path):
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)  # the holder removed the file after we opened it: lock the new one


def _read_pid(fd: int) -> str:
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return text or "unknown"


def _still_there(fd: int, path: str) -> bool:
    try:
        now, held = os.stat(path), os.fstat(fd)
    except FileNotFoundError:
        return False
    return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)
