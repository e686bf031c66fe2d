"""tfrec_tools.contact_sheet: one grid layout for `tfrec inspect --grid` and augment-preview."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from tfrec_tools.contact_sheet import (
    GAP,
    LINE_HEIGHT,
    MISSING,
    contact_sheet,
    draw_grid,
    enlarged,
)


def png(colour: tuple[int, int, int], size: tuple[int, int] = (30, 20)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_draw_grid_places_tiles_row_by_row_with_caption_bands():
    tiles = [(Image.new("RGB", (10, 6), (i * 50, 0, 0)), f"tile {i}") for i in range(5)]
    grid = np.asarray(draw_grid(tiles, caption_lines=2))
    cell_w, cell_h = 10 + GAP, 6 + 2 * LINE_HEIGHT + GAP
    assert grid.shape == (2 * cell_h + GAP, 3 * cell_w + GAP, 3)  # 5 tiles: 3 columns, 2 rows
    for i in range(5):
        x, y = GAP + (i % 3) * cell_w, GAP + (i // 3) * cell_h
        assert tuple(grid[y + 3, x + 5]) == (i * 50, 0, 0)
    assert (grid[GAP + 6 + 1 : GAP + 6 + LINE_HEIGHT, GAP : GAP + 10] < 128).any()  # a caption


def test_contact_sheet_fits_images_into_squares_and_greys_undecodable_ones(tmp_path):
    path = tmp_path / "new" / "sheet.png"
    size = contact_sheet([(png((255, 0, 0)), "a\nb"), (b"not an image", "c")], str(path), tile=32)
    sheet = np.asarray(Image.open(path).convert("RGB"))
    assert size == (2 * (32 + GAP) + GAP, 32 + 2 * LINE_HEIGHT + 2 * GAP)
    assert sheet.shape == (size[1], size[0], 3)
    assert tuple(sheet[GAP + 16, GAP + 16]) == (255, 0, 0)  # 30 x 20 contained in 32 x 32
    assert tuple(sheet[GAP + 16, 2 * GAP + 32 + 16]) == MISSING
    assert contact_sheet([], str(tmp_path / "empty.png"), tile=32)[0] == 32 + 2 * GAP


def test_enlarged_scales_by_a_whole_factor_to_the_minimum_side():
    pixels = np.zeros((24, 40, 3), np.uint8)
    assert enlarged(pixels).size == (160, 96)  # x4: the shorter side reaches 96
    assert enlarged(np.zeros((120, 100, 3), np.uint8)).size == (100, 120)  # already large
