"""One image in, stored JPEG bytes out: read, open, orient, convert to RGB, fit, encode.

Rules (also in docs/user-guide.md):
- Only regular files are read (a FIFO or a device named ``.jpg`` is rejected unread), and only
  up to ``max_file_bytes``: 8 bytes per ``--max-pixels`` pixel plus 16 MB of metadata.
- The content decides the format, never the file extension.
- EXIF orientation is applied, so every stored image is upright.
- Alpha (RGBA, LA, palette with transparency) is flattened onto white; 16/32-bit and float
  images are stretched from their own min..max to 0..255; every other mode converts to RGB.
- A JPEG that is already RGB, upright and of the target size is stored byte for byte.
- Large JPEGs are decoded at a reduced scale in the DCT domain (draft mode) before resizing;
  several sizes in one pass are all made from one decode, at the scale the largest needs.
- The perceptual hash (``phash``) is taken from the stored picture as decoded here: no
  image is decoded twice.
"""

from __future__ import annotations

import io
import math
import os
import stat
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from tfrec_tools import fs
from tfrec_tools.builder.config import ImageConfig
from tfrec_tools.phash import image_hash

ALPHA_BACKGROUND = (255, 255, 255)
PAD_COLOR = (0, 0, 0)
EXIF_ORIENTATION = 0x0112
_SWAPS_AXES = (5, 6, 7, 8)  # EXIF orientations that turn the image by 90 degrees
_HIGH_DEPTH = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
MAX_BYTES_PER_PIXEL = 8  # 16-bit RGBA: the most any common (uncompressed) format stores
METADATA_BYTES = 16 << 20  # room for EXIF, ICC profiles and thumbnails beside the pixels
_NOT_FILES = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a folder",
    stat.S_IFSOCK: "a socket",
}


