"""The distribution strategy: TPU -> several GPUs -> one GPU -> CPU, detected once."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from tfrec_tools.quiet import import_tensorflow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Device:
    """The strategy and what it runs on."""

    strategy: Any  # tf.distribute.Strategy
    kind: str  # "TPU", "GPU" or "CPU"
    replicas: int
    workers: int = 1
    is_chief: bool = True

    def describe(self) -> str:
        where = f"{self.workers} workers, " if self.workers > 1 else ""
        return f"{self.kind} ({where}{self.replicas} replicas, {type(self.strategy).__name__})"

    def global_batch(self, per_replica: int) -> int:
        """Per-replica batch x replicas: the one place the batch is scaled."""
        return per_replica * self.replicas


def detect_device() -> Device:
    """TPU when a TPU cluster resolves, else MirroredStrategy over several GPUs, else the
    default strategy on the one GPU or the CPU."""
    tf = import_tensorflow()
    tpu = _tpu_resolver(tf)
    if tpu is not None:
        tf.config.experimental_connect_to_cluster(tpu)
        tf.tpu.experimental.initialize_tpu_system(tpu)
        strategy = tf.distribute.TPUStrategy(tpu)
        return Device(strategy, "TPU", strategy.num_replicas_in_sync)
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:
        strategy = tf.distribute.MirroredStrategy()
        return Device(strategy, "GPU", strategy.num_replicas_in_sync)
    return Device(tf.distribute.get_strategy(), "GPU" if gpus else "CPU", 1)


def _tpu_resolver(tf):
    try:
        return tf.distribute.cluster_resolver.TPUClusterResolver()
    except (ValueError, RuntimeError, tf.errors.NotFoundError) as err:
        log.debug("no TPU: %s", err)
        return None
