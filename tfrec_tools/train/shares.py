"""Predictions split across the workers of a multi-worker run, gathered by the chief.

Worker k predicts every ``workers``-th file from the k-th (the chief is worker 0), writes its
share into ``RUN_DIR/.shares/`` (so every worker must reach the run folder: a shared disk or
``gs://``), and the chief reads them all after a barrier, checking that every id came back
exactly once.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

from tfrec_tools import fs, naming
from tfrec_tools.errors import ConfigError, ShardError
from tfrec_tools.train.distribute import wait_for_workers, worker_index
from tfrec_tools.train.strategy import Device
from tfrec_tools.train.tta import Predictions

SHARES_DIR = ".shares"
# What each kind of share holds, for messages.
KINDS = {"oof": "out-of-fold", "test": "test"}


def share_of(files: Sequence[str], index: int, workers: int) -> tuple[str, ...]:
    """The files worker ``index`` of ``workers`` predicts: every ``workers``-th from its own."""
    return tuple(files[index::workers])


def share_path(run_dir: str, fold: int, kind: str, index: int) -> str:
    return fs.join(run_dir, SHARES_DIR, f"fold-{fold}-{kind}-worker-{index}.npz")


def exchange(
    device: Device,
    run_dir: str,
    fold: int,
    files: dict[str, tuple[str, ...]],
    mine: dict[str, Predictions | None],
) -> dict[str, Predictions | None]:
    """Hand each kind's share (``"oof"``, ``"test"``) to the chief: the other workers write
    theirs, every worker waits for all (a barrier), then the chief gathers them in worker
    order. Other workers get None for every kind."""
    if not device.is_chief:
        index = worker_index(device)
        for kind, predictions in mine.items():
            if predictions is not None:
                mine_files = share_of(files[kind], index, device.workers)
                write_share(share_path(run_dir, fold, kind, index), mine_files, predictions)
    wait_for_workers(device)
    if not device.is_chief:
        return dict.fromkeys(mine)
    return {
        kind: gather(run_dir, fold, kind, files[kind], mine[kind], device.workers) for kind in mine
    }


def write_share(path: str, files: Sequence[str], predictions: Predictions) -> None:
    """Save one worker's predictions with the names of the files they came from."""
    arrays = {"ids": np.asarray(predictions.ids, dtype=str), "files": _names(files)}
    arrays |= {f"value::{name}": value for name, value in predictions.values.items()}
    arrays |= {f"label::{name}": value for name, value in (predictions.labels or {}).items()}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    fs.write_bytes_atomic(path, buffer.getvalue())


def gather(
    run_dir: str,
    fold: int,
    kind: str,
    files: Sequence[str],
    chief: Predictions | None,
    workers: int,
) -> Predictions | None:
    """The chief's own share and the other workers' shares of ``files``, in worker order.

    Raises:
        ConfigError: a worker's share is missing, or came from other files than expected.
        ShardError: an id was predicted by more than one worker.
    """
    parts = [(0, chief)] if chief is not None else []
    for index in range(1, workers):
        expected = share_of(files, index, workers)
        if expected:
            parts.append((index, _read_share(run_dir, fold, kind, index, expected)))
    if not parts:
        return None
    _check_once(parts, fold, kind)
    return _concat([p for _, p in parts])


def clear(run_dir: str) -> None:
    """Remove the shares folder (an earlier run's leftovers, or this run's once gathered)."""
    folder = fs.join(run_dir, SHARES_DIR)
    if fs.exists(folder):
        fs.rmtree(folder)


def _read_share(
    run_dir: str, fold: int, kind: str, index: int, expected: tuple[str, ...]
) -> Predictions:
    path = share_path(run_dir, fold, kind, index)
    try:
        data = np.load(io.BytesIO(fs.read_bytes(path)), allow_pickle=False)
    except OSError:
        raise ConfigError(
            f"fold {fold}: worker {index}'s {KINDS[kind]} predictions are not in {path}: every "
            "worker writes its share into the run folder, so start every worker with the same "
            "--out on a file system they all reach (a shared disk or gs://)"
        ) from None
    got = data["files"].tolist()
    if got != _names(expected).tolist():
        raise ConfigError(
            f"fold {fold}: worker {index} predicted its {KINDS[kind]} share from "
            f"{', '.join(got)}, but the chief expected {', '.join(_names(expected))}: start "
            "every worker with the same command (shards, --folds, --test)"
        )
    values = {k.removeprefix("value::"): data[k] for k in data.files if k.startswith("value::")}
    labels = {k.removeprefix("label::"): data[k] for k in data.files if k.startswith("label::")}
    return Predictions(tuple(data["ids"].tolist()), values, labels or None)


def _check_once(parts: list[tuple[int, Predictions]], fold: int, kind: str) -> None:
    workers: dict[str, list[int]] = {}
    for index, predictions in parts:
        for image_id in predictions.ids:
            workers.setdefault(image_id, []).append(index)
    twice = {i: w for i, w in workers.items() if len(w) > 1}
    if twice:
        shown = ", ".join(
            f"{i} (workers {' and '.join(map(str, w))})" for i, w in list(twice.items())[:5]
        )
        raise ShardError(
            f"fold {fold}: {len(twice)} {KINDS[kind]} ids were predicted by more than one "
            f"worker, e.g. {shown}: ids must be unique across the predicted shards"
        )


def _concat(parts: list[Predictions]) -> Predictions:
    first = parts[0]
    values = {h: np.concatenate([p.values[h] for p in parts]) for h in first.values}
    labels = None
    if first.labels is not None:
        labels = {h: np.concatenate([p.labels[h] for p in parts]) for h in first.labels}
    return Predictions(tuple(i for p in parts for i in p.ids), values, labels)


def _names(files: Sequence[str]) -> np.ndarray:
    return np.asarray([naming.base_name(f) for f in files], dtype=str)
