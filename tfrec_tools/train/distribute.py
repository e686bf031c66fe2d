"""Training on several workers (MultiWorkerMirroredStrategy from ``TF_CONFIG``).

Every worker runs the same ``tfrec train`` command, with the same ``--out``: a folder every
worker reaches (a shared disk or ``gs://``). Each trains on its own share of the training
shards (by file), and validates on the whole fold: validation steps are collective steps, so
every worker must run as many as the others, which shares by file (of uneven sizes) would not
give; whole, the metrics summed over workers keep their exact value, and every worker's
callbacks (early stopping, LR plateaus) see the same numbers. After each fold, every
worker predicts its own share of the fold's validation files and of the test files (by file,
on a single-device copy of the best weights: no collective ops, so uneven shares are fine),
and the chief gathers the shares (``shares.py``). Only the chief writes checkpoints, results
and the report into the run folder; the others write there only their shares, and keep their
checkpoints in a local scratch folder.

Keras 3.15 cannot run ``fit`` under MultiWorkerMirroredStrategy as shipped
(keras-team/keras#20585); ``adapt_model`` works around its two failures, and the two-worker
test in tests/e2e fails the day one of them stops working.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

from tfrec_tools import naming
from tfrec_tools.errors import ClusterError, ConfigError
from tfrec_tools.quiet import import_keras, import_tensorflow, tf_error_text
from tfrec_tools.train.data import FoldSplit
from tfrec_tools.train.strategy import Device

keras = import_keras()

# (files, batch size, input pipeline index) -> tf.data.Dataset
MakeDataset = Callable[[tuple[str, ...], int, int], Any]


def is_collective(device: Device) -> bool:
    """True when ``device`` trains with collectives across worker processes."""
    return device.workers > 1 and device.kind != "TPU"


def check_worker_shares(
    splits: Sequence[FoldSplit], device: Device, say: Callable[[str], None]
) -> None:
    """Refuse folds that leave a worker without a training shard; note uneven shares.

    Every worker takes the same number of records per step from its own files, so a worker
    with fewer records repeats them more often: 5 equal shards on 2 workers show the records
    of the 2-shard share 1.5 times as often as the others.

    Raises:
        ConfigError: a fold has fewer training shard files than there are workers.
    """
    if device.workers == 1:
        return
    for split in splits:
        files = split.train
        if len(files) < device.workers:
            raise ConfigError(
                f"fold {split.fold} trains on {len(files)} shard files, but {device.workers} "
                "workers each read their own files: build with more shards (--shards; about "
                "10 per worker or more) or run fewer workers"
            )
        shares = [
            naming.count_data_items(files[i :: device.workers]) for i in range(device.workers)
        ]
        if max(shares) > 1.1 * min(shares):
            say(
                f"note: fold {split.fold}'s training records split unevenly over the workers "
                f"({min(shares)} to {max(shares)}), so the smaller shares are seen more often: "
                "use a shard count that divides evenly between the workers"
            )


def worker_index(device: Device) -> int:
    """This worker's place among the workers, as the strategy numbers input pipelines: 0 on
    the chief (and on one worker), then the ``worker`` tasks in order."""
    if not is_collective(device):
        return 0
    resolver = device.strategy.cluster_resolver
    chiefs = len(resolver.cluster_spec().as_dict().get("chief", []))
    return 0 if resolver.task_type == "chief" else chiefs + resolver.task_id


def worker_input(
    device: Device,
    files: Sequence[str],
    global_batch: int,
    make: MakeDataset,
    *,
    split_files: bool,
) -> Any:
    """The dataset ``fit`` takes: ``make(files, global_batch, 0)`` on one worker; on several,
    one pipeline per worker, batched per replica, reading every ``workers``-th file when
    ``split_files`` (training) or every file (validation)."""
    files = tuple(files)
    if not is_collective(device):
        return make(files, global_batch, 0)

    def dataset_fn(context: Any) -> Any:
        index, count = context.input_pipeline_id, context.num_input_pipelines
        mine = files[index::count] if split_files else files
        return make(mine, context.get_per_replica_batch_size(global_batch), index)

    return device.strategy.distribute_datasets_from_function(dataset_fn)


def validation_steps(device: Device, files: Sequence[str], global_batch: int) -> int:
    """Steps to read ``files`` once: global batches on one worker; on several, every worker
    reads them all in per-replica batches, one per local replica and step."""
    records = naming.count_data_items(files)
    if not is_collective(device):
        return math.ceil(records / global_batch)
    batches = math.ceil(records / (global_batch // device.replicas))
    return math.ceil(batches / (device.replicas // device.workers))


def fit_scope(device: Device) -> Any:
    """Where to call ``fit``: inside the strategy's scope on several workers (see
    ``adapt_model``), elsewhere as Keras expects, outside."""
    return device.strategy.scope() if is_collective(device) else nullcontext()


def adapt_model(model: Any, device: Device) -> None:
    """Let Keras 3 ``fit`` a model compiled in a MultiWorkerMirroredStrategy scope; call
    ``fit`` inside that scope. No-op for other strategies.

    1. ``fit`` reduces the first distributed batch with ``strategy.reduce``, which fails on an
       ``(x, y)`` structure. With no strategy recorded on the model, Keras skips that step,
       takes the strategy from the scope, and builds at tracing time.
    2. Step logs are reduced with ``strategy.reduce("MEAN", value, axis=0)``, which fails on
       scalar metrics. Inside a replica they get a batch axis of length 1. The logs that
       callbacks see at the end of each epoch are read again outside the replicas from the
       metric variables, which TensorFlow sums over every worker: exact, and the same on
       every worker, so early stopping and LR plateaus decide alike everywhere.
    """
    if not is_collective(device):
        return
    tf = import_tensorflow()
    model._distribute_strategy = None  # see 1. above
    local_results = model.get_metrics_result

    def get_metrics_result() -> dict[str, Any]:
        results = local_results()
        if tf.distribute.in_cross_replica_context():
            return results
        return {name: tf.reshape(value, [1]) for name, value in results.items()}

    model.get_metrics_result = get_metrics_result


def worker_callbacks(device: Device) -> list[keras.callbacks.Callback]:
    """Callbacks every worker of a multi-worker fit needs (none on one worker)."""
    return [AverageLocalState(device.strategy)] if is_collective(device) else []


class AverageLocalState(keras.callbacks.Callback):
    """Average the float non-trainable variables (batch-norm moving statistics) over the
    workers before each validation.

    Gradients are all-reduced, so trainable weights stay equal everywhere, but each worker
    updates its batch-norm statistics from its own batches. Without this, every worker would
    validate a slightly different model and the chief would checkpoint its own statistics.
    Integer state (random seeds) is left alone.
    """

    def __init__(self, strategy: Any) -> None:
        super().__init__()
        self.strategy = strategy
        self._average: Any = None  # the compiled all-reduce, made on first use

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        variables = [v for v in self.model.non_trainable_variables if _is_float(v)]
        if not variables:
            return
        if self._average is None:
            self._average = _all_reduce_mean(self.strategy, variables)
        for variable, value in zip(variables, self._average()):
            variable.assign(self.strategy.experimental_local_results(value)[0])


def _is_float(variable: Any) -> bool:
    return "float" in str(variable.dtype)


def _all_reduce_mean(strategy: Any, variables: list[Any]) -> Callable[[], Any]:
    tf = import_tensorflow()

    def local_values() -> Any:
        context = tf.distribute.get_replica_context()
        return context.all_reduce("MEAN", [tf.identity(v.value) for v in variables])

    @tf.function
    def average() -> Any:
        return strategy.run(local_values)

    return average


@contextmanager
def worker_errors(device: Device) -> Iterator[None]:
    """TensorFlow's errors when another worker stops or cannot be reached, as one line."""
    if not is_collective(device):
        yield
        return
    tf = import_tensorflow()
    lost = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError)
    try:
        yield
    except (*lost, tf.errors.InternalError, tf.errors.CancelledError) as err:
        text = tf_error_text(err)
        if not isinstance(err, lost) and "collective" not in str(err).lower():
            raise
        raise ClusterError(
            f"multi-worker training stopped: {text}. Another worker stopped or cannot be "
            "reached: read its log, then start every worker again"
        ) from err


def wait_for_workers(device: Device) -> None:
    """Block until every worker gets here (a one-number all-reduce): after each fold, so the
    chief reads the shares once all are written; at the end, as a worker that quit while the
    chief writes the report would look like a failure to it."""
    if not is_collective(device):
        return
    tf = import_tensorflow()
    strategy = device.strategy

    @tf.function
    def one() -> Any:
        return strategy.reduce("SUM", strategy.run(lambda: tf.constant(1.0)), axis=None)

    with strategy.scope():
        one()
