"""One record of some shards and augmented versions of it, as the `tfrec augment-preview` grid."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tfrec_tools.contact_sheet import draw_grid, enlarged
from tfrec_tools.errors import ConfigError, DataError, ShardError
from tfrec_tools.quiet import import_tensorflow
from tfrec_tools.read.augment import AugmentConfig
from tfrec_tools.read.augment_ops import augment_image
from tfrec_tools.records import parse_example

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image


def read_image(files: Sequence[str], index: int, *, image_key: str = "image") -> np.ndarray:
    """The decoded image (uint8 ``[H, W, 3]``) of record number ``index`` counted across
    ``files`` in the given order.

    Raises:
        ConfigError: ``index`` is negative.
        DataError: there are not that many records, or the bytes are not an image.
        ShardError: a file cannot be read, or its record has no bytes under ``image_key``.
    """
    if index < 0:
        raise ConfigError(f"`index` must be >= 0. Received: index={index}")
    remaining = index
    for path in files:
        raw, count = _record_at(path, remaining)
        if raw is not None:
            return _decode_record(raw, path, remaining, image_key)
        remaining -= count
    raise DataError(
        f"`index` must be < {index - remaining}, the number of records in the "
        f"{len(files)} shard file(s). Received: index={index}"
    )


def preview_grid(
    image: np.ndarray, config: AugmentConfig, *, n: int = 8, seed: int = 0
) -> Image.Image:
    """A PIL image: ``image`` then ``n`` augmentations of it (seeds ``[seed, 1]`` ..
    ``[seed, n]``), row by row in a near-square grid, each captioned with its seed."""
    tf = import_tensorflow()
    tensor = tf.convert_to_tensor(image, tf.uint8)
    tiles = [(enlarged(image), "original")]
    for i in range(1, n + 1):
        augmented = augment_image(tensor, config, tf.constant([seed, i], tf.int64))
        tiles.append((enlarged(augmented.numpy()), f"seed [{seed}, {i}]"))
    return draw_grid(tiles)


def _record_at(path: str, position: int) -> tuple[bytes | None, int]:
    """The record at ``position`` in ``path``, or (None, number of records in the file)."""
    tf = import_tensorflow()
    try:
        found = list(tf.data.TFRecordDataset(path).skip(position).take(1).as_numpy_iterator())
        if found:
            return found[0], 0
        count = tf.data.TFRecordDataset(path).reduce(tf.constant(0, tf.int64), lambda n, _: n + 1)
        return None, int(count)
    except tf.errors.OpError as err:
        raise ShardError(f"{path}: cannot read records ({err.message})") from err


def _decode_record(raw: bytes, path: str, position: int, image_key: str) -> np.ndarray:
    tf = import_tensorflow()
    from google.protobuf.message import DecodeError

    try:
        feature = parse_example(raw).features.feature
    except DecodeError as err:
        raise ShardError(f"{path}: record {position} is not a tf.train.Example") from err
    if image_key not in feature or not feature[image_key].bytes_list.value:
        raise ShardError(
            f"{path}: record {position} has no image bytes under {image_key!r}. "
            f"Its keys: {', '.join(sorted(feature))}"
        )
    data = feature[image_key].bytes_list.value[0]
    try:
        return tf.io.decode_image(data, channels=3, expand_animations=False).numpy()
    except tf.errors.InvalidArgumentError as err:
        raise DataError(
            f"{path}: record {position}: {image_key!r} is not a decodable image ({err.message})"
        ) from err
