"""Which records each (rank, worker) slot reads: pure functions, no torch needed."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from tfrec_tools.errors import ConfigError
from tfrec_tools.loader.shares import Slot, file_order, share, share_records


def slots(world_size: int, num_workers: int) -> list[Slot]:
    return [
        Slot(rank=r, world_size=world_size, worker_id=w, num_workers=num_workers)
        for r in range(world_size)
        for w in range(num_workers)
    ]


def read_by_all(counts, world_size, num_workers, **options) -> Counter:
    return Counter(
        (int(f), int(r))
        for slot in slots(world_size, num_workers)
        for f, r in share_records(counts, slot, **options)
    )


@pytest.mark.parametrize(
    "counts", [[12, 12, 12, 12], [5, 0, 9], [1], [100, 3, 7, 7, 7, 50, 2], [0, 0], []]
)
@pytest.mark.parametrize(("world_size", "num_workers"), [(1, 1), (2, 2), (1, 3), (4, 2)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_every_record_exactly_once_across_the_slots(counts, world_size, num_workers, shuffle):
    read = read_by_all(counts, world_size, num_workers, seed=7, epoch=3, shuffle=shuffle)
    expected = {(f, r) for f, count in enumerate(counts) for r in range(count)}
    assert set(read) == expected and all(n == 1 for n in read.values())


def test_enough_files_go_whole_to_the_slots_balanced():
    counts = [10, 10, 10, 10, 10, 10, 10, 9]
    shares = [share(counts, slot, range(8)) for slot in slots(2, 2)]
    assert all(start == 0 and stop == counts[f] for s in shares for f, start, stop in s)
    assert [sum(stop for _, _, stop in s) for s in shares] == [20, 20, 20, 19]


def test_few_files_are_cut_into_record_ranges_of_equal_size():
    shares = [share([10, 7], slot, [0, 1]) for slot in slots(2, 2)]
    assert shares == [[(0, 0, 4)], [(0, 4, 8)], [(0, 8, 10), (1, 0, 2)], [(1, 2, 7)]]


def test_the_order_depends_on_seed_and_epoch_only():
    counts = [12, 12, 12, 12]
    slot = Slot(rank=1, world_size=2)
    first = share_records(counts, slot, seed=1, epoch=0, shuffle=True)
    assert np.array_equal(first, share_records(counts, slot, seed=1, epoch=0, shuffle=True))
    assert not np.array_equal(first, share_records(counts, slot, seed=1, epoch=1, shuffle=True))
    assert not np.array_equal(first, share_records(counts, slot, seed=2, epoch=0, shuffle=True))
    assert list(file_order(4, seed=1, epoch=0, shuffle=False)) == [0, 1, 2, 3]


def test_without_shuffle_records_come_in_file_order():
    records = share_records([3, 2], Slot())
    assert records.tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1]]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"worker_id": 2, "num_workers": 2},
            "`worker_id` must be in [0, num_workers) and `num_workers` >= 1. Received: "
            "worker_id=2, num_workers=2",
        ),
        (
            {"rank": 0, "world_size": 0},
            "`rank` must be in [0, world_size) and `world_size` >= 1. Received: rank=0, "
            "world_size=0",
        ),
    ],
)
def test_a_slot_outside_its_counts_is_refused(options, message):
    with pytest.raises(ConfigError) as err:
        Slot(**options)
    assert str(err.value) == message
