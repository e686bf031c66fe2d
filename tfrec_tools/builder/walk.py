"""Walking the image folder: every regular file below it, and every entry skipped, with why.

The policy:
- symbolic links are followed, to files and to folders, inside the image folder or out of it
  (Kaggle datasets often link their images in);
- a folder is walked once: one reached again by its real path (a second link to it, or a
  link back up, which would loop) is skipped as a ``repeated folder``; real folders are
  walked before any link, so the real path of a folder always wins over a link to it; a link
  that never reaches anything is a ``broken link``, or a ``link loop`` when it resolves to
  itself;
- only regular files are taken: a FIFO, socket or device (or a link to one, ``/dev/zero``)
  would hang or flood the writer, so it is skipped as ``not a regular file``;
- a name that is not UTF-8 (``caf\\xe9.jpg`` written in Latin-1) could not be stored as a
  record id nor listed in the manifest, so it is skipped as ``file name not UTF-8`` and shown
  with its bytes escaped, as here;
- a folder that cannot be listed is skipped as an ``unreadable folder``.
Cost: no system call per regular file (``os.scandir`` reports the type); one ``stat`` per
folder (to know it by its real path) and per link.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from operator import attrgetter

from tfrec_tools import fs
from tfrec_tools.errors import DataError

NOT_READABLE = "not a file to read an image from"
SPECIAL_FILES = {
    stat.S_ISFIFO: "a named pipe (FIFO)",
    stat.S_ISSOCK: "a socket",
    stat.S_ISCHR: "a character device",
    stat.S_ISBLK: "a block device",
}


@dataclass(frozen=True)
class Skipped:
    """An entry under the image folder that the build does not read (``rel``: its path there,
    ``/``-separated, escaped to valid UTF-8), and why."""

    rel: str
    reason: str
    detail: str
    folder: bool = False  # a folder or a link that may have led to one: what is under it


@dataclass(frozen=True)
class Walk:
    files: list[str]  # regular files, relative to the image folder, ``/``-separated, sorted
    skipped: tuple[Skipped, ...]


def walk_images(root: str) -> Walk:
    """Every regular file below ``root`` and every entry skipped, by the policy above
    (a remote folder, ``gs://``, has neither links nor special files: all its files).

    Raises:
        DataError: ``root`` itself cannot be listed.
    """
    if fs.is_remote(root):
        return Walk(list(fs.walk_files(root)), ())
    files: list[str] = []
    skipped: list[Skipped] = []
    seen = {_identity(root): "the image folder"}
    todo, links = [("", root)], []
    while todo or links:
        if not todo:  # every real folder is claimed: now the links, which lose to them
            todo = sorted(_unseen(sorted(links, key=_by_rel), seen, skipped), reverse=True)
            links = []
            continue
        rel_folder, folder = todo.pop()
        try:
            names, others = _scan(folder)
        except OSError as err:
            if not rel_folder:
                raise DataError(f"{root}: cannot list the image folder ({_why(err)})") from err
            rel = _shown(rel_folder[:-1])
            skipped.append(Skipped(rel, "unreadable folder", _why(err), True))
            continue
        files += [rel_folder + name for name in names]
        folders = []
        for entry in others:
            kind = _kind(entry)
            if kind != "folder":
                skipped.append(_odd(entry, rel_folder + entry.name, kind))
            elif entry.is_symlink():
                links.append((entry, rel_folder + entry.name))
            else:
                folders.append((entry, rel_folder + entry.name))
        todo += sorted(_unseen(folders, seen, skipped), reverse=True)  # depth first, by name
    files.sort()
    if not all(map(str.isascii, files)):  # one pass in C; names are rarely anything else
        skipped += [_not_utf8(rel) for rel in files if not _is_utf8(rel)]
        files = [rel for rel in files if _is_utf8(rel)]
    return Walk(files, tuple(sorted(skipped, key=attrgetter("rel"))))


def _scan(folder: str) -> tuple[list[str], list[os.DirEntry]]:
    """The names of the files in ``folder`` (links to files included), and its other
    entries, sorted by name. ``os.scandir`` knows each entry's type: no system call per file."""
    names, others = [], []
    with os.scandir(folder) as entries:
        for entry in entries:
            try:
                if entry.is_file():
                    names.append(entry.name)
                    continue
            except OSError:  # a link loop: _kind says so
                pass
            others.append(entry)
    others.sort(key=attrgetter("name"))
    return names, others


def _unseen(
    folders: list[tuple[os.DirEntry, str]],
    seen: dict[tuple[int, int], str],
    skipped: list[Skipped],
) -> list[tuple[str, str]]:
    """(``rel/``, path) of the ``folders`` not reached before by their real path; the others
    are skipped as repeated. The walk offers links only once every real folder it can reach
    without one has claimed its identity: a real folder always wins over a link to it."""
    fresh = []
    for entry, rel in folders:
        first = seen.setdefault(_identity(entry.path), rel)
        if first == rel:
            fresh.append((rel + "/", entry.path))
            continue
        detail = f"the same folder as {_shown(first)} (by its real path); walked once"
        skipped.append(Skipped(_shown(rel), "repeated folder", detail, True))
    return fresh


def _by_rel(pair: tuple[os.DirEntry, str]) -> str:
    return pair[1]


def _kind(entry: os.DirEntry) -> str:
    """What an entry that is not a file is: a "folder" (links followed), or unreadable as a
    "special" file, a "broken" link or a link "loop"."""
    try:
        if entry.is_dir():
            return "folder"
    except OSError as err:  # a link that resolves to itself, or one we may not follow
        return "loop" if err.errno == errno.ELOOP else "broken"
    return "broken" if entry.is_symlink() and not os.path.exists(entry.path) else "special"


def _odd(entry: os.DirEntry, rel: str, kind: str) -> Skipped:
    shown = _shown(rel)
    if kind == "loop":
        return Skipped(shown, "link loop", "the symbolic link leads back to itself", True)
    if kind == "broken":
        target = os.fsencode(os.readlink(entry.path)).decode("utf-8", "backslashreplace")
        detail = f"the symbolic link points to {target}, which cannot be reached"
        return Skipped(shown, "broken link", detail, True)
    try:
        mode = entry.stat().st_mode
    except OSError:  # gone since it was listed
        mode = 0
    what = next((name for test, name in SPECIAL_FILES.items() if test(mode)), "no file")
    if entry.is_symlink():
        what = f"a link to {what}"
    return Skipped(shown, "not a regular file", f"{what}, {NOT_READABLE}")


def _identity(path: str) -> tuple[int, int]:
    """A folder as the file system knows it, whatever the links that lead to it."""
    info = os.stat(path)
    return info.st_dev, info.st_ino


def _is_utf8(name: str) -> bool:
    """False for a name ``os`` decoded with surrogate escapes: its bytes are not UTF-8."""
    if name.isascii():
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _not_utf8(rel: str) -> Skipped:
    detail = "the name's bytes are not UTF-8 (shown escaped); rename the file in UTF-8"
    return Skipped(_shown(rel), "file name not UTF-8", detail)


def _shown(rel: str) -> str:
    """``rel`` as valid UTF-8: bytes that are not UTF-8 as backslash escapes (``caf\\xe9``)."""
    return rel if _is_utf8(rel) else os.fsencode(rel).decode("utf-8", "backslashreplace")


def _why(err: OSError) -> str:
    return err.strerror or type(err).__name__
