from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tfrec_tools.builder.config import ImageConfig
from tfrec_tools.builder.images import ImageError, prepare_image, prepare_sizes

SQUARE = ImageConfig(size=(32, 32))


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    return image.convert("RGB")


def gradient(width: int = 64, height: int = 48) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.uint8)[:, None].repeat(width, 1)
    return Image.fromarray(np.stack([x, y, 255 - x], axis=-1))


@pytest.mark.parametrize(
    "mode, fmt",
    [
        ("CMYK", "JPEG"),
        ("L", "PNG"),
        ("P", "PNG"),
        ("RGBA", "PNG"),
        ("LA", "PNG"),
        ("1", "PNG"),
        ("RGB", "WEBP"),
        ("RGB", "BMP"),
        ("RGB", "TIFF"),
        ("RGB", "GIF"),
    ],
)
def test_every_mode_becomes_rgb_jpeg_at_target_size(mode, fmt):
    stored = prepare_image(encode(gradient().convert(mode), fmt), SQUARE)
    image = decode(stored.data)
    assert image.size == (32, 32) and (stored.height, stored.width) == (32, 32)


def test_alpha_is_flattened_onto_white():
    clear = Image.new("RGBA", (32, 32), (255, 0, 0, 0))
    pixels = np.asarray(decode(prepare_image(encode(clear, "PNG"), SQUARE).data))
    assert pixels.min() > 245  # transparent red shows the white background, not red


def test_sixteen_bit_png_is_stretched_to_full_range():
    ramp = np.linspace(1000, 5000, 32 * 32).reshape(32, 32).astype(np.uint16)
    data = encode(Image.fromarray(ramp), "PNG")
    pixels = np.asarray(decode(prepare_image(data, SQUARE).data))
    assert pixels.min() < 10 and pixels.max() > 245


def test_exif_orientation_is_applied():
    upright = gradient(64, 32)  # wide
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned: viewers rotate it 90 degrees clockwise
    data = encode(upright, "JPEG", exif=exif, quality=95)
    stored = prepare_image(data, ImageConfig(fit="keep"))
    assert (stored.width, stored.height) == (32, 64)


def test_png_named_jpg_is_read_by_content(tmp_path):
    stored = prepare_image(encode(gradient(), "PNG"), SQUARE)
    assert decode(stored.data).size == (32, 32)


def test_jpeg_already_at_target_is_stored_byte_for_byte():
    data = encode(gradient(32, 32), "JPEG", quality=80)
    assert prepare_image(data, SQUARE).data == data
    assert prepare_image(data, ImageConfig(fit="keep")).data == data


def test_jpeg_of_other_size_is_reencoded():
    data = encode(gradient(64, 64), "JPEG", quality=80)
    assert prepare_image(data, SQUARE).data != data


@pytest.mark.parametrize(
    "fit, size, expected",
    [("resize", (32, 48), (48, 32)), ("crop", (32, 48), (48, 32)), ("pad", (32, 48), (48, 32))],
)
def test_fit_gives_requested_height_and_width(fit, size, expected):
    stored = prepare_image(encode(gradient(200, 100), "JPEG"), ImageConfig(size=size, fit=fit))
    assert decode(stored.data).size == expected  # PIL sizes are (width, height)


def test_pad_keeps_aspect_with_black_bars():
    wide = Image.new("RGB", (200, 100), (255, 255, 255))
    stored = prepare_image(encode(wide, "PNG"), ImageConfig(size=(64, 64), fit="pad"))
    pixels = np.asarray(decode(stored.data))
    assert pixels[2, 32].max() < 10 and pixels[32, 32].min() > 245


