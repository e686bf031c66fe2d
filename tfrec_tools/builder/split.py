"""Splitting rows into shards: stratified by class (or by tag, for multi-label rows), no group
in two shards, sizes near equal."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


def assign_shards(
    strata: np.ndarray, groups: np.ndarray | None, num_shards: int, seed: int
) -> list[np.ndarray]:
    """The sorted row positions of each of ``num_shards`` shards; every row in exactly one.

    Without groups, each class is shuffled (``default_rng(seed)``) and dealt round-robin, the
    rotation carrying on from one class to the next: every shard holds within one row of
    ``class total / num_shards`` of every class, and shard sizes differ by at most one.

    With groups, groups are shuffled (same rng), sorted by size (largest first, ties in shuffled
    order) and placed greedily, so a group never spans shards: each goes where it adds least
    to the squared deviation of the shards' per-class counts from ``class total /
    num_shards``, ties to the shard with the fewest rows. For a group of one class that is
    the shard with the fewest rows of its class, then the fewest rows. Cost: O(n log n) plus
    one argmin over the shards per group (a few microseconds each in Python), and for a group
    of several classes a (classes in it) x num_shards product.

    A shard with no rows always takes the next group (row), so no shard is empty when there
    are at least ``num_shards`` groups (rows); with fewer, the last shards stay empty and
    nothing is raised: the caller checks. Missing keys (None, NaN) form one group.

    Args:
        strata: one integer class code per row (any ints, e.g. regression quantile bins).
        groups: one hashable group key per row (str, int, ...), or None: each row alone.
        num_shards: shards to fill, >= 1.
        seed: seeds the only random choice, the order in which rows or groups are dealt.

    Returns:
        ``num_shards`` int64 arrays of row positions, each sorted.

    Raises:
        ValueError: ``num_shards`` < 1, or ``groups`` and ``strata`` differ in length.
    """
    strata = np.asarray(strata)
    _check(strata, groups, num_shards)
    if len(strata) == 0:
        return [np.empty(0, dtype=np.int64) for _ in range(num_shards)]
    classes = np.unique(strata, return_inverse=True)[1].reshape(-1)
    rng = np.random.default_rng(seed)
    if groups is None:
        shard_of_row = _deal_rows(classes, num_shards, rng)
    else:
        group_of_row = _group_codes(groups)
        shard_of_row = _place_groups(classes, group_of_row, num_shards, rng)[group_of_row]
    return _members(shard_of_row, num_shards)


def _check(
    strata: np.ndarray, groups: np.ndarray | None, num_shards: int, rows: str = "strata"
) -> None:
    if num_shards < 1:
        raise ValueError(f"`num_shards` must be >= 1. Received: num_shards={num_shards}")
    if groups is not None and len(groups) != len(strata):
        raise ValueError(
            f"`groups` must have one entry per row of `{rows}` ({len(strata)}). "
            f"Received: {len(groups)}"
        )


def _group_codes(groups: np.ndarray) -> np.ndarray:
    """0, 1, ... per distinct key, in order of first appearance."""
    if not isinstance(groups, np.ndarray):  # a list of ints and strs must not become all strs
        groups = np.asarray(groups, dtype=object)
    return pd.factorize(groups, use_na_sentinel=False)[0]


def _deal_rows(classes: np.ndarray, num_shards: int, rng: np.random.Generator) -> np.ndarray:
    """Shard of each row: rows shuffled within their class, classes one after another, dealt
    to shards 0, 1, ..., num_shards - 1, 0, 1, ... (what StratifiedKFold achieves)."""
    shuffled = rng.permutation(len(classes))
    dealt = shuffled[np.argsort(classes[shuffled], kind="stable")]
    shard_of_row = np.empty(len(classes), dtype=np.int64)
    shard_of_row[dealt] = np.arange(len(classes)) % num_shards
    return shard_of_row


@dataclass(frozen=True)
class _Groups:
    """How many rows of each class every group holds, as (class, rows) pairs sorted by group
    then class: the pairs of group ``g`` are ``starts[g]:starts[g + 1]``."""

    pair_class: np.ndarray
    pair_rows: np.ndarray
    starts: np.ndarray
    sizes: np.ndarray  # rows per group
    num_classes: int


def _tabulate(classes: np.ndarray, group_of_row: np.ndarray) -> _Groups:
    num_groups, num_classes = int(group_of_row.max()) + 1, int(classes.max()) + 1
    pairs, pair_rows = np.unique(group_of_row * num_classes + classes, return_counts=True)
    pair_group, pair_class = np.divmod(pairs, num_classes)
    per_group = np.bincount(pair_group, minlength=num_groups)
    sizes = np.bincount(pair_group, weights=pair_rows, minlength=num_groups).astype(np.int64)
    starts = np.concatenate(([0], np.cumsum(per_group)))
    return _Groups(pair_class, pair_rows, starts, sizes, num_classes)


def _place_groups(
    classes: np.ndarray, group_of_row: np.ndarray, num_shards: int, rng: np.random.Generator
) -> np.ndarray:
    """Shard of each group (indexed by group code): groups placed largest first, one by one,
    where they add least to the sum over shards and classes of (count - class total /
    num_shards) ** 2, ties to the shard with the fewest rows. Adding rows ``v`` to a shard
    adds 2 * v . count + const, so a one-class group goes to the shard with the fewest rows
    of its class: one argmin over shards per group."""
    groups = _tabulate(classes, group_of_row)
    fill = _Fill(groups.num_classes, num_shards, scale=int(groups.sizes.sum()) + 1)
    order = _largest_first(groups.sizes, rng)
    firsts = groups.starts[order]
    mixed = groups.starts[order + 1] - firsts > 1
    shard_of_group = np.empty(len(groups.sizes), dtype=np.int64)
    for group, label, size, is_mixed in zip(
        order.tolist(),
        groups.pair_class[firsts].tolist(),
        groups.sizes[order].tolist(),
        mixed.tolist(),
    ):
        if is_mixed:
            span = slice(groups.starts[group], groups.starts[group + 1])
            shard = fill.add_mixed(groups.pair_class[span], groups.pair_rows[span], size)
        else:
            shard = fill.add_pure(label, size)
        shard_of_group[group] = shard
    return shard_of_group


def _largest_first(sizes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Group codes by size, largest first; equal sizes in an order drawn from ``rng``."""
    shuffled = rng.permutation(len(sizes))
    return shuffled[np.argsort(-sizes[shuffled], kind="stable")]


