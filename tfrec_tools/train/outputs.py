"""The files a run leaves in RUN_DIR: oof.csv, metrics.json, submission.csv, fold_weights.json."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tfrec_tools import fs
from tfrec_tools.errors import ConfigError
from tfrec_tools.train.metrics import main_metric, prediction_columns, score, truth_column
from tfrec_tools.train.specs import HeadSpec
from tfrec_tools.train.tta import Predictions

ID_COLUMN = "image_id"
# What a finished run leaves (another run there needs --overwrite); config.json alone, from a
# run that failed early, does not count.
RESULT_FILES = (
    "model.json",
    "oof.csv",
    "metrics.json",
    "history.csv",
    "submission.csv",
    "fold_weights.json",
)
# Everything `tfrec train` writes into RUN_DIR, besides the fold weights and reports/.
RUN_FILES = (*RESULT_FILES, "config.json", "lr.png", "curves.png")


@dataclass(frozen=True)
class Baseline:
    """A head's OOF main metric beside the score of a predictor that learned nothing, on the
    same labels: the most common class (multiclass accuracy), a constant score (binary AUC
    0.5), the mean label (regression RMSE), the best constant tag set (multilabel micro-F1).
    ``margin``: 2 standard errors of that score on this many labels, so a model that learned
    nothing rarely (~2.5 %) clears it by chance."""

    metric: str
    value: float
    trivial: float
    margin: float
    predictor: str  # what the trivial predictor does, for messages

    @property
    def learned(self) -> bool:
        """False when ``value`` is no better than ``trivial`` (+- margin); True when NaN
        (undefined for these labels, e.g. AUC with one class present: nothing to judge)."""
        if math.isnan(self.value):
            return True
        if self.metric == "rmse":
            return self.value < self.trivial - self.margin
        return self.value > self.trivial + self.margin


@dataclass(frozen=True)
class Scores:
    per_fold: dict[int, dict[str, dict[str, float]]]  # fold -> head -> metric -> value
    overall: dict[str, dict[str, float]]  # head -> metric -> value
    baselines: dict[str, Baseline] = field(default_factory=dict)  # head -> its Baseline


def oof_frame(
    folds: Sequence[tuple[int, Predictions]],
    heads: tuple[HeadSpec, ...],
    classes: dict[str, tuple[str, ...]],
) -> pd.DataFrame:
    """One row per validation image: id, fold, true label(s), prediction column(s)."""
    frames = []
    for fold, predictions in folds:
        frame = pd.DataFrame({ID_COLUMN: predictions.ids, "fold": fold})
        for head in heads:
            truth = predictions.labels[head.name]
            names = classes.get(head.name, ())
            frame[f"{head.name}_true"] = truth_column(head, truth, names)
            frame = frame.assign(
                **prediction_columns(head, predictions.values[head.name], names or ())
            )
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def scores(folds: Sequence[tuple[int, Predictions]], heads: tuple[HeadSpec, ...]) -> Scores:
    per_fold = {
        fold: {h.name: score(h, p.labels[h.name], p.values[h.name]) for h in heads}
        for fold, p in folds
    }
    overall, baselines = {}, {}
    for head in heads:
        truth = np.concatenate([p.labels[head.name] for _, p in folds])
        values = np.concatenate([p.values[head.name] for _, p in folds])
        overall[head.name] = score(head, truth, values)
        baselines[head.name] = baseline(head, truth, overall[head.name][main_metric(head)[0]])
    return Scores(per_fold, overall, baselines)


def baseline(head: HeadSpec, truth: np.ndarray, value: float) -> Baseline:
    """``value`` (the head's main metric on ``truth``) beside the trivial predictor's score."""
    truth = np.asarray(truth)
    n = len(truth)
    if head.kind == "multilabel":
        return _tag_baseline(truth, value)
    if head.kind == "regression":
        mean, spread = float(np.mean(truth)), float(np.std(truth))
        return Baseline("rmse", value, spread, 0.0, f"always predicting the mean label {mean:.4g}")
    if head.kind == "binary":
        positives = int(np.sum(truth.astype(bool)))
        negatives = n - positives
        margin = 2 * math.sqrt((n + 1) / (12 * negatives * positives)) if n > positives > 0 else 0
        return Baseline("auc", value, 0.5, margin, "a constant score")
    share = float(np.bincount(truth.astype(int)).max() / n)
    margin = 2 * math.sqrt(share * (1 - share) / n)
    return Baseline("accuracy", value, share, margin, "always predicting the most common class")


def _tag_baseline(truth: np.ndarray, value: float) -> Baseline:
    """The micro-F1 of the best constant answer: the k most frequent tags for every image,
    k chosen on these labels, what a model that learned only the tags' priors gives at its
    best threshold. With TP the true tags among the n k predicted, F1 = 2 TP / (n k + true
    tags). Margin: 2 standard errors of an F1 taken as a share of the true tags."""
    truth = truth.astype(bool).reshape(len(truth), -1)
    total = int(truth.sum())
    counts = np.sort(truth.sum(axis=0))[::-1]
    k = np.arange(1, len(counts) + 1)
    tp = np.cumsum(counts)
    f1 = 2 * tp / np.maximum(len(truth) * k + total, 1)
    top = int(np.argmax(f1)) + 1 if total else 0
    best = float(f1[top - 1]) if top else 0.0
    margin = 2 * math.sqrt(best * (1 - best) / max(total, 1))
    what = f"always predicting the {top} most common tag{'s' if top > 1 else ''}"
    return Baseline("f1_micro", value, best, margin, what if top else "predicting no tag")


def normalised_weights(weights: Sequence[float] | None, folds: Sequence[int]) -> dict[int, float]:
    """Fold -> weight summing to 1; equal when none are given."""
    if weights is None:
        return {fold: 1 / len(folds) for fold in folds}
    if len(weights) != len(folds):
        raise ConfigError(
            f"--fold-weights gives {len(weights)} weights for {len(folds)} folds "
            f"({', '.join(map(str, folds))}): give one per fold"
        )
    total = float(sum(weights))
    return {fold: w / total for fold, w in zip(folds, weights)}


def blend(
    tests: Sequence[tuple[int, Predictions]], weights: dict[int, float], heads
) -> Predictions:
    """The weighted mean of the folds' test predictions, aligned by id."""
    ids = tests[0][1].ids
    values = {h.name: np.zeros_like(tests[0][1].values[h.name]) for h in heads}
    for fold, predictions in tests:
        if predictions.ids != ids:
            raise ConfigError(f"fold {fold} predicted other test ids than fold {tests[0][0]}")
        for head in heads:
            values[head.name] = values[head.name] + weights[fold] * predictions.values[head.name]
    return Predictions(ids, values, None)


def submission_frame(
    predictions: Predictions, heads: tuple[HeadSpec, ...], classes: dict[str, tuple[str, ...]]
) -> pd.DataFrame:
    """id + prediction column(s), sorted by id so reruns give the same file."""
    frame = pd.DataFrame({ID_COLUMN: predictions.ids})
    for head in heads:
        frame = frame.assign(
            **prediction_columns(head, predictions.values[head.name], classes.get(head.name, ()))
        )
    return frame.sort_values(ID_COLUMN, kind="stable").reset_index(drop=True)


def is_run_file(name: str, files: Sequence[str] = RUN_FILES) -> bool:
    """Whether a file named ``name`` in a run folder is one of ``files`` or a fold's weights
    (``fold-K.weights.h5``)."""
    return name in files or (name.startswith("fold-") and name.endswith(".weights.h5"))


def write_csv(frame: pd.DataFrame, path: str) -> None:
    fs.write_bytes_atomic(path, frame.to_csv(index=False, float_format="%.6g").encode("utf-8"))


def write_json(data: Any, path: str) -> None:
    text = json.dumps(data, indent=2, sort_keys=True, default=_plain) + "\n"
    fs.write_bytes_atomic(path, text.encode("utf-8"))


def _plain(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return str(value)
