"""The PyTorch wrappers (skipped where torch is not installed, as in CI)."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest

from tfrec_tools.errors import ConfigError
from tfrec_tools.loader import RecordDataset, RecordStream

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader, DistributedSampler  # noqa: E402

from tfrec_tools.loader.torch import TorchDataset, TorchStream  # noqa: E402


def test_samples_are_tensors_with_the_image_channels_first(built):
    sample = TorchDataset(RecordDataset(built))[0]
    assert sample["image"].shape == (3, 16, 16) and sample["image"].dtype == torch.uint8
    assert sample["label"].dtype == torch.int64 and sample["label"].ndim == 0
    assert sample["age"].dtype == torch.float32 and isinstance(sample["id"], str)


def test_two_dataloader_workers_times_two_ranks_read_each_id_once_per_epoch(built):
    stream = RecordStream(built, shuffle=True, seed=1)
    ids = Counter()
    for rank in (0, 1):
        loader = DataLoader(
            TorchStream(stream, rank=rank, world_size=2), batch_size=5, num_workers=2
        )
        for batch in loader:
            assert batch["image"].shape[1:] == (3, 16, 16)
            ids.update(batch["id"])
    assert len(ids) == 48 == len(RecordDataset(built)) and set(ids.values()) == {1}


def test_distributed_sampler_gives_each_rank_a_disjoint_complete_share(built):
    dataset = TorchDataset(RecordDataset(built, folds=[0, 1]))
    shares = []
    for rank in (0, 1):
        sampler = DistributedSampler(dataset, num_replicas=2, rank=rank, shuffle=True, seed=3)
        sampler.set_epoch(1)
        loader = DataLoader(dataset, batch_size=8, sampler=sampler)
        shares.append([i for batch in loader for i in batch["id"]])
    assert not set(shares[0]) & set(shares[1])
    assert len(shares[0]) == len(shares[1]) == 24 and len(set(shares[0] + shares[1])) == 48


def test_rank_and_world_size_go_together(built):
    with pytest.raises(ConfigError) as err:
        TorchStream(RecordStream(built), rank=1)
    assert str(err.value) == (
        "`rank` and `world_size` go together. Received: rank=1, world_size=None"
    )


def test_importing_the_torch_wrappers_never_imports_tensorflow():
    code = "import sys, tfrec_tools.loader.torch; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
