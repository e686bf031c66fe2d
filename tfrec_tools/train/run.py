"""`train()`: a whole K-fold run from shards to OOF scores, submission, plots and report."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tfrec_tools import fs, naming
from tfrec_tools.errors import ConfigError
from tfrec_tools.quiet import import_keras, import_tensorflow
from tfrec_tools.shard_files import load_manifest, resolve_files
from tfrec_tools.train import outputs, shares
from tfrec_tools.train.callbacks import checkpoint_path
from tfrec_tools.train.config import TrainConfig
from tfrec_tools.train.data import (
    TrainData,
    check_test_inputs,
    check_test_size,
    chosen_splits,
    training_data,
)
from tfrec_tools.train.distribute import check_worker_shares, wait_for_workers, worker_errors
from tfrec_tools.train.kfold import FoldResult, Plan, make_plan, run_fold
from tfrec_tools.train.predict import ModelCard, save_card
from tfrec_tools.train.strategy import Device, cluster_from_env, detect_device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    run_dir: str
    device: str
    folds: tuple[FoldResult, ...]
    scores: outputs.Scores | None  # None: a worker that is not the chief
    submission_path: str | None
    report_path: str | None


def run_training(config: TrainConfig, say: Callable[[str], None] = log.info) -> TrainResult:
    """Run K-fold training as ``config`` says and write everything into ``config.run_dir``.

    Raises:
        ConfigError: options that the shards or the run folder cannot satisfy.
        ShardError: unreadable shards, or TTA predictions that do not line up with the ids.
        ClusterError: a worker of a multi-worker run stopped or could not be reached.
    """
    # Several workers: the strategy first, as collective ops are set up before any other op.
    # One machine: after the cheap checks, which then fail before a TPU is initialised.
    device = detect_device() if cluster_from_env() else None
    if device is None or device.is_chief:
        _prepare_run_dir(config)
    data = training_data(
        config.shards,
        image_size=config.image_size,
        num_folds=config.num_folds,
        seed=config.seed,
        threshold=config.threshold,
    )
    splits = chosen_splits(data, config.folds)
    if config.fold_weights is not None:  # a wrong count must fail now, not after training
        outputs.normalised_weights(config.fold_weights, [s.fold for s in splits])
    test_files = _test_files(config, data)
    device = device or detect_device()
    check_worker_shares(splits, device, say)
    say(f"device: {device.describe()}; global batch {device.global_batch(config.batch_size)}")
    _seed(config, device)
    if device.is_chief:
        outputs.write_json(config.to_json(), fs.join(config.run_dir, "config.json"))
    with worker_errors(device), _callback_dir(config, device) as callback_dir:
        plan = make_plan(config, data, device, test_files, callback_dir)
        results = tuple(run_fold(plan, split, say) for split in splits)
        result = None
        if device.is_chief:
            shares.clear(config.run_dir)
            result = _finish(plan, results, say)
        wait_for_workers(device)
    if result is None:
        say("done: the chief writes the predictions and the report")
        return TrainResult(config.run_dir, device.describe(), results, None, None, None)
    return result


def _card(plan: Plan, results: tuple[FoldResult, ...]) -> ModelCard:
    data, config = plan.data, plan.config
    return ModelCard(
        config.model,
        data.heads,
        data.inputs,
        data.classes,
        tuple(r.fold for r in results),
        config.augment,
        config.seed,
        data.vocabularies,
        {str(r.fold): fs.sha256(checkpoint_path(config.run_dir, r.fold)) for r in results},
    )


def _prepare_run_dir(config: TrainConfig) -> None:
    """Refuse a folder holding results unless --overwrite, then clear them and any workers'
    prediction shares left by a failed run (the chief's job, before any worker can write)."""
    _check_folders(config)
    fs.makedirs(config.run_dir)
    existing = [
        name
        for name in fs.listdir(config.run_dir)
        if outputs.is_run_file(name, outputs.RESULT_FILES)
    ]
    if existing and not config.overwrite:
        raise ConfigError(
            f"{config.run_dir} already holds the results of a run ({', '.join(existing[:3])}); "
            "pass --overwrite to replace them, or choose another --out"
        )
    for name in existing:
        fs.remove(fs.join(config.run_dir, name))
    shares.clear(config.run_dir)  # a failed run's: its workers' shares must not be gathered


def _check_folders(config: TrainConfig) -> None:
    """The run folder and the report folder must be folders (or not exist yet), and the report
    folder must not take the name of a file the run writes."""
    if fs.exists(config.run_dir) and not fs.isdir(config.run_dir):
        raise ConfigError(
            f"--out {config.run_dir} is a file: the run folder must be a folder (new, or holding "
            "an earlier run); choose another --out"
        )
    report_dir = config.report_dir
    if report_dir is None:
        return
    if fs.exists(report_dir) and not fs.isdir(report_dir):
        raise ConfigError(
            f"--report-dir {report_dir} is a file: the report goes into a folder (created if "
            "missing); choose another --report-dir"
        )
    path = report_dir.rstrip("/\\")
    name = naming.base_name(path)
    if outputs.is_run_file(name) and _same_folder(naming.folder_name(path), config.run_dir):
        raise ConfigError(
            f"--report-dir {report_dir} is where the run writes its {name}: choose another "
            "--report-dir"
        )


def _same_folder(a: str, b: str) -> bool:
    if fs.is_remote(a) or fs.is_remote(b):
        return a.rstrip("/") == b.rstrip("/")
    return os.path.realpath(a) == os.path.realpath(b)


@contextmanager
def _callback_dir(config: TrainConfig, device: Device) -> Iterator[str]:
    """The run folder on the chief; elsewhere a scratch folder, removed afterwards."""
    if device.is_chief:
        yield config.run_dir
        return
    with tempfile.TemporaryDirectory(prefix="tfrec-worker-") as scratch:
        yield scratch


def _test_files(config: TrainConfig, data: TrainData) -> tuple[str, ...]:
    if not config.test:
        return ()
    files = tuple(resolve_files(list(config.test), role="predict"))
    check_test_size(load_manifest(files), data.image_size, given=config.image_size is not None)
    check_test_inputs(files, data.inputs, data.vocabularies)
    return files


def _seed(config: TrainConfig, device: Device) -> None:
    """Seed Python, NumPy and TensorFlow; op determinism and mixed precision on request."""
    keras = import_keras()
    tf = import_tensorflow()
    os.environ["PYTHONHASHSEED"] = str(config.seed)
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    policy = "float32"
    if config.mixed_precision:
        policy = "mixed_float16" if device.kind == "GPU" else "mixed_bfloat16"
        if device.kind == "CPU":
            log.warning("mixed precision on CPU is slow; it pays off on TPU and recent GPUs")
    keras.mixed_precision.set_global_policy(policy)


def _finish(plan: Plan, results: tuple[FoldResult, ...], say) -> TrainResult:
    from tfrec_tools.train.report import write_report

    config, data = plan.config, plan.data
    save_card(_card(plan, results), config.run_dir)
    oof = [(r.fold, r.oof) for r in results]
    outputs.write_csv(outputs.oof_frame(oof, data.heads, data.classes), _out(config, "oof.csv"))
    scores = outputs.scores(oof, data.heads)
    outputs.write_json(
        {"per_fold": scores.per_fold, "overall": scores.overall}, _out(config, "metrics.json")
    )
    submission = None
    if plan.test_files:
        weights = outputs.normalised_weights(config.fold_weights, [r.fold for r in results])
        outputs.write_json(
            {str(k): v for k, v in weights.items()}, _out(config, "fold_weights.json")
        )
        blended = outputs.blend([(r.fold, r.test) for r in results], weights, data.heads)
        submission = _out(config, "submission.csv")
        outputs.write_csv(outputs.submission_frame(blended, data.heads, data.classes), submission)
    for head, values in scores.overall.items():
        say(f"OOF {head}: " + ", ".join(f"{k} {v:.4f}" for k, v in values.items()))
    report = write_report(plan, results, scores, submission)
    return TrainResult(config.run_dir, plan.device.describe(), results, scores, submission, report)


def _out(config: TrainConfig, name: str) -> str:
    return fs.join(config.run_dir, name)
