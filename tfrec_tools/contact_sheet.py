"""A contact sheet: encoded images in a grid with a caption under each, saved as PNG."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont, ImageOps

from tfrec_tools import fs

CAPTION_LINES = 2
LINE_HEIGHT = 12
BACKGROUND = (255, 255, 255)
MISSING = (200, 200, 200)  # tile colour of an image that cannot be decoded


def contact_sheet(
    tiles: Sequence[tuple[bytes, str]], path: str, *, tile: int = 128, columns: int | None = None
) -> tuple[int, int]:
    """Draw each (encoded image, caption) as a ``tile`` px square with its caption below, in
    ``columns`` columns (default: near square); write a PNG to ``path``; return its (w, h)."""
    columns = columns or max(1, math.ceil(math.sqrt(len(tiles))))
    rows = max(1, math.ceil(len(tiles) / columns))
    cell_h = tile + CAPTION_LINES * LINE_HEIGHT + 4
    sheet = Image.new("RGB", (columns * tile, rows * cell_h), BACKGROUND)
    draw, font = ImageDraw.Draw(sheet), ImageFont.load_default()
    for i, (data, caption) in enumerate(tiles):
        x, y = (i % columns) * tile, (i // columns) * cell_h
        sheet.paste(_thumbnail(data, tile), (x, y))
        for line_no, line in enumerate(caption.splitlines()[:CAPTION_LINES]):
            draw.text((x + 2, y + tile + 2 + line_no * LINE_HEIGHT), line[:24], fill=0, font=font)
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    fs.write_bytes_atomic(path, buffer.getvalue())
    return sheet.size


def _thumbnail(data: bytes, tile: int) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data)).convert("RGB")
    except Exception:  # noqa: BLE001 - an undecodable image shows as a grey tile
        return Image.new("RGB", (tile, tile), MISSING)
    image = ImageOps.contain(image, (tile, tile))
    framed = Image.new("RGB", (tile, tile), BACKGROUND)
    framed.paste(image, ((tile - image.width) // 2, (tile - image.height) // 2))
    return framed
