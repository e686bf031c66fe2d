"""The TensorFlow-free datasets: ``RecordDataset`` (map-style: ``len``, ``ds[i]``, any sampler)
and ``RecordStream`` (iterable: each (rank, worker) slot reads its share of the shards). Both
give samples of numpy values; ``tfrec_tools.loader.torch`` wraps them for PyTorch."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from PIL import Image

from tfrec_tools.errors import ConfigError, ShardError
from tfrec_tools.loader.example import Features, decode_example
from tfrec_tools.loader.offsets import RecordReader
from tfrec_tools.loader.shares import Slot, share_records
from tfrec_tools.loader.source import Keys, Shards, open_shards

Source = str | os.PathLike | Sequence[str | os.PathLike]
_NUMPY = {"int64": np.int64, "float": np.float32}


class RecordDataset:
    """Every record of the shards, by global index (shards in manifest order, records in file
    order). A sample is a dict: ``image`` (uint8 ``[H, W, 3]``, or what ``transform`` makes of
    it), ``id`` (str, or int for int64 ids), then one numpy value per label and feature column,
    under its name (int64 class index, float32 value, int64 multi-hot vector).

    Args:
        source: a ``*.manifest.json``, a folder holding one, or shard files / globs (local).
        folds: read only the shards of these folds (e.g. ``[0, 1, 2]``); None: all.
        keys: the record keys; None: from the manifest, else guessed.
        labeled: False reads images and ids only (an unlabeled set).
        transform: called on each decoded image (a numpy array).

    Raises:
        ConfigError, ShardError: see ``source.open_shards``.
    """

    def __init__(
        self,
        source: Source,
        *,
        folds: Sequence[int] | None = None,
        keys: Keys | None = None,
        labeled: bool = True,
        transform: Callable[[np.ndarray], Any] | None = None,
    ) -> None:
        self.shards: Shards = open_shards(source, folds=folds, keys=keys, labeled=labeled)
        self.transform = transform
        self._starts = np.cumsum([0, *self.shards.counts])
        self._reader = RecordReader()

    @property
    def keys(self) -> Keys:
        return self.shards.keys

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"record {index} of a dataset of {len(self)} records")
        index %= len(self)
        file = int(np.searchsorted(self._starts, index, side="right")) - 1
        return self.read(file, int(index - self._starts[file]))

    def read(self, file: int, record: int) -> dict[str, Any]:
        """Record ``record`` of ``shards.files[file]`` as a sample."""
        path = self.shards.files[file]
        where = f"{path}: record {record}"
        offset, length = self.shards.offsets[file][record], self.shards.lengths[file][record]
        payload = self._reader.read(path, int(offset), int(length), where)
        sample = to_sample(decode_example(payload, where), self.keys, self.shards.shapes, where)
        if self.transform is not None:
            sample["image"] = self.transform(sample["image"])
        return sample


class RecordStream:
    """The records of the shards as a stream: each (rank, worker) ``Slot`` reads its own share
    (``shares.share_records``), every record exactly once per epoch across the slots.

    Args (besides those of ``RecordDataset``):
        shuffle: deal the files in a new order each epoch and shuffle each share's records.
        seed: the shuffle's seed (with the epoch: ``set_epoch``), the same on every rank.
    """

    def __init__(
        self,
        source: Source,
        *,
        folds: Sequence[int] | None = None,
        keys: Keys | None = None,
        labeled: bool = True,
        transform: Callable[[np.ndarray], Any] | None = None,
        shuffle: bool = False,
        seed: int = 0,
    ) -> None:
        if seed < 0:
            raise ConfigError(f"`seed` must be >= 0. Received: seed={seed}")
        self.records = RecordDataset(
            source, folds=folds, keys=keys, labeled=labeled, transform=transform
        )
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` (call it before each epoch, on every rank)."""
        if epoch < 0:
            raise ConfigError(f"`epoch` must be >= 0. Received: epoch={epoch}")
        self.epoch = epoch

    def share(self, slot: Slot) -> np.ndarray:
        """The ``(file, record)`` pairs ``slot`` reads this epoch, in order."""
        counts = self.records.shards.counts
        return share_records(counts, slot, seed=self.seed, epoch=self.epoch, shuffle=self.shuffle)

    def iter_share(self, slot: Slot | None = None) -> Iterator[dict[str, Any]]:
        """The samples of ``slot``'s share (default: the one slot of a single process)."""
        for file, record in self.share(slot or Slot()):
            yield self.records.read(int(file), int(record))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self.iter_share()


def to_sample(
    features: Features, keys: Keys, shapes: dict[str, tuple[int, ...]], where: str
) -> dict[str, Any]:
    """A decoded record as a sample (see ``RecordDataset``); ``shapes`` (from the manifest)
    gives each column's shape, else a single value is a scalar.

    Raises:
        ShardError: a key is missing or holds the wrong kind or number of values, or the image
            cannot be decoded.
    """
    image = _values(features, keys.image, ("bytes",), where)[0]
    ids = _values(features, keys.id, ("bytes", "int64"), where)
    sample = {"image": decode_image(image, where)}
    sample["id"] = ids[0].decode("utf-8", "replace") if isinstance(ids[0], bytes) else ids[0]
    for name in (*keys.labels, *keys.features):
        values = _values(features, name, tuple(_NUMPY), where)
        array = np.asarray(values, dtype=_NUMPY[features[name][0]])
        shape = shapes.get(name, () if len(array) == 1 else array.shape)
        if array.size != int(np.prod(shape)):
            raise ShardError(f"{where}: {name!r} holds {array.size} values, expected {shape}")
        sample[name] = array.reshape(shape)
    return sample


def _values(features: Features, name: str, kinds: tuple[str, ...], where: str) -> list:
    kind, values = features.get(name, (None, []))
    if kind not in kinds or not values:
        held = "no value" if name in features else "nothing (the key is missing)"
        listed = f"{kind} values" if kind and values else held
        raise ShardError(f"{where}: {name!r} holds {listed}, expected {' or '.join(kinds)}")
    return values


def decode_image(data: bytes, where: str) -> np.ndarray:
    """Encoded image bytes -> a uint8 ``[H, W, 3]`` array (Pillow).

    Raises:
        ShardError: the bytes are not an image Pillow can decode.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.array(image.convert("RGB"))  # a copy the caller may write to
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise ShardError(f"{where}: the image cannot be decoded ({err})") from err
