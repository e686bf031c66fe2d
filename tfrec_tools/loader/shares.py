"""Which records each reader of an epoch reads: the (rank, worker) slots split the shards
between them, every record exactly once. Pure functions of the counts, the slot, the seed and
the epoch, so every process computes the same split without talking to the others.

Whole files go to slots when there are at least as many files as slots (each file to the slot
holding the fewest records so far, in the epoch's file order); with fewer files, the records of
all files, end to end, are cut into one contiguous range per slot (sizes differ by at most 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tfrec_tools.errors import ConfigError


@dataclass(frozen=True)
class Slot:
    """One reader of an epoch: DataLoader worker ``worker_id`` of ``num_workers`` on rank
    ``rank`` of ``world_size`` (JAX: ``jax.process_index()`` of ``jax.process_count()``)."""

    rank: int = 0
    world_size: int = 1
    worker_id: int = 0
    num_workers: int = 1

    def __post_init__(self) -> None:
        for name, value, count in (
            ("rank", self.rank, self.world_size),
            ("worker_id", self.worker_id, self.num_workers),
        ):
            if count < 1 or not 0 <= value < count:
                total = "world_size" if name == "rank" else "num_workers"
                raise ConfigError(
                    f"`{name}` must be in [0, {total}) and `{total}` >= 1. Received: "
                    f"{name}={value}, {total}={count}"
                )

    @property
    def index(self) -> int:
        return self.rank * self.num_workers + self.worker_id

    @property
    def count(self) -> int:
        return self.world_size * self.num_workers


def file_order(num_files: int, *, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    """The order the files are dealt in this epoch: the same in every slot."""
    if not shuffle:
        return np.arange(num_files)
    return np.random.default_rng([seed, epoch]).permutation(num_files)


def share(counts: Sequence[int], slot: Slot, order: Sequence[int]) -> list[tuple[int, int, int]]:
    """The ``(file, start, stop)`` record ranges ``slot`` reads, files dealt in ``order``."""
    if len(counts) >= slot.count:
        return [(f, 0, counts[f]) for f in _deal_files(counts, slot.count, order)[slot.index]]
    ends = np.cumsum([counts[f] for f in order])
    total = int(ends[-1]) if len(ends) else 0
    low, high = total * slot.index // slot.count, total * (slot.index + 1) // slot.count
    ranges = []
    for file, end in zip(order, ends):
        start = int(end) - counts[file]
        begin, stop = max(low, start), min(high, int(end))
        if begin < stop:
            ranges.append((int(file), begin - start, stop - start))
    return ranges


def _deal_files(counts: Sequence[int], slots: int, order: Sequence[int]) -> list[list[int]]:
    dealt: list[list[int]] = [[] for _ in range(slots)]
    held = [0] * slots
    for file in order:
        lightest = held.index(min(held))
        dealt[lightest].append(int(file))
        held[lightest] += counts[file]
    return dealt


def share_records(
    counts: Sequence[int], slot: Slot, *, seed: int = 0, epoch: int = 0, shuffle: bool = False
) -> np.ndarray:
    """The ``(file, record)`` pairs (an ``[n, 2]`` int64 array) ``slot`` reads this epoch, in
    reading order: file by file, or (``shuffle``) all of them shuffled with the seed
    ``[seed, epoch, slot.index]``."""
    order = file_order(len(counts), seed=seed, epoch=epoch, shuffle=shuffle)
    pairs = [
        np.stack([np.full(stop - start, file), np.arange(start, stop)], axis=1)
        for file, start, stop in share(counts, slot, order)
    ]
    records = np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=np.int64)
    if shuffle:
        records = np.random.default_rng([seed, epoch, slot.index]).permutation(records)
    return records.astype(np.int64)