class _Fill:
    """Rows per class and per shard, as groups are added."""

    def __init__(self, num_classes: int, num_shards: int, scale: int) -> None:
        self.counts = np.zeros((num_classes, num_shards), dtype=np.int64)
        self.totals = np.zeros(num_shards, dtype=np.int64)
        self.rows = list(self.counts)  # views made once: the loop runs once per group
        # Above any shard total: class count first, shard total second. count * scale + total
        # stays below 2 ** 63 up to ~3e9 rows.
        self.scale = scale
        self.key = np.empty(num_shards, dtype=np.int64)

    def add_pure(self, label: int, size: int) -> int:
        """Add a one-class group to the shard with the fewest rows of its class, then the
        fewest rows, in one argmin over ``count * scale + total``."""
        row = self.rows[label]
        np.multiply(row, self.scale, out=self.key)
        shard = int(np.add(self.key, self.totals, out=self.key).argmin())
        row[shard] += size
        self.totals[shard] += size
        return shard

    def add_mixed(self, labels: np.ndarray, rows: np.ndarray, size: int) -> int:
        """Add a group of several classes where rows . count is least, then the fewest rows."""
        cost = rows @ self.counts[labels]
        tied = np.flatnonzero(cost == cost.min())
        shard = int(tied[np.argmin(self.totals[tied])])
        self.counts[labels, shard] += rows
        self.totals[shard] += size
        return shard


