"""Matching CSV ids to image files: by relative path, with or without extension, or by a stem
that is unique under the image folder."""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from tfrec_tools.builder.walk import Skipped

IMAGE_EXTENSIONS = frozenset(
    [
        ".jpg",
        ".jpeg",
        ".jfif",
        ".jpe",
        ".png",
        ".bmp",
        ".gif",
        ".tif",
        ".tiff",
        ".webp",
        ".ppm",
        ".pgm",
        ".pbm",
        ".pnm",
    ]
)


# Encodings a file name that is not UTF-8 was likely written in: Windows and old Linux
# (cp1252, Latin-1), and the zip archives of Windows (cp437)
LEGACY_CODECS = ("cp1252", "latin-1", "cp437")


def is_image_name(rel_path: str) -> bool:
    """Files a build without a CSV takes (the content still decides the format): image
    extensions, nothing hidden, nor in a hidden folder (``.ipynb_checkpoints/``)."""
    if is_hidden(rel_path):
        return False
    return _split_extension(rel_path)[1].lower() in IMAGE_EXTENSIONS


def is_hidden(rel_path: str) -> bool:
    """A hidden file or folder, or one inside a hidden folder."""
    return rel_path.startswith(".") or "/." in rel_path


def strip_extension(rel_path: str) -> str:
    return _split_extension(rel_path)[0]


def _split_extension(rel_path: str) -> tuple[str, str]:
    """``posixpath.splitext`` for ``/`` paths, several times faster (called per file on
    folders of millions): the extension is the last dot of the file name, unless only dots
    precede it (``.hidden``, ``..jpg``)."""
    start = rel_path.rfind("/") + 1
    dot = rel_path.rfind(".")
    if dot <= start or not rel_path[start:dot].strip("."):
        return rel_path, ""
    return rel_path[:dot], rel_path[dot:]


def normalise_id(image_id: str) -> str:
    key = image_id.strip().replace("\\", "/")
    while key.startswith("./"):
        key = key[2:]
    return key


@dataclass(frozen=True)
class Match:
    """A matched file (``path``), or why there is none (``reason``, ``detail``); a file the
    walk skipped has both: it exists, and the reason it cannot be used."""

    path: str | None
    reason: str = ""
    detail: str = ""


def _named_by_rows(skipped: Skipped) -> bool:
    """Whether a CSV id may name this skipped entry itself: a file, or a link that led
    nowhere (a folder's link too: the row then gets the link's reason)."""
    return not skipped.folder or skipped.reason in ("broken link", "link loop")


class ImageIndex:
    """Every file under the image folder, looked up by relative path, path without extension,
    file name, or bare stem (the last two only when unique). ``skipped`` (what the walk did
    not take) is looked up too: an id naming a skipped file, or a path under a skipped
    folder, matches with the walk's reason."""

    def __init__(self, rel_paths: Iterable[str], skipped: Iterable[Skipped] = ()) -> None:
        self.skipped = {s.rel: s for s in skipped}
        self.files = sorted(rel_paths)
        self.images = [f for f in self.files if is_image_name(f)]
        if self.skipped:
            self.files += [s.rel for s in self.skipped.values() if _named_by_rows(s)]
            self.files.sort()
        self._exact = set(self.files)
        self._no_ext: dict[str, list[str]] = defaultdict(list)
        for rel in self.files:
            self._no_ext[strip_extension(rel)].append(rel)

    @cached_property  # built on the first id that matches no path: most CSVs never need it
    def _by_name(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        names: dict[str, list[str]] = defaultdict(list)
        stems: dict[str, list[str]] = defaultdict(list)
        for rel in self.files:
            names[posixpath.basename(rel)].append(rel)
            stems[posixpath.basename(strip_extension(rel))].append(rel)
        return names, stems

    def match(self, image_id: str) -> Match:
        key = normalise_id(image_id)
        found = [key] if key in self._exact else self._no_ext.get(key, [])
        if len(found) == 1 and found[0] not in self.skipped:  # most ids: one file, taken
            return Match(found[0])
        match = self._lookup(key) or self._legacy_name(key) or self._in_skipped_folder(key)
        return match or Match(
            None, "missing file", "no file under the image folder matches this id"
        )

    def _lookup(self, key: str) -> Match | None:
        if key in self._exact:
            return self._found(key)
        found = self._no_ext.get(key, [])
        if len(found) == 1:
            return self._found(found[0])
        for table in (self._no_ext, *self._by_name):
            found = table.get(key, [])
            if len(found) == 1:
                return self._found(found[0])
            if found:
                shown = ", ".join(found[:3]) + (" ..." if len(found) > 3 else "")
                return Match(
                    None,
                    "ambiguous id",
                    f"{len(found)} files match ({shown}); use the relative path with extension",
                )
        return None

    def _legacy_name(self, key: str) -> Match | None:
        """The skipped file whose name is ``key`` in a legacy encoding (``café`` names the
        Latin-1 bytes ``caf\\xe9``, which the walk shows escaped)."""
        if key.isascii() or not self.skipped:
            return None
        for codec in LEGACY_CODECS:
            try:
                escaped = key.encode(codec).decode("utf-8", "backslashreplace")
            except UnicodeEncodeError:
                continue
            found = self._lookup(escaped)
            if found is not None and found.path in self.skipped:
                return found
        return None

    def _found(self, rel: str) -> Match:
        skipped = self.skipped.get(rel)
        return Match(rel) if skipped is None else Match(rel, skipped.reason, skipped.detail)

    def _in_skipped_folder(self, key: str) -> Match | None:
        """The skip of the folder ``key`` lies under, if the walk skipped one."""
        parts = key.split("/") if self.skipped else []
        for depth in range(1, len(parts)):
            folder = self.skipped.get("/".join(parts[:depth]))
            if folder is not None and folder.folder:
                return Match(None, folder.reason, f"{folder.rel}: {folder.detail}")
        return None
