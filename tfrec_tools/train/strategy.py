"""The distribution strategy, detected once: several workers named by ``TF_CONFIG`` ->
TPU (a named TPU node, then a TPU attached to this VM) -> several GPUs -> one GPU -> CPU."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Any

from tfrec_tools.errors import ConfigError
from tfrec_tools.quiet import import_tensorflow, tf_error_text

log = logging.getLogger(__name__)
# The task types MultiWorkerMirroredStrategy trains with; "evaluator" tasks are not part of
# the collective ring and "ps" belongs to ParameterServerStrategy.
COLLECTIVE_TASKS = ("chief", "worker")
# TPUClusterResolver's tpu argument for a TPU attached to this VM (TPU VMs: Kaggle and Colab
# today, Cloud TPU VMs such as v3-8, v4, v5e). Without an argument it finds the TPU *node*
# that TPU_NAME, TPU_CONFIG or KUBE_GOOGLE_CLOUD_TPU_ENDPOINTS names (Colab's and Kaggle's
# former TPU runtimes, a GCE VM beside a TPU node, GKE), and raises ValueError when nothing
# names one.
ATTACHED_TPU = "local"
# Device types TensorFlow lists, before any initialisation, when libtpu finds TPU chips here.
TPU_DEVICE_TYPES = ("TPU_SYSTEM", "TPU")


@dataclass(frozen=True)
class Device:
    """The strategy and what it runs on."""

    strategy: Any  # tf.distribute.Strategy
    kind: str  # "TPU", "GPU" or "CPU"
    replicas: int  # in sync, over every worker
    workers: int = 1  # processes (hosts) that each run an input pipeline
    is_chief: bool = True  # the one worker that writes checkpoints and results

    def describe(self) -> str:
        where = f"{self.workers} workers, " if self.workers > 1 else ""
        # TensorFlow's class behind tf.distribute.MultiWorkerMirroredStrategy has an old name
        name = type(self.strategy).__name__.replace(
            "CollectiveAllReduceStrategy", "MultiWorkerMirroredStrategy"
        )
        return f"{self.kind} ({where}{self.replicas} replicas, {name})"

    def global_batch(self, per_replica: int) -> int:
        """Per-replica batch x replicas: the one place the batch is scaled."""
        return per_replica * self.replicas


def detect_device(multi_worker: bool = True) -> Device:
    """MultiWorkerMirroredStrategy when ``TF_CONFIG`` names several workers (and
    ``multi_worker``), else TPUStrategy when a TPU starts (the TPU node the environment
    names, else the TPU attached to this VM), else MirroredStrategy over several GPUs, else
    the default strategy on the one GPU or the CPU. A named TPU node that does not start is
    logged as a warning and skipped; an attached TPU that does not start is an error.

    Call it before any other TensorFlow op: collective ops are configured at start-up.

    Raises:
        ConfigError: TF_CONFIG is not valid JSON or names a cluster we cannot train on.
    """
    tf = import_tensorflow()
    cluster = cluster_from_env() if multi_worker else None
    if cluster is not None:
        return _multi_worker(tf, cluster)
    tpu = _tpu_resolver(tf)
    if tpu is not None:
        strategy = tf.distribute.TPUStrategy(tpu)
        return Device(
            strategy, "TPU", strategy.num_replicas_in_sync, workers=strategy.extended.num_hosts
        )
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:
        strategy = tf.distribute.MirroredStrategy()
        return Device(strategy, "GPU", strategy.num_replicas_in_sync)
    return Device(tf.distribute.get_strategy(), "GPU" if gpus else "CPU", 1)


@dataclass(frozen=True)
class Cluster:
    """What ``TF_CONFIG`` says: how many training tasks, and which one this process is."""

    tasks: int
    task_type: str
    task_index: int
    is_chief: bool


def cluster_from_env() -> Cluster | None:
    """The cluster ``TF_CONFIG`` describes, or None when it is unset or names one task.

    Raises:
        ConfigError: malformed JSON, a parameter-server cluster, or a task not in the cluster.
    """
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return None
    try:
        config = json.loads(text)
        spec, task = config.get("cluster", {}), config.get("task", {})
        task_type, task_index = task.get("type"), int(task.get("index", 0))
    except (ValueError, AttributeError, TypeError) as err:
        raise ConfigError(
            f"TF_CONFIG is not valid: {err}. Expected JSON like "
            '{"cluster": {"worker": ["host1:port", "host2:port"]}, '
            '"task": {"type": "worker", "index": 0}}'
        ) from None
    extra = sorted(set(spec) - set(COLLECTIVE_TASKS) - {"evaluator"})
    if extra:
        raise ConfigError(
            f"TF_CONFIG names {extra} tasks: tfrec train runs MultiWorkerMirroredStrategy, "
            "whose cluster holds only 'chief' and 'worker' tasks"
        )
    tasks = sum(len(spec.get(name, [])) for name in COLLECTIVE_TASKS)
    if tasks <= 1:
        return None
    if task_type not in COLLECTIVE_TASKS or not 0 <= task_index < len(spec.get(task_type, [])):
        raise ConfigError(
            f"TF_CONFIG: this process is task {task_type!r} #{task_index}, which its cluster "
            f"{json.dumps(spec)} does not list; set task.type and task.index per process"
        )
    is_chief = task_type == "chief" or ("chief" not in spec and task_index == 0)
    return Cluster(tasks, task_type, task_index, is_chief)


def _multi_worker(tf, cluster: Cluster) -> Device:
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    kind = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    log.info(
        "multi-worker: task %s #%d of %d (%s)",
        cluster.task_type,
        cluster.task_index,
        cluster.tasks,
        "chief" if cluster.is_chief else "not chief",
    )
    return Device(
        strategy,
        kind,
        strategy.num_replicas_in_sync,
        workers=cluster.tasks,
        is_chief=cluster.is_chief,
    )


def _tpu_resolver(tf):
    """The resolver of a started TPU system, or None: first the TPU node the environment
    names (``TPUClusterResolver()``), then the TPU attached to this VM (``tpu="local"``)."""
    # Cloud TPU VM guides export TPU_NAME=local, which the no-argument form would look up
    # in the Cloud TPU API as a TPU node called "local".
    if os.environ.get("TPU_NAME", "").strip() != ATTACHED_TPU:
        resolver = _start_tpu(tf, None)
        if resolver is not None:
            return resolver
    # TPUClusterResolver(tpu="local") is created even on a machine without a TPU; only
    # initialize_tpu_system tells, and there it fails (NotFoundError, 0.2 s) after clearing
    # TensorFlow's eager caches. Listing devices is instant and has no side effects.
    if not any(tf.config.list_physical_devices(kind) for kind in TPU_DEVICE_TYPES):
        log.debug("no TPU attached to this machine")
        return None
    resolver = _start_tpu(tf, ATTACHED_TPU)
    if resolver is None:  # training on the CPU of a TPU machine would only waste hours
        raise ConfigError(
            "this machine has a TPU (TensorFlow lists its devices) but it did not start (see "
            "the warning above); if another process holds it (a second notebook kernel or "
            "script), stop that process and run again"
        )
    return resolver


def _start_tpu(tf, tpu: str | None):
    """Resolve, connect to and initialise one form's TPU; None (logged) when that fails."""
    form = "TPUClusterResolver()" if tpu is None else f"TPUClusterResolver(tpu={tpu!r})"
    resolver = None
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            **({} if tpu is None else {"tpu": tpu})
        )
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return resolver
    except (ValueError, RuntimeError, OSError, tf.errors.OpError) as err:
        # A ValueError from the constructor means nothing names a TPU: the usual case, not
        # worth a warning. Anything else means a TPU was named or attached but did not start.
        quiet = resolver is None and isinstance(err, ValueError)
        log.log(
            logging.DEBUG if quiet else logging.WARNING,
            "TPU not used: %s failed: %s",
            form,
            tf_error_text(err),
        )
        return None
