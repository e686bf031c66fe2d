from __future__ import annotations

import pytest

from tfrec_tools.builder.layout import Capacity, choose_layout
from tfrec_tools.errors import ConfigError, DataError


def layout(records, *, units=None, mb=1.0, shards=None, folds=None, labeled=True):
    capacity = Capacity(records, units or records, "groups", mb * 1e6)
    return choose_layout(capacity, shards=shards, folds=folds, labeled=labeled, shard_size_mb=100.0)


@pytest.mark.parametrize(
    ("shards", "folds"), [(16, 4), (10, 5), (15, 5), (12, 6), (7, 7), (2, 2), (1, 0)]
)
def test_given_shards_take_the_divisor_nearest_five(shards, folds):
    assert layout(1000, shards=shards).folds == folds


def test_sixty_unlabeled_images_make_one_shard_not_sixteen():
    chosen = layout(60, labeled=False)
    assert (chosen.shards, chosen.folds) == (1, 0)
    assert chosen.reason == ("1 shard of ~60 records, no folds: 60 records fill 1 shard of 32+")


def test_no_shard_holds_fewer_than_32_records_when_chosen():
    for records in (40, 100, 360, 1500, 5000):
        chosen = layout(records)
        assert records // chosen.shards >= 32 or chosen.shards == chosen.folds
        assert chosen.shards % chosen.folds == 0


def test_big_data_follows_the_shard_size_in_multiples_of_eight_and_k():
    chosen = layout(1_000_000, mb=23_000, folds=4)  # 230 shards of 100 MB wanted
    assert chosen.shards == 232 and chosen.shards % 8 == 0
    assert "~23,000 MB of images at ~100 MB each, a multiple of 8 (TPU cores) and 4" in (
        chosen.reason
    )


def test_at_least_sixteen_files_when_there_are_records_enough():
    chosen = layout(100_000, mb=50, folds=4)
    assert chosen.shards == 16


def test_folds_of_an_unlabeled_build_are_refused():
    with pytest.raises(ConfigError, match="--folds needs labels"):
        layout(100, folds=5, labeled=False)


def test_too_few_groups_for_the_folds():
    with pytest.raises(DataError, match="cannot make 5 folds from 3 groups"):
        layout(1000, units=3, folds=5)


def test_too_many_shards_for_the_groups():
    with pytest.raises(DataError, match="cannot fill 16 shards from 12 groups.*--shards 12"):
        layout(1000, units=12, shards=16, folds=4)


@pytest.mark.parametrize("shards", [None, 10])
def test_one_group_gets_advice_that_works(shards):
    # "--folds 1 or fewer" would itself be an error: folds are 0 or >= 2
    with pytest.raises(DataError) as err:
        layout(1000, units=1, folds=5, shards=shards)
    assert str(err.value) == (
        "cannot make 5 folds from 1 group: each fold needs at least one; pass --folds 0 "
        "(no folds), or a --group-col with more groups"
    )


def test_too_few_groups_for_the_folds_with_shards_given():
    # "--shards 5 or fewer" would not help: 3 groups cannot fill 5 folds
    with pytest.raises(DataError, match=r"cannot make 5 folds from 3 groups.*--folds 3 or fewer"):
        layout(1000, units=3, shards=10, folds=5)
