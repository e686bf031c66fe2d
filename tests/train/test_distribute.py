from __future__ import annotations

import pytest

from tfrec_tools.errors import ClusterError, ConfigError
from tfrec_tools.train.data import FoldSplit
from tfrec_tools.train.distribute import (
    check_worker_shares,
    is_collective,
    validation_steps,
    worker_errors,
    worker_index,
    worker_input,
)
from tfrec_tools.train.strategy import Device


class FakeContext:
    def __init__(self, index: int, count: int, replicas: int) -> None:
        self.input_pipeline_id, self.num_input_pipelines, self.replicas = index, count, replicas

    def get_per_replica_batch_size(self, global_batch: int) -> int:
        return global_batch // self.replicas


class FakeStrategy:
    """Calls the dataset function once per worker, as each worker's strategy does for it."""

    def __init__(self, workers: int, replicas: int) -> None:
        self.workers, self.replicas = workers, replicas

    def distribute_datasets_from_function(self, dataset_fn):
        return [
            dataset_fn(FakeContext(i, self.workers, self.replicas)) for i in range(self.workers)
        ]


class FakeResolver:
    def __init__(self, spec: dict, task_type: str, task_id: int) -> None:
        self.spec, self.task_type, self.task_id = spec, task_type, task_id

    def cluster_spec(self):
        return self

    def as_dict(self) -> dict:
        return self.spec


def device(workers: int, replicas: int, kind: str = "CPU") -> Device:
    return Device(FakeStrategy(workers, replicas), kind, replicas, workers=workers)


FILES = ("s-0.tfrec", "s-1.tfrec", "s-2.tfrec", "s-3.tfrec", "s-4.tfrec")


def record(files, batch, worker):
    return (files, batch, worker)


def test_one_worker_reads_everything_in_global_batches():
    assert worker_input(device(1, 1), FILES, 32, record, split_files=True) == (FILES, 32, 0)


def test_workers_split_training_files_and_batch_per_replica():
    made = worker_input(device(2, 4), FILES, 32, record, split_files=True)
    assert made == [(FILES[0::2], 8, 0), (FILES[1::2], 8, 1)]
    assert sorted(f for files, _, _ in made for f in files) == list(FILES)


def test_every_worker_validates_on_every_file():
    made = worker_input(device(2, 2), FILES, 32, record, split_files=False)
    assert made == [(FILES, 16, 0), (FILES, 16, 1)]


def test_tpu_hosts_are_left_to_keras():
    assert not is_collective(device(4, 32, kind="TPU"))
    assert worker_input(device(4, 32, kind="TPU"), FILES, 256, record, split_files=True)[1] == 256


@pytest.mark.parametrize(
    ("workers", "replicas", "global_batch", "steps"),
    [
        (1, 1, 16, 7),  # 100 records: ceil(100 / 16)
        (2, 2, 16, 13),  # each worker reads all 100 in batches of 8: ceil(100 / 8)
        (2, 4, 16, 13),  # batches of 4, two per step: ceil(ceil(100 / 4) / 2)
    ],
)
def test_validation_steps(workers, replicas, global_batch, steps):
    files = ("v-60.tfrec", "v-40.tfrec")
    assert validation_steps(device(workers, replicas), files, global_batch) == steps


def test_fewer_training_shards_than_workers_is_refused():
    said, even = [], ("a-10.tfrec", "b-10.tfrec")
    check_worker_shares([FoldSplit(0, even, ())], device(2, 2), said.append)
    assert said == []
    with pytest.raises(ConfigError, match="fold 3 trains on 2 shard files, but 3 workers"):
        check_worker_shares([FoldSplit(3, even, ())], device(3, 3), said.append)
    check_worker_shares([FoldSplit(0, (), ())], device(1, 1), said.append)  # one machine


def test_uneven_shares_are_noted():
    said = []
    # 5 shards of 10 records over 2 workers: 30 and 20 records
    files = tuple(f"s{i}-10.tfrec" for i in range(5))
    check_worker_shares([FoldSplit(1, files, ())], device(2, 2), said.append)
    assert said == [
        "note: fold 1's training records split unevenly over the workers (20 to 30), so the "
        "smaller shares are seen more often: use a shard count that divides evenly between "
        "the workers"
    ]
    check_worker_shares([FoldSplit(1, files[:4], ())], device(2, 2), said.append)
    assert len(said) == 1


def test_a_lost_worker_is_one_line():
    import tensorflow as tf

    with (
        pytest.raises(ClusterError, match="multi-worker training stopped: Socket closed"),
        worker_errors(device(2, 2)),
    ):
        raise tf.errors.UnavailableError(None, None, "Socket closed")
    with (
        pytest.raises(ClusterError, match="Collective ops is aborted"),
        worker_errors(device(2, 2)),
    ):
        raise tf.errors.InternalError(None, None, "Collective ops is aborted by: x")


def test_other_errors_pass_through():
    import tensorflow as tf

    with pytest.raises(tf.errors.InternalError), worker_errors(device(2, 2)):
        raise tf.errors.InternalError(None, None, "something else")
    with (
        pytest.raises(tf.errors.UnavailableError),
        worker_errors(device(1, 1)),
    ):  # one machine: nothing to translate
        raise tf.errors.UnavailableError(None, None, "Socket closed")


@pytest.mark.parametrize(
    ("spec", "task", "index"),
    [
        ({"worker": ["a", "b", "c"]}, ("worker", 0), 0),
        ({"worker": ["a", "b", "c"]}, ("worker", 2), 2),
        ({"chief": ["a"], "worker": ["b", "c"]}, ("chief", 0), 0),
        ({"chief": ["a"], "worker": ["b", "c"]}, ("worker", 1), 2),
    ],
)
def test_worker_index_numbers_the_chief_first(spec, task, index):
    workers = device(3, 3)
    workers.strategy.cluster_resolver = FakeResolver(spec, *task)
    assert worker_index(workers) == index
    assert worker_index(device(1, 1)) == 0
