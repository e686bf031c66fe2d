"""PyTorch wrappers of the loader's datasets: samples as tensors (the image ``[3, H, W]``
uint8, labels and features as tensors, ids as they are), and the stream's slot taken from the
DataLoader worker and the ``torch.distributed`` rank.

    train = TorchDataset(RecordDataset("shards/", folds=[0, 1, 2]))
    loader = DataLoader(train, batch_size=64, sampler=DistributedSampler(train), num_workers=2)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from tfrec_tools.errors import ConfigError
from tfrec_tools.loader.dataset import RecordDataset, RecordStream
from tfrec_tools.loader.shares import Slot


def to_tensors(sample: dict[str, Any]) -> dict[str, Any]:
    """numpy values -> tensors; an ``[H, W, C]`` image -> ``[C, H, W]`` (PyTorch's layout).
    Other values (ids, what a transform already made a tensor) stay as they are."""
    out = {}
    for name, value in sample.items():
        if isinstance(value, (np.ndarray, np.generic)):
            value = torch.from_numpy(np.asarray(value))
            if name == "image" and value.ndim == 3:
                value = value.permute(2, 0, 1)
        out[name] = value
    return out


class TorchDataset(Dataset):
    """A map-style ``RecordDataset`` for PyTorch: ``len()``, ``ds[i]``, any sampler
    (``DistributedSampler`` gives each rank its share)."""

    def __init__(self, records: RecordDataset) -> None:
        self.records = records

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return to_tensors(self.records[index])


class TorchStream(IterableDataset):
    """A ``RecordStream`` for PyTorch: each DataLoader worker of each rank reads its own share,
    every record once per epoch. The rank and world size come from ``torch.distributed`` when
    it is initialised, else from ``rank``/``world_size`` (default: one process). Call
    ``set_epoch`` before each epoch (workers are made anew each epoch unless
    ``persistent_workers=True``, which would keep the first epoch's order)."""

    def __init__(
        self, stream: RecordStream, *, rank: int | None = None, world_size: int | None = None
    ) -> None:
        if (rank is None) != (world_size is None):
            raise ConfigError(
                "`rank` and `world_size` go together. Received: "
                f"rank={rank}, world_size={world_size}"
            )
        self.stream, self.rank, self.world_size = stream, rank, world_size

    def set_epoch(self, epoch: int) -> None:
        self.stream.set_epoch(epoch)

    def slot(self) -> Slot:
        """The slot of the calling process: its rank and DataLoader worker."""
        rank, world_size = self.rank, self.world_size
        if rank is None and torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world_size = torch.distributed.get_rank(), torch.distributed.get_world_size()
        worker = get_worker_info()
        return Slot(
            rank=rank or 0,
            world_size=world_size or 1,
            worker_id=worker.id if worker else 0,
            num_workers=worker.num_workers if worker else 1,
        )

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (to_tensors(sample) for sample in self.stream.iter_share(self.slot()))
