"""Captioned image grids saved as PNG, for `tfrec inspect --grid` and `tfrec augment-preview`."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageFont, ImageOps

from tfrec_tools import fs

if TYPE_CHECKING:
    import numpy as np

GAP = 4  # px between tiles and around the grid
LINE_HEIGHT = 14  # px of caption band per caption line
CAPTION_CHARS = 24  # a longer caption line is cut: about the width of a 128 px tile
MIN_SIDE = 96  # small images are upscaled (nearest) so pixels and captions stay legible
BACKGROUND = (255, 255, 255)
MISSING = (200, 200, 200)  # tile colour of an image that cannot be decoded


def draw_grid(
    tiles: Sequence[tuple[Image.Image, str]], *, columns: int | None = None, caption_lines: int = 1
) -> Image.Image:
    """Draw (image, caption) tiles row by row in ``columns`` columns (default: near square),
    ``GAP`` px apart, with up to ``caption_lines`` lines of each caption below its image.

    Every image must have the size of the first; an empty ``tiles`` draws an empty grid."""
    tile_w, tile_h = tiles[0][0].size if tiles else (0, 0)
    columns = columns or max(1, math.ceil(math.sqrt(len(tiles))))
    rows = max(1, math.ceil(len(tiles) / columns))
    cell_w, cell_h = tile_w + GAP, tile_h + caption_lines * LINE_HEIGHT + GAP
    grid = Image.new("RGB", (columns * cell_w + GAP, rows * cell_h + GAP), BACKGROUND)
    draw, font = ImageDraw.Draw(grid), ImageFont.load_default()
    for i, (image, caption) in enumerate(tiles):
        x, y = GAP + (i % columns) * cell_w, GAP + (i // columns) * cell_h
        grid.paste(image, (x, y))
        for line_no, line in enumerate(caption.splitlines()[:caption_lines]):
            top = y + tile_h + 1 + line_no * LINE_HEIGHT
            draw.text((x, top), line[:CAPTION_CHARS], fill="black", font=font)
    return grid


def contact_sheet(
    tiles: Sequence[tuple[bytes, str]], path: str, *, tile: int = 128, columns: int | None = None
) -> tuple[int, int]:
    """Draw each (encoded image, caption) fitted into a ``tile`` px square with two caption
    lines below, in ``columns`` columns (default: near square); write a PNG to ``path``;
    return its (w, h)."""
    sheet = draw_grid(
        [(_thumbnail(data, tile), caption) for data, caption in tiles] or [(_blank(tile), "")],
        columns=columns,
        caption_lines=2,
    )
    save_png(sheet, path)
    return sheet.size


def enlarged(pixels: np.ndarray, min_side: int = MIN_SIDE) -> Image.Image:
    """uint8 ``[H, W, 3]`` pixels as an image scaled up by the smallest whole factor (nearest)
    that makes its shorter side at least ``min_side`` px (1: as it is)."""
    height, width = pixels.shape[:2]
    scale = max(1, math.ceil(min_side / min(height, width)))
    return Image.fromarray(pixels).resize((width * scale, height * scale), Image.NEAREST)


def save_png(image: Image.Image, path: str) -> None:
    """Write a PIL image as PNG to ``path`` (local or gs://), creating its folder."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    fs.write_bytes_atomic(path, buffer.getvalue())


def _thumbnail(data: bytes, tile: int) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data)).convert("RGB")
    except Exception:  # noqa: BLE001 - an undecodable image shows as a grey tile
        return Image.new("RGB", (tile, tile), MISSING)
    image = ImageOps.contain(image, (tile, tile))
    framed = _blank(tile)
    framed.paste(image, ((tile - image.width) // 2, (tile - image.height) // 2))
    return framed


def _blank(tile: int) -> Image.Image:
    return Image.new("RGB", (tile, tile), BACKGROUND)
