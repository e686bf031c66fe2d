"""Test-time augmentation: N passes over an ordered dataset, predictions aligned by image_id.

Ids travel with the images through the reader, so alignment never depends on a reshape of the
prediction array (the recipe's ``reshape(order='F')`` silently mixes images up as soon as the
last batch is partial or the order differs between passes). Every id must come back exactly N
times, with the same label on every pass, before anything is averaged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from tfrec_tools.errors import ShardError
from tfrec_tools.quiet import import_tensorflow
from tfrec_tools.read.pipeline import ReadConfig, get_dataset
from tfrec_tools.train.specs import HeadSpec


@dataclass(frozen=True)
class Predictions:
    """Averaged predictions, one row per id in first-seen order."""

    ids: tuple[str, ...]
    # head name -> [n] (binary/regression) or [n, classes] (multiclass; multilabel: [n, tags])
    values: dict[str, np.ndarray]
    # head name -> [n] true labels, [n, tags] multi-hot for multilabel (labeled data only)
    labels: dict[str, np.ndarray] | None


def predict_tta(
    model: Any,
    files: Sequence[str],
    read: ReadConfig,
    heads: tuple[HeadSpec, ...],
    *,
    passes: int,
    augment: Any,
    labeled: bool,
    manifest: Any = None,
    keys: Any = None,
) -> Predictions:
    """Predict ``files`` ``passes`` times (augmented when passes > 1) and average by id.

    Raises:
        ShardError: an id is missing from a pass or appears twice, or labels disagree.
    """
    rows: list[pd.DataFrame] = []
    for index in range(passes):
        config = replace(
            read,
            augment=augment if passes > 1 else None,
            training=False,
            ordered=True,
            repeat=False,
            drop_remainder=False,
            with_ids=True,  # (x, y, ids) from labeled shards, (x, ids) from unlabeled ones
            seed=None if read.seed is None else read.seed + index,
        )
        dataset = get_dataset(files, config, manifest, keys)
        rows.append(_one_pass(model, dataset, heads, labeled, read.batch_size))
    return _average(rows, heads, passes, labeled)


def _one_pass(model, dataset, heads, labeled: bool, batch_size: int) -> pd.DataFrame:
    ids, outputs, labels = [], {h.name: [] for h in heads}, {h.name: [] for h in heads}
    for batch in dataset:
        x, *rest = batch
        y, batch_ids = (rest[0] if len(rest) == 2 else None), rest[-1]
        if labeled and y is None:
            raise ShardError("out-of-fold prediction needs labeled shards; these hold no labels")
        ids.extend(i.decode("utf-8") for i in batch_ids.numpy())
        for head, value in zip(heads, _per_head(_predict_full(model, x, batch_size), heads)):
            outputs[head.name].append(_squeeze(np.asarray(value, dtype=np.float64), head))
        if labeled:
            for head, value in zip(heads, _per_head(y, heads)):
                labels[head.name].append(_label_rows(np.asarray(value), head))
    frame = pd.DataFrame({"id": ids})
    for head in heads:
        frame[f"pred::{head.name}"] = list(_concat(outputs[head.name]))
        if labeled:
            truth = _concat(labels[head.name])
            # a multi-hot row as a tuple: hashable, so passes can be compared per id
            frame[f"label::{head.name}"] = list(map(tuple, truth)) if truth.ndim > 1 else truth
    return frame


def _predict_full(model, x, batch_size: int):
    """``model.predict_on_batch(x)`` on a batch padded to ``batch_size`` rows, then cut back:
    one traced shape per model (a partial last batch would trace, and on a TPU compile, the
    predict step again, every fold and pass)."""
    tf = import_tensorflow()
    rows = int(tf.nest.flatten(x)[0].shape[0])
    if rows == batch_size:
        return model.predict_on_batch(x)

    def pad(tensor):
        extra = [[0, batch_size - rows]] + [[0, 0]] * (len(tensor.shape) - 1)
        return tf.pad(tensor, extra)

    outputs = model.predict_on_batch(tf.nest.map_structure(pad, x))
    return tf.nest.map_structure(lambda value: value[:rows], outputs)


def _per_head(value, heads: tuple[HeadSpec, ...]) -> list:
    """Model outputs or targets as a list in head order (dict, list or single tensor)."""
    if isinstance(value, dict):
        return [value[h.name] for h in heads]
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _squeeze(values: np.ndarray, head: HeadSpec) -> np.ndarray:
    """``[n, classes]`` (multiclass) or ``[n, tags]`` (multilabel); ``[n]`` otherwise."""
    if head.kind in ("multiclass", "multilabel"):
        return values.reshape(len(values), -1)
    return values.reshape(-1)


def _label_rows(values: np.ndarray, head: HeadSpec) -> np.ndarray:
    """``[n, tags]`` multi-hot rows (multilabel); ``[n]`` otherwise."""
    return values.reshape(len(values), -1) if head.kind == "multilabel" else values.reshape(-1)


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros((0,))


def _average(rows: list[pd.DataFrame], heads, passes: int, labeled: bool) -> Predictions:
    everything = pd.concat(rows, ignore_index=True)
    counts = Counter(everything["id"])
    wrong = {i: n for i, n in counts.items() if n != passes}
    if wrong:
        shown = ", ".join(f"{i} ({n}x)" for i, n in list(wrong.items())[:5])
        raise ShardError(
            f"test-time augmentation expected every id exactly {passes} times; {len(wrong)} "
            f"differ, e.g. {shown}: ids must be unique within the predicted shards"
        )
    order = list(dict.fromkeys(rows[0]["id"]))
    grouped = everything.groupby("id", sort=False)
    values = {
        h.name: np.stack(
            grouped[f"pred::{h.name}"]
            .apply(lambda s: np.mean(np.stack(s.to_list()), axis=0))
            .reindex(order)
            .to_list()
        )
        for h in heads
    }
    labels = None
    if labeled:
        labels = {}
        for head in heads:
            column = grouped[f"label::{head.name}"]
            if (column.nunique() > 1).any():
                raise ShardError(f"labels of {head.name!r} differ between TTA passes")
            truth = column.first().reindex(order).to_numpy()
            labels[head.name] = np.asarray(truth.tolist()) if head.kind == "multilabel" else truth
    return Predictions(tuple(order), values, labels)
