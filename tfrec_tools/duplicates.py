"""Exact and near-duplicate images among hashed records: within a fold, across folds (leakage)
and across sets (train/test leakage).

Exact means the same stored image bytes (sha256): the same file, or files whose pixels encode
to the same JPEG. Near means perceptual hashes (``phash``) within ``distance`` bits.

Pairs within ``distance`` bits are found without comparing every pair: the 64 bits are cut into
``distance + 1`` bands; two hashes that differ in at most ``distance`` bits agree exactly on at
least one band (pigeonhole), so only hashes that share a band value are compared.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass

from tfrec_tools.phash import hash_text
from tfrec_tools.spreadsheet import text_cell

DEFAULT_DISTANCE = 4  # resized/re-encoded copies: 0-2 bits; distinct sample_data images: >= 6
MAX_DISTANCE = 16  # beyond it bands are 3-4 bits wide: the search compares nearly every pair
DUPLICATE_COLUMNS = ("group", "kind", "scope", "set", "image_id", "shard", "fold", "hash")
SCOPES = ("across sets", "across folds", "within a fold")


@dataclass(frozen=True)
class Item:
    """One hashed record and where it lives."""

    set: str
    image_id: str
    shard: str
    fold: int | None
    phash: int
    sha256: str  # "" when unknown (then only near duplicates are found)


@dataclass(frozen=True)
class Group:
    """Records that are copies of each other: ``exact`` when all have the same bytes."""

    kind: str  # "exact" or "near"
    scope: str  # one of SCOPES
    items: tuple[Item, ...]


def near_pairs(hashes, distance: int):
    """Index pairs (i < j, sorted, unique) of ``hashes`` (uint64 array) within ``distance``
    bits, as an (n, 2) int64 array."""
    import numpy as np

    hashes = np.asarray(hashes, dtype=np.uint64)
    found = [np.empty((0, 2), dtype=np.int64)]
    for shift, width in _bands(distance):
        keys = (hashes >> np.uint64(shift)) & np.uint64((1 << width) - 1)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        for step in range(1, len(order)):
            same = np.flatnonzero(sorted_keys[step:] == sorted_keys[:-step])
            if not same.size:
                break
            i, j = order[same], order[same + step]
            close = np.bitwise_count(hashes[i] ^ hashes[j]) <= distance
            found.append(np.sort(np.stack([i[close], j[close]], axis=1), axis=1))
    return np.unique(np.concatenate(found), axis=0)


def _bands(distance: int) -> list[tuple[int, int]]:
    """(shift, width) of ``distance + 1`` bands covering the 64 bits, widths differing by <= 1."""
    count = distance + 1
    widths = [64 // count + (k < 64 % count) for k in range(count)]
    shifts = [sum(widths[:k]) for k in range(count)]
    return list(zip(shifts, widths))


def find_groups(items: list[Item], distance: int = DEFAULT_DISTANCE) -> list[Group]:
    """Groups of two or more items that are copies of each other (connected by equal bytes or
    hashes within ``distance`` bits), largest scope first, then by first image id."""
    parent = list(range(len(items)))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    first_of: dict[str, int] = {}
    first_hash: dict[int, int] = {}  # one item per distinct hash: plain images share one
    for k, item in enumerate(items):
        if item.sha256:
            parent[root(k)] = root(first_of.setdefault(item.sha256, k))
        parent[root(k)] = root(first_hash.setdefault(item.phash, k))
    distinct = list(first_hash)  # near pairs among distinct hashes only: linear in repeats
    for i, j in near_pairs(distinct, distance).tolist():
        parent[root(first_hash[distinct[i]])] = root(first_hash[distinct[j]])
    members: dict[int, list[Item]] = {}
    for k, item in enumerate(items):
        members.setdefault(root(k), []).append(item)
    groups = [_group(m) for m in members.values() if len(m) > 1]
    return sorted(groups, key=lambda g: (SCOPES.index(g.scope), g.items[0].image_id))


def _group(items: list[Item]) -> Group:
    exact = bool(items[0].sha256) and len({i.sha256 for i in items}) == 1
    if len({i.set for i in items}) > 1:
        scope = "across sets"
    elif len({i.fold for i in items if i.fold is not None}) > 1:
        scope = "across folds"
    else:
        scope = "within a fold"
    return Group("exact" if exact else "near", scope, tuple(items))


def summary(groups: list[Group]) -> str:
    """One line: groups by kind and scope, e.g. ``2 duplicate groups (5 images): 1 exact, 1
    near; across sets 1, within a fold 1``; ``no duplicates`` when there are none."""
    if not groups:
        return "no duplicates"
    images = sum(len(g.items) for g in groups)
    kinds = Counter(g.kind for g in groups)
    scopes = Counter(g.scope for g in groups)
    kind_text = ", ".join(f"{kinds[k]} {k}" for k in ("exact", "near") if kinds[k])
    scope_text = ", ".join(f"{s} {scopes[s]}" for s in SCOPES if scopes[s])
    noun = "group" if len(groups) == 1 else "groups"
    return f"{len(groups)} duplicate {noun} ({images} images): {kind_text}; {scope_text}"


def duplicates_csv(groups: list[Group]) -> bytes:
    """One line per image of each group (groups numbered from 1)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(DUPLICATE_COLUMNS)
    for number, group in enumerate(groups, start=1):
        for i in group.items:
            fold = "" if i.fold is None else i.fold
            ids = (text_cell(i.set), text_cell(i.image_id), text_cell(i.shard))
            row = (number, group.kind, group.scope, *ids, fold)
            writer.writerow((*row, hash_text(i.phash)))
    return buffer.getvalue().encode("utf-8")
