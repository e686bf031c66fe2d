"""Predictions split across workers: each worker's share of the files, the share files, and the
chief's gathering (every id exactly once, in worker order)."""

from __future__ import annotations

import numpy as np
import pytest

from tfrec_tools.errors import ConfigError, ShardError
from tfrec_tools.train import shares
from tfrec_tools.train.shares import exchange, gather, share_of, share_path, write_share
from tfrec_tools.train.strategy import Device
from tfrec_tools.train.tta import Predictions

VALID = ("v00-3.tfrec", "v01-2.tfrec", "v02-2.tfrec")


def labeled(ids: list[str], start: float) -> Predictions:
    """Binary, multiclass and multilabel heads: [n], [n, 3] and multi-hot [n, 2] values."""
    n = len(ids)
    values = {
        "b": np.arange(n) + start,
        "m": np.full((n, 3), start),
        "t": np.full((n, 2), start / 10),
    }
    labels = {
        "b": np.arange(n) % 2,
        "m": np.arange(n) % 3,
        "t": np.eye(2, dtype=int)[np.arange(n) % 2],
    }
    return Predictions(tuple(ids), values, labels)


def test_every_file_is_in_exactly_one_share():
    files = tuple(f"s{i:02d}-4.tfrec" for i in range(7))
    for workers in (1, 2, 3, 8):
        owned = [f for index in range(workers) for f in share_of(files, index, workers)]
        assert sorted(owned) == list(files)
    assert share_of(files, 1, 3) == ("s01-4.tfrec", "s04-4.tfrec")
    assert share_of(VALID, 0, 1) == VALID  # one worker: every file, in order


def test_the_chief_gathers_the_shares_in_worker_order(tmp_path):
    run_dir = str(tmp_path)
    chief = labeled(["a", "b", "c", "d", "e"], 0.0)  # v00 and v02
    other = labeled(["f", "g"], 100.0)  # v01
    write_share(share_path(run_dir, 1, "oof", 1), share_of(VALID, 1, 2), other)
    result = gather(run_dir, 1, "oof", VALID, chief, 2)
    assert result.ids == ("a", "b", "c", "d", "e", "f", "g")
    for name in ("b", "m", "t"):
        np.testing.assert_array_equal(
            result.values[name], np.concatenate([chief.values[name], other.values[name]])
        )
        np.testing.assert_array_equal(
            result.labels[name], np.concatenate([chief.labels[name], other.labels[name]])
        )


def test_unlabeled_shares_and_workers_without_files(tmp_path):
    run_dir, test_files = str(tmp_path), ("t00-3.tfrec",)
    chief = Predictions(("t1", "t2", "t3"), {"b": np.ones(3)}, None)
    # worker 1 of 2 has no test file: the chief expects nothing from it
    result = gather(run_dir, 0, "test", test_files, chief, 2)
    assert result.ids == chief.ids and result.labels is None
    assert gather(run_dir, 0, "test", (), None, 2) is None


def test_an_id_predicted_by_two_workers_is_refused(tmp_path):
    run_dir = str(tmp_path)
    write_share(share_path(run_dir, 0, "oof", 1), ("v01-2.tfrec",), labeled(["c", "f"], 1.0))
    with pytest.raises(ShardError) as caught:
        gather(run_dir, 0, "oof", VALID, labeled(["a", "b", "c"], 0.0), 2)
    assert str(caught.value) == (
        "fold 0: 1 out-of-fold ids were predicted by more than one worker, e.g. c (workers 0 "
        "and 1): ids must be unique across the predicted shards"
    )


def test_a_missing_share_says_where_every_worker_must_write(tmp_path):
    with pytest.raises(ConfigError) as caught:
        gather(str(tmp_path), 2, "oof", VALID, labeled(["a"], 0.0), 2)
    path = share_path(str(tmp_path), 2, "oof", 1)
    assert str(caught.value) == (
        f"fold 2: worker 1's out-of-fold predictions are not in {path}: every worker writes its "
        "share into the run folder, so start every worker with the same --out on a file system "
        "they all reach (a shared disk or gs://)"
    )


def test_a_share_of_other_files_is_refused(tmp_path):
    run_dir = str(tmp_path)
    write_share(share_path(run_dir, 0, "test", 1), ("x07-2.tfrec",), labeled(["f", "g"], 1.0))
    with pytest.raises(ConfigError) as caught:
        gather(run_dir, 0, "test", VALID, labeled(["a"], 0.0), 2)
    assert str(caught.value) == (
        "fold 0: worker 1 predicted its test share from x07-2.tfrec, but the chief expected "
        "v01-2.tfrec: start every worker with the same command (shards, --folds, --test)"
    )


class Resolver:
    """The cluster of two workers, seen from worker 1."""

    task_type, task_id = "worker", 1

    def cluster_spec(self):
        return self

    def as_dict(self) -> dict:
        return {"worker": ["a", "b"]}


class Strategy:
    cluster_resolver = Resolver()


def test_workers_write_their_shares_and_only_the_chief_gathers(tmp_path, monkeypatch):
    barriers = []
    monkeypatch.setattr(shares, "wait_for_workers", barriers.append)
    worker = Device(Strategy(), "CPU", 2, workers=2, is_chief=False)
    chief = Device(Strategy(), "CPU", 2, workers=2, is_chief=True)
    files = {"oof": VALID, "test": ("t00-3.tfrec",)}
    run_dir = str(tmp_path / "run")
    mine = {"oof": labeled(["f", "g"], 1.0), "test": None}
    assert exchange(worker, run_dir, 3, files, mine) == {"oof": None, "test": None}
    test = Predictions(("t1",), {"b": np.ones(1)}, None)
    got = exchange(chief, run_dir, 3, files, {"oof": labeled(["a", "b"], 0.0), "test": test})
    assert barriers == [worker, chief]
    assert got["oof"].ids == ("a", "b", "f", "g") and got["test"].ids == ("t1",)
    shares.clear(run_dir)
    assert not (tmp_path / "run" / shares.SHARES_DIR).exists()
