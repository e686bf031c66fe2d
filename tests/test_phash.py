"""The perceptual hash: stable, robust to resize and re-encode, apart for distinct images;
the hashes sidecar round trip and its one-line errors."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.helpers import scene
from tfrec_tools.errors import ShardError
from tfrec_tools.phash import HashRow, bytes_hash, hash_text, hashes_csv, image_hash, read_hashes


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def distance(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


def test_hash_is_64_bits_and_the_same_every_time():
    value = image_hash(scene(0))
    assert 0 <= value < 2**64 and bin(value).count("1") == 32
    assert image_hash(scene(0)) == value
    assert hash_text(value) == f"{value:016x}" and len(hash_text(1)) == 16


def test_resized_and_reencoded_copies_stay_close_distinct_images_do_not():
    original = image_hash(scene(1, 256))
    copy = Image.open(io.BytesIO(jpeg(scene(1, 256).resize((50, 50)), quality=70)))
    assert distance(original, image_hash(copy.resize((256, 256)))) <= 2
    assert distance(original, bytes_hash(jpeg(scene(1, 256), 70))) <= 2
    others = [image_hash(scene(seed, 256)) for seed in range(2, 12)]
    assert min(distance(original, h) for h in others) > 6


def test_bytes_that_are_no_image_raise_value_error():
    with pytest.raises(ValueError, match="not a decodable image"):
        bytes_hash(b"not an image")


def test_an_image_over_the_pixel_limit_is_not_decodable_not_a_traceback():
    import io as io_module
    import zlib

    from PIL import Image

    buffer = io_module.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = (20000).to_bytes(4, "big") * 2  # IHDR width and height: 400M pixels
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # the chunk's CRC
    with pytest.raises(ValueError, match="not a decodable image"):
        bytes_hash(bytes(data))


def test_sidecar_round_trip(tmp_path):
    rows = [HashRow("a,1", "train00-2.tfrec", 2**63 + 5, "ab" * 32), HashRow("b", "s", 0, "")]
    rows += [HashRow("form\x0cfeed\x85\u2028", "s", 7, ""), HashRow("two\nlines", "s", 8, "")]
    path = tmp_path / "train.hashes.csv"
    path.write_bytes(hashes_csv(rows))
    assert read_hashes(str(path)) == rows
    assert path.read_text().splitlines()[0] == "image_id,shard,hash,sha256"


def test_sidecar_errors_name_the_file_and_line(tmp_path):
    path = tmp_path / "x.hashes.csv"
    with pytest.raises(ShardError, match=r"x\.hashes\.csv: hashes sidecar not found"):
        read_hashes(str(path))
    path.write_text("id,hash\n")
    with pytest.raises(ShardError, match=r"x\.hashes\.csv: not a hashes sidecar \(header"):
        read_hashes(str(path))
    path.write_text("image_id,shard,hash,sha256\na,s,zz,\n")
    with pytest.raises(ShardError, match=r"x\.hashes\.csv: line 2: expected image_id,shard,16 hex"):
        read_hashes(str(path))