class ImageError(Exception):
    """This image cannot be stored; ``reason`` is the short category for the rejected list."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class StoredImage:
    data: bytes
    height: int
    width: int
    phash: int  # tfrec_tools.phash.image_hash of the stored picture


def max_file_bytes(config: ImageConfig) -> int:
    """The largest image file read: more than any common format needs for ``max_pixels``."""
    return config.max_pixels * MAX_BYTES_PER_PIXEL + METADATA_BYTES


def read_image(path: str, config: ImageConfig) -> bytes:
    """The bytes of the image file ``path``, never more than ``max_file_bytes``.

    Raises:
        ImageError: not a regular file, or too large (neither is read).
        OSError: the file cannot be opened or read.
    """
    limit = max_file_bytes(config)
    if fs.is_remote(path):  # objects are regular files; their size costs a request: read
        data = fs.read_bytes(path, limit=limit + 1)
        if len(data) > limit:
            raise _too_large(f"more than {limit}", config)
        return data
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO opens at once, unread
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ImageError("not a regular file", _NOT_FILES.get(stat.S_IFMT(info.st_mode), ""))
        if info.st_size > limit:
            raise _too_large(str(info.st_size), config)
        with open(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:  # it grew since the fstat
        raise _too_large(f"more than {limit}", config)
    return data


def _too_large(size: str, config: ImageConfig) -> ImageError:
    return ImageError(
        "file too large",
        f"{size} bytes, more than an image of max_pixels={config.max_pixels} needs "
        f"({MAX_BYTES_PER_PIXEL} bytes a pixel + {METADATA_BYTES >> 20} MB); not read",
    )


def prepare_image(data: bytes, config: ImageConfig) -> StoredImage:
    """Turn the bytes of any image file into the JPEG bytes a record stores.

    Raises:
        ImageError: empty, not an image, too large, truncated or undecodable. Any error Pillow
            raises on malformed data becomes an ImageError: one bad file never stops a build.
        MemoryError: as raised (the machine's limit, not the file's fault).
    """
    return prepare_sizes(data, (config,))[0]


def prepare_sizes(data: bytes, configs: Sequence[ImageConfig]) -> tuple[StoredImage, ...]:
    """``prepare_image`` at each of ``configs`` (alike but for their size), decoding the image
    once: a JPEG is drafted at the scale its largest fit needs, so a smaller size is resized
    from more pixels than ``prepare_image`` alone would draft (other bytes, no less quality).
    The image fails at every size when it fails at one.

    Raises:
        ImageError, MemoryError: as ``prepare_image``.
    """
    if not data:
        raise ImageError("empty file", "the file has 0 bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _prepare(data, configs)
    except (ImageError, MemoryError):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError("image too large", str(err)) from err
    except Exception as err:  # noqa: BLE001 - malformed files raise many kinds of error
        raise ImageError("unreadable image", f"truncated or corrupt ({err})") from err


def _prepare(data: bytes, configs: Sequence[ImageConfig]) -> tuple[StoredImage, ...]:
    image = _open(data, configs[0])
    orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    as_is = [_can_store_as_is(image, orientation, config) for config in configs]
    if all(as_is):
        image.load()
        return (StoredImage(data, image.height, image.width, image_hash(image)),) * len(configs)
    if image.format == "JPEG" and configs[0].size is not None:
        drafts = [_draft_size(image.size, orientation, config) for config in configs]
        image.draft(None, (max(w for w, _ in drafts), max(h for _, h in drafts)))
    image.load()
    upright = _to_rgb(ImageOps.exif_transpose(image))
    return tuple(
        StoredImage(data, upright.height, upright.width, image_hash(upright))
        if keep
        else _encode(_fit(upright, config), config)
        for config, keep in zip(configs, as_is)
    )


def _encode(image: Image.Image, config: ImageConfig) -> StoredImage:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=config.quality)
    return StoredImage(buffer.getvalue(), image.height, image.width, image_hash(image))


def _open(data: bytes, config: ImageConfig) -> Image.Image:
    # Pillow refuses images over 2x its own MAX_IMAGE_PIXELS while opening: lift it to ours so
    # --max-pixels decides both ways (the header is read, no pixel is decoded yet).
    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, config.max_pixels
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as err:
        raise ImageError("not an image", "the content is no image format Pillow can read") from err
    finally:
        Image.MAX_IMAGE_PIXELS = saved
    pixels = image.width * image.height
    if pixels > config.max_pixels:
        raise ImageError(
            "image too large",
            f"{image.width}x{image.height} = {pixels} pixels > max_pixels={config.max_pixels}",
        )
    return image


def _can_store_as_is(image: Image.Image, orientation: int, config: ImageConfig) -> bool:
    if image.format != "JPEG" or image.mode != "RGB" or orientation != 1:
        return False
    return config.fit == "keep" or image.size == _target_wh(config)


def _target_wh(config: ImageConfig) -> tuple[int, int]:
    assert config.size is not None
    return config.size[1], config.size[0]


def _draft_size(size: tuple[int, int], orientation: int, config: ImageConfig) -> tuple[int, int]:
    """The smallest decode size (in the file's own orientation) that loses nothing the fit
    needs: draft() then picks the largest DCT scale-down that stays at or above it."""
    width, height = size
    target_w, target_h = _target_wh(config)
    if orientation in _SWAPS_AXES:
        target_w, target_h = target_h, target_w
    if config.fit == "resize":
        return target_w, target_h
    pick = max if config.fit == "crop" else min
    scale = pick(target_w / width, target_h / height)
    return math.ceil(width * scale), math.ceil(height * scale)


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in _HIGH_DEPTH:
        return _stretch_to_8bit(image).convert("RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, ALPHA_BACKGROUND + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _stretch_to_8bit(image: Image.Image) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float64)
    low, high = float(pixels.min()), float(pixels.max())
    scaled = (pixels - low) * (255.0 / (high - low)) if high > low else np.zeros_like(pixels)
    return Image.fromarray(np.round(scaled).astype(np.uint8))


def _fit(image: Image.Image, config: ImageConfig) -> Image.Image:
    if config.fit == "keep":
        return image
    target = _target_wh(config)
    if config.fit == "crop":
        return ImageOps.fit(image, target, Image.Resampling.LANCZOS)
    if config.fit == "pad":
        return ImageOps.pad(image, target, Image.Resampling.LANCZOS, color=PAD_COLOR)
    return image if image.size == target else image.resize(target, Image.Resampling.LANCZOS)
