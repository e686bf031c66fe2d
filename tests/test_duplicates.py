"""Duplicate groups: the banded search finds every pair within the distance and no other;
exact vs near; scopes within a fold, across folds, across sets."""

from __future__ import annotations

import numpy as np
import pytest

from tfrec_tools.duplicates import Item, duplicates_csv, find_groups, near_pairs, summary


def brute_force(hashes, distance):
    return {
        (i, j)
        for i in range(len(hashes))
        for j in range(i + 1, len(hashes))
        if bin(int(hashes[i]) ^ int(hashes[j])).count("1") <= distance
    }


@pytest.mark.parametrize("distance", [0, 1, 4, 9])
def test_banded_search_equals_brute_force(distance):
    rng = np.random.default_rng(distance)
    hashes = rng.integers(0, 2**63, 300, dtype=np.int64).astype(np.uint64)
    for k in range(0, 300, 10):  # planted: flip up to distance + 1 bits of another hash
        flips = rng.choice(64, size=k % (distance + 2), replace=False)
        hashes[k + 1] = hashes[k] ^ np.uint64(sum(1 << int(b) for b in flips))
    found = {tuple(p) for p in near_pairs(hashes, distance).tolist()}
    assert found == brute_force(hashes, distance)


def test_no_hashes_no_pairs():
    assert near_pairs([], 4).shape == (0, 2)


def item(image_id, phash, *, fold=0, set_="train", sha=""):
    return Item(set_, image_id, "s.tfrec", fold, phash, sha)


A, B, C = 0xFFFFFFFF00000000, 0x00000000FFFFFFFF, 0xFFFF0000FFFF0000  # 32 bits apart


def test_groups_kinds_and_scopes():
    items = [
        item("a", A, sha="x"),
        item("a2", A, fold=1, sha="x"),  # exact, other fold
        item("b", B, sha="y"),
        item("b2", B ^ 3, sha="z"),  # near, same fold
        item("c", C, sha="c"),
        item("c2", C, set_="test", sha="d"),  # same hash, other set: near
        item("lonely", 0x0000FFFF0000FFFF, sha="l"),
    ]
    groups = find_groups(items, distance=4)
    shown = [(g.kind, g.scope, [i.image_id for i in g.items]) for g in groups]
    assert shown == [
        ("near", "across sets", ["c", "c2"]),
        ("exact", "across folds", ["a", "a2"]),
        ("near", "within a fold", ["b", "b2"]),
    ]
    assert summary(groups) == (
        "3 duplicate groups (6 images): 1 exact, 2 near; across sets 1, across folds 1, "
        "within a fold 1"
    )
    assert summary([]) == "no duplicates"
    lines = duplicates_csv(groups).decode().splitlines()
    assert lines[0] == "group,kind,scope,set,image_id,shard,fold,hash"
    assert lines[1] == "1,near,across sets,train,c,s.tfrec,0,ffff0000ffff0000"


def test_exact_bytes_group_even_when_hashes_are_far():
    items = [item("a", 0, sha="same"), item("b", 2**64 - 1, sha="same")]
    assert [g.kind for g in find_groups(items, distance=0)] == ["exact"]


def test_many_images_with_one_hash_are_one_group_and_compared_once(monkeypatch):
    """Plain images (all black, all grey) share a hash: they must not be compared pair by pair
    (20,000 of them took minutes and gigabytes); the band search sees each hash once."""
    from tfrec_tools import duplicates

    seen = []
    real = duplicates.near_pairs
    monkeypatch.setattr(duplicates, "near_pairs", lambda h, d: (seen.append(len(h)), real(h, d))[1])
    items = [Item("train", f"plain{k}", "s", k % 5, 0, "") for k in range(20_000)]
    items.append(Item("train", "other", "s", 0, 0xFFFF_FFFF_FFFF_FFFF, ""))
    groups = find_groups(items, 4)
    assert seen == [2]
    assert [len(g.items) for g in groups] == [20_000]


def test_ids_that_look_like_formulas_are_escaped_in_the_list():
    items = [Item("train", "=cmd", "s", 0, 0, ""), Item("test", "+1", "t", None, 0, "")]
    text = duplicates_csv(find_groups(items, 0)).decode()
    assert "'=cmd" in text and "'+1" in text