def _members(shard_of_row: np.ndarray, num_shards: int) -> list[np.ndarray]:
    """Sorted row positions of each shard."""
    by_shard = np.argsort(shard_of_row, kind="stable").astype(np.int64)
    ends = np.cumsum(np.bincount(shard_of_row, minlength=num_shards))
    return np.split(by_shard, ends[:-1])


def assign_shards_multilabel(
    labels: np.ndarray, groups: np.ndarray | None, num_shards: int, seed: int
) -> list[np.ndarray]:
    """The sorted row positions of each of ``num_shards`` shards for multi-label rows, by
    iterative stratification (Sechidis, Tsoumakas and Vlahavas 2011, "On the stratification
    of multi-label data"); every row in exactly one shard.

    Every shard wants ``total / num_shards`` rows and, of every tag, ``tag total /
    num_shards`` occurrences. Units (rows, or whole groups: a group is placed as one unit
    carrying its rows' tag counts, so it never spans shards) are shuffled
    (``default_rng(seed)``), then sorted by size, largest first. Repeatedly, the tag with the
    fewest unplaced occurrences is taken (ties: the lower tag index), and every unplaced unit
    holding it goes, in that order, to the shard that still wants most of that tag, among
    the shards still short of their rows (all, when none is: a shard fills up at most by its
    last group). Ties, which are the rule as shards fill in turn, go to the shard that wants
    most of the unit's tags and rows, each want relative to its total (the paper looks at
    rows alone, which leaves the tags placed last tens of rows off their targets), then to a
    shard order drawn from the same rng for that tag. Units with no tag come last and go
    where most rows are still wanted. Rare tags are thus spread first, while every shard can
    still take them.

    Measured on 100,000 random rows with 20 tags (1-40 %) in 16 shards: every tag within one
    row of its target and every shard the same size, in 1.4 s; with 20,000 groups of ~5
    rows, every tag within 2.1 % of its target and shard sizes within 0.2 %, in 0.3 s. Cost:
    O(rows x tags + units x num_shards x tags per unit), one Python step per unit.

    Args:
        labels: ``[rows, tags]`` multi-hot (bool or 0/1 ints).
        groups: one hashable group key per row, or None: each row alone.
        num_shards: shards to fill, >= 1.
        seed: seeds the order of the units and the tie-breaks between shards.

    Returns:
        ``num_shards`` int64 arrays of row positions, each sorted.

    Raises:
        ValueError: ``num_shards`` < 1, ``labels`` is not 2-D, or ``groups`` differs in length.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"`labels` must be 2-D [rows, tags]. Received: shape={labels.shape}")
    _check(np.empty(len(labels)), groups, num_shards, rows="labels")
    if len(labels) == 0:
        return [np.empty(0, dtype=np.int64) for _ in range(num_shards)]
    rng = np.random.default_rng(seed)
    group_of_row = np.arange(len(labels)) if groups is None else _group_codes(groups)
    units = _tag_units(labels.astype(bool), group_of_row)
    order = _largest_first(units.sizes, rng)
    shard_of_unit = _Iterative(units, num_shards, rng).place(order)
    return _members(shard_of_unit[group_of_row], num_shards)


@dataclass(frozen=True)
class _TagUnits:
    """Tag counts per unit (row or group): ``counts[u, t]`` rows of unit ``u`` with tag ``t``."""

    counts: np.ndarray  # [units, tags] int64
    sizes: np.ndarray  # rows per unit


def _tag_units(labels: np.ndarray, group_of_row: np.ndarray) -> _TagUnits:
    num_units = int(group_of_row.max()) + 1
    by_unit = np.argsort(group_of_row, kind="stable")
    sizes = np.bincount(group_of_row, minlength=num_units)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    counts = np.add.reduceat(labels[by_unit].astype(np.int64), starts, axis=0)
    return _TagUnits(counts.reshape(num_units, labels.shape[1]), sizes.astype(np.int64))


class _Iterative:
    """The state of iterative stratification: what each shard still wants, per tag and in
    rows, as plain Python lists (one small step per unit: numpy calls would cost more than
    the arithmetic on 16 shards).
    Wants are kept times ``num_shards``, so they stay integers: ``total - num_shards x
    placed``."""

    def __init__(self, units: _TagUnits, num_shards: int, rng: np.random.Generator) -> None:
        self.num_shards, self.rng = num_shards, rng
        totals = units.counts.sum(axis=0).tolist()
        self.want = [[total] * num_shards for total in totals]
        self.left = list(totals)  # unplaced occurrences per tag
        self.weight = [1 / max(total, 1) for total in totals]  # a want relative to its tag
        self.sizes = units.sizes.tolist()
        self.want_rows = [sum(self.sizes)] * num_shards
        self.row_weight = 1 / max(sum(self.sizes), 1)
        unit_of, tag_of = np.nonzero(units.counts)
        self.tags_of = _split_by(unit_of, tag_of.tolist(), len(self.sizes))
        counts = units.counts[unit_of, tag_of].tolist()
        self.counts_of = _split_by(unit_of, counts, len(self.sizes))

    def place(self, order: np.ndarray) -> np.ndarray:
        """Shard of each unit, placing the units tag by tag in ``order``."""
        shard_of = np.full(len(self.sizes), -1, dtype=np.int64)
        order = order.tolist()
        holding = self._holding(order)
        while any(self.left):
            tag = min((n, t) for t, n in enumerate(self.left) if n)[1]
            shards = self.rng.permutation(self.num_shards).tolist()
            for unit in holding[tag]:
                if shard_of[unit] < 0:
                    shard_of[unit] = self._take(unit, self._best(unit, tag, shards))
        shards = self.rng.permutation(self.num_shards).tolist()
        for unit in (u for u in order if shard_of[u] < 0):  # units without any tag
            shard_of[unit] = self._take(unit, max(shards, key=self.want_rows.__getitem__))
        return shard_of

    def _holding(self, order: list[int]) -> list[list[int]]:
        """Per tag, the units that hold it, in ``order``."""
        holding: list[list[int]] = [[] for _ in self.left]
        for unit in order:
            for tag in self.tags_of[unit]:
                holding[tag].append(unit)
        return holding

    def _best(self, unit: int, tag: int, shards: list[int]) -> int:
        """Among the shards still short of rows (all, when none is), the one that wants most
        of ``tag``; among ties, the one that wants most of the unit's tags and rows, each
        relative to its total; then the first in ``shards``."""
        short = [s for s in shards if self.want_rows[s] > 0] or shards
        want = self.want[tag]
        top = max(want[s] for s in short)
        tied = [s for s in short if want[s] == top]
        if len(tied) == 1:
            return tied[0]
        wants = [(self.want[t], self.weight[t]) for t in self.tags_of[unit]]
        wants.append((self.want_rows, self.row_weight))
        return max(tied, key=lambda s: sum([want[s] * weight for want, weight in wants]))

    def _take(self, unit: int, shard: int) -> int:
        for tag, count in zip(self.tags_of[unit], self.counts_of[unit]):
            self.want[tag][shard] -= count * self.num_shards
            self.left[tag] -= count
        self.want_rows[shard] -= self.sizes[unit] * self.num_shards
        return shard


def _split_by(keys: np.ndarray, values: list, num_keys: int) -> list[list]:
    """``values`` (sorted by ``keys``) cut into one list per key 0..num_keys-1."""
    ends = np.cumsum(np.bincount(keys, minlength=num_keys)).tolist()
    return [values[start:end] for start, end in zip([0, *ends[:-1]], ends)]
