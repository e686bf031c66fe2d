"""Matching CSV ids to image files: by relative path, with or without extension, or by a stem
that is unique under the image folder."""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

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


def is_image_name(rel_path: str) -> bool:
    """Files a build without a CSV takes (the content still decides the format): image
    extensions, nothing hidden, nor in a hidden folder (``.ipynb_checkpoints/``)."""
    if rel_path.startswith(".") or "/." in rel_path:
        return False
    return _split_extension(rel_path)[1].lower() in IMAGE_EXTENSIONS


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
    """A matched file (``path``), or why there is none (``reason``, ``detail``)."""

    path: str | None
    reason: str = ""
    detail: str = ""


class ImageIndex:
    """Every file under the image folder, looked up by relative path, path without extension,
    file name, or bare stem (the last two only when unique)."""

    def __init__(self, rel_paths: Iterable[str]) -> None:
        self.files = sorted(rel_paths)
        self.images = [f for f in self.files if is_image_name(f)]
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
        if key in self._exact:
            return Match(key)
        found = self._no_ext.get(key, [])
        if len(found) == 1:
            return Match(found[0])
        for table in (self._no_ext, *self._by_name):
            found = table.get(key, [])
            if len(found) == 1:
                return Match(found[0])
            if found:
                shown = ", ".join(found[:3]) + (" ..." if len(found) > 3 else "")
                return Match(
                    None,
                    "ambiguous id",
                    f"{len(found)} files match ({shown}); use the relative path with extension",
                )
        return Match(None, "missing file", "no file under the image folder matches this id")
