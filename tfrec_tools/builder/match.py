"""Matching CSV ids to image files: by relative path, with or without extension, or by a stem
that is unique under the image folder."""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

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
    """Files an unlabeled build takes (the content still decides the format)."""
    name = posixpath.basename(rel_path)
    return not name.startswith(".") and posixpath.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def strip_extension(rel_path: str) -> str:
    return posixpath.splitext(rel_path)[0]


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
        self._exact = set(self.files)
        self._no_ext: dict[str, list[str]] = defaultdict(list)
        self._name: dict[str, list[str]] = defaultdict(list)
        self._stem: dict[str, list[str]] = defaultdict(list)
        for rel in self.files:
            self._no_ext[strip_extension(rel)].append(rel)
            self._name[posixpath.basename(rel)].append(rel)
            self._stem[posixpath.basename(strip_extension(rel))].append(rel)

    def match(self, image_id: str) -> Match:
        key = normalise_id(image_id)
        if key in self._exact:
            return Match(key)
        for table in (self._no_ext, self._name, self._stem):
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
