"""Perceptual hashes of stored images and the ``{name}.hashes.csv`` sidecar that holds them.

The hash is a 64-bit DCT hash: the image in grayscale, box-averaged to 32x32, the 8x8
lowest frequencies of its DCT, one bit per coefficient (above the median of the 64 or not).
The DCT uses integer coefficients (scaled by 4096): every product and partial sum is an integer
below 2**53, exact in float64 in any summation order, so the hash is the same on every machine.
Resizing and JPEG re-encoding move it by 0-2 bits; distinct images of sample_data differ by 6
or more (docs/user-guide.md, "Near-duplicate images").
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import lru_cache

from tfrec_tools import fs
from tfrec_tools.errors import ShardError

HASH_COLUMNS = ("image_id", "shard", "hash", "sha256")
_SIDE = 32  # pixels a side before the DCT
_KEEP = 8  # lowest frequencies kept a side: 8x8 = 64 bits
_SCALE = 4096  # fixed-point scale of the DCT matrix (|coefficient| <= 1024, |sum| < 2**39)


@dataclass(frozen=True)
class HashRow:
    """One stored image: its id, shard (base name), perceptual hash and sha256 of its bytes."""

    image_id: str
    shard: str
    phash: int
    sha256: str


@lru_cache(maxsize=1)
def _dct_matrix():
    import numpy as np

    k = np.arange(_SIDE)
    matrix = np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * _SIDE))
    matrix[0] /= np.sqrt(2)
    # only the rows of the kept frequencies: 8x32 @ 32x32 @ 32x8 (float64 matmul: BLAS-fast)
    return np.round(matrix[:_KEEP] * np.sqrt(2 / _SIDE) * _SCALE)


def image_hash(image) -> int:
    """The 64-bit perceptual hash of a decoded PIL image (any mode, any size)."""
    import numpy as np
    from PIL import Image

    gray = image.convert("L").resize((_SIDE, _SIDE), Image.Resampling.BOX)
    pixels = np.asarray(gray, dtype=np.float64)
    matrix = _dct_matrix()
    low = (matrix @ pixels @ matrix.T).ravel()
    bits = low > np.sort(low)[low.size // 2 - 1]  # the lower median: 32 bits set, ties aside
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def bytes_hash(data: bytes) -> int:
    """The hash of an encoded image (for records written without a sidecar).

    Raises:
        ValueError: the bytes are not an image Pillow can decode.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("L", (2 * _SIDE, 2 * _SIDE))  # a JPEG decodes at 1/8 scale: fast
            return image_hash(image)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
        raise ValueError(f"not a decodable image ({err})") from err


def hash_text(value: int) -> str:
    """16 hex digits."""
    return f"{value:016x}"


def hashes_csv(rows: list[HashRow]) -> bytes:
    """The sidecar's bytes: a header, then one line per image in the order given."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HASH_COLUMNS)
    writer.writerows((r.image_id, r.shard, hash_text(r.phash), r.sha256) for r in rows)
    return buffer.getvalue().encode("utf-8")


def read_hashes(path: str) -> list[HashRow]:
    """The rows of a hashes sidecar.

    Raises:
        ShardError: missing, or not a hashes sidecar (the line that is wrong is named).
    """
    if not fs.exists(path):
        raise ShardError(f"{path}: hashes sidecar not found")
    text = fs.read_bytes(path).decode("utf-8", "replace")
    reader = csv.reader(io.StringIO(text, newline=""))  # ids may hold \x0c, \x85, ...
    header = next(reader, None)
    if tuple(header or ()) != HASH_COLUMNS:
        raise ShardError(
            f"{path}: not a hashes sidecar (header {header}, expected {list(HASH_COLUMNS)}); "
            "rebuild the set, or delete the file to have `tfrec inspect` hash the records"
        )
    rows = []
    for cells in reader:
        number = reader.line_num
        try:
            image_id, shard, value, sha256 = cells
            rows.append(HashRow(image_id, shard, int(value, 16), sha256))
        except ValueError:
            raise ShardError(
                f"{path}: line {number}: expected image_id,shard,16 hex digits,sha256; "
                f"received {','.join(cells)!r}; rebuild the set"
            ) from None
    return rows