def test_large_jpeg_is_draft_decoded_close_to_full_decode():
    big = gradient(1024, 1024)
    data = encode(big, "JPEG", quality=95)
    ours = np.asarray(decode(prepare_image(data, ImageConfig(size=(128, 128))).data), float)
    reference = np.asarray(big.resize((128, 128), Image.Resampling.LANCZOS), float)
    psnr = 10 * np.log10(255**2 / np.mean((ours - reference) ** 2))
    assert psnr > 32


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty file"),
        (b"just some text, not a picture\n", "not an image"),
        (bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)), "not an image"),
    ],
)
def test_unusable_bytes_raise_image_error(data, reason):
    with pytest.raises(ImageError) as info:
        prepare_image(data, SQUARE)
    assert info.value.reason == reason


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_image_is_unreadable(fmt):
    data = encode(gradient(256, 256), fmt)
    with pytest.raises(ImageError) as info:
        prepare_image(data[: len(data) // 2], SQUARE)
    assert info.value.reason == "unreadable image"


def test_truncated_jpeg_at_target_size_is_not_passed_through():
    data = encode(gradient(32, 32), "JPEG")
    with pytest.raises(ImageError):
        prepare_image(data[: len(data) // 2], SQUARE)


def test_decompression_bomb_is_refused_before_decoding():
    data = encode(Image.new("L", (4000, 4000)), "PNG")  # tiny file, 16 M pixels
    with pytest.raises(ImageError) as info:
        prepare_image(data, ImageConfig(size=(32, 32), max_pixels=1_000_000))
    assert info.value.reason == "image too large"


def test_max_pixels_above_pillows_default_is_honoured():
    import PIL.Image

    data = encode(Image.new("L", (10_000, 9_000)), "PNG")  # 90 M pixels > Pillow's 89.5 M
    stored = prepare_image(data, ImageConfig(size=(8, 8), max_pixels=100_000_000))
    assert (stored.height, stored.width) == (8, 8)
    assert PIL.Image.MAX_IMAGE_PIXELS == 89_478_485  # Pillow's own limit is left as it was


def test_running_out_of_memory_is_not_a_corrupt_image(monkeypatch):
    def no_memory(data, config):
        raise MemoryError

    monkeypatch.setattr("tfrec_tools.builder.images._prepare", no_memory)
    with pytest.raises(MemoryError):
        prepare_image(encode(gradient(), "PNG"), SQUARE)


def test_read_image_stops_at_the_cap_locally_and_remotely(tmp_path, monkeypatch):
    import tensorflow as tf

    from tfrec_tools.builder import images
    from tfrec_tools.builder.images import read_image

    monkeypatch.setattr(images, "METADATA_BYTES", 0)
    config = ImageConfig(size=(8, 8), max_pixels=100)  # 800 bytes at most
    local, remote = tmp_path / "big.png", f"ram://{tmp_path.name}/big.png"
    local.write_bytes(b"x" * 801)
    tf.io.gfile.makedirs(f"ram://{tmp_path.name}")
    with tf.io.gfile.GFile(remote, "wb") as handle:
        handle.write(b"x" * 801)
    for path in (str(local), remote):
        with pytest.raises(ImageError, match="file too large: .* bytes, more than an image of"):
            read_image(path, config)
    local.write_bytes(b"x" * 800)
    assert read_image(str(local), config) == b"x" * 800


def test_stored_image_carries_the_hash_of_the_stored_picture_decoded_once(monkeypatch):
    from tfrec_tools.phash import image_hash

    opened, real_open = [], Image.open
    monkeypatch.setattr(Image, "open", lambda *a, **k: opened.append(1) or real_open(*a, **k))
    picture = gradient()
    ImageDraw.Draw(picture).ellipse((10, 5, 40, 30), fill=(250, 200, 0))  # an edge to hash
    stored = prepare_image(encode(picture, "PNG"), SQUARE)
    assert len(opened) == 1  # the hash reuses the decoded image
    monkeypatch.setattr(Image, "open", real_open)
    assert bin(stored.phash ^ image_hash(decode(stored.data))).count("1") <= 2
    as_is = encode(gradient(32, 32), "JPEG")
    assert prepare_image(as_is, SQUARE).phash == image_hash(decode(as_is))


def psnr_to(stored, reference: Image.Image) -> float:
    ours = np.asarray(decode(stored.data), float)
    return 10 * np.log10(255**2 / np.mean((ours - np.asarray(reference, float)) ** 2))


def test_several_sizes_from_one_decode_are_each_at_their_size():
    data = encode(gradient(200, 100), "JPEG")
    configs = (ImageConfig(size=(32, 32)), ImageConfig(size=(48, 24), fit="crop"))
    small, wide = prepare_sizes(data, configs)
    assert (small.height, small.width, wide.height, wide.width) == (32, 32, 48, 24)
    assert prepare_sizes(data, configs[:1]) == (prepare_image(data, configs[0]),)


def test_a_pass_drafts_at_its_largest_size_and_is_not_worse_at_its_smallest():
    picture = gradient(1024, 1024)
    ImageDraw.Draw(picture).ellipse((100, 200, 700, 900), outline=(250, 200, 0), width=9)
    data = encode(picture, "JPEG", quality=95)
    small, large = ImageConfig(size=(64, 64)), ImageConfig(size=(256, 256))
    reference = picture.resize((64, 64), Image.Resampling.LANCZOS)
    alone = prepare_image(data, small)
    in_pass = prepare_sizes(data, (small, large))
    assert in_pass[1] == prepare_image(data, large)  # the largest size: single-size bytes
    assert in_pass[0].data != alone.data  # drafted at 1/4, not 1/8: other bytes
    assert psnr_to(in_pass[0], reference) > psnr_to(alone, reference) - 0.5  # JPEG noise


def test_a_jpeg_already_at_one_size_of_a_pass_is_stored_as_is_at_that_size():
    data = encode(gradient(32, 32), "JPEG")
    as_is, smaller = prepare_sizes(data, (SQUARE, ImageConfig(size=(16, 16))))
    assert as_is == prepare_image(data, SQUARE) and as_is.data == data
    assert (smaller.height, smaller.width) == (16, 16)
