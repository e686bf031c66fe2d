"""Scores of out-of-fold predictions, and the prediction columns written to CSV files."""

from __future__ import annotations

import math

import numpy as np

from tfrec_tools.train.specs import HeadSpec

_EPS = 1e-7


def score(head: HeadSpec, truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """binary: auc, accuracy, log_loss; multiclass: accuracy, log_loss; regression: rmse;
    multilabel: f1_micro, f1_macro, map (see ``multilabel_scores``). A metric that is
    undefined for the data (AUC with one class present) is NaN."""
    from sklearn.metrics import log_loss, roc_auc_score

    truth = np.asarray(truth)
    if head.kind == "multilabel":
        return multilabel_scores(truth, predicted, head.threshold)
    if head.kind == "regression":
        return {"rmse": float(np.sqrt(np.mean((truth.astype(float) - predicted) ** 2)))}
    if head.kind == "binary":
        probs = np.clip(predicted, _EPS, 1 - _EPS)
        auc = roc_auc_score(truth, probs) if len(set(truth.tolist())) == 2 else math.nan
        return {
            "auc": float(auc),
            "accuracy": float(np.mean((probs >= 0.5) == truth.astype(bool))),
            "log_loss": float(log_loss(truth, probs, labels=[0, 1])),
        }
    probs = np.clip(predicted, _EPS, 1)
    probs = probs / probs.sum(axis=1, keepdims=True)
    return {
        "accuracy": float(np.mean(probs.argmax(axis=1) == truth)),
        "log_loss": float(log_loss(truth, probs, labels=list(range(head.num_classes)))),
    }


def multilabel_scores(
    truth: np.ndarray, probabilities: np.ndarray, threshold: float
) -> dict[str, float]:
    """Scores of ``[n, tags]`` probabilities against multi-hot ``truth``, a tag predicted when
    its probability is above ``threshold``:

    - ``f1_micro``: F1 over every (image, tag) pair;
    - ``f1_macro``: the mean F1 of the tags present in ``truth`` (absent ones have none);
    - ``map``: the mean average precision (sklearn's ``average_precision_score``, which needs
      no threshold) of the tags present in ``truth``.

    NaN when undefined (no tag present, or nothing true and nothing predicted)."""
    from sklearn.metrics import average_precision_score

    truth = np.asarray(truth).astype(bool).reshape(len(truth), -1)
    probabilities = np.asarray(probabilities).reshape(truth.shape)
    predicted = probabilities > threshold
    tp = (truth & predicted).sum(axis=0)
    fp = (~truth & predicted).sum(axis=0)
    fn = (truth & ~predicted).sum(axis=0)
    present = np.flatnonzero(truth.any(axis=0))
    per_tag = [_f1(tp[t], fp[t], fn[t]) for t in present]
    precision = [average_precision_score(truth[:, t], probabilities[:, t]) for t in present]
    return {
        "f1_micro": _f1(tp.sum(), fp.sum(), fn.sum()),
        "f1_macro": float(np.mean(per_tag)) if per_tag else math.nan,
        "map": float(np.mean(precision)) if precision else math.nan,
    }


def _f1(tp: int, fp: int, fn: int) -> float:
    denominator = 2 * tp + fp + fn
    return float(2 * tp / denominator) if denominator else math.nan


def main_metric(head: HeadSpec) -> tuple[str, str]:
    """The metric that ranks runs, and whether higher ("max") or lower ("min") is better."""
    return {
        "binary": ("auc", "max"),
        "multiclass": ("accuracy", "max"),
        "multilabel": ("f1_micro", "max"),
    }.get(head.kind, ("rmse", "min"))


def prediction_columns(
    head: HeadSpec, values: np.ndarray, classes: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """CSV columns for one head: ``{name}`` holds the probability (binary), the value
    (regression), the predicted class name (multiclass, with ``{name}_p_{class}`` columns
    for the class probabilities) or the predicted tags, space-separated (multilabel: those
    above the head's threshold, with ``{name}_p_{tag}`` columns for every tag)."""
    if head.kind not in ("multiclass", "multilabel"):
        return {head.name: values}
    names = classes or tuple(str(i) for i in range(values.shape[1]))
    columns = {f"{head.name}_p_{name}": values[:, i] for i, name in enumerate(names)}
    if head.kind == "multilabel":
        columns[head.name] = tag_sets(values > head.threshold, names)
    else:
        columns[head.name] = np.asarray(names)[values.argmax(axis=1)]
    return columns


def truth_column(head: HeadSpec, truth: np.ndarray, classes: tuple[str, ...]) -> np.ndarray:
    """The true labels as ``oof.csv`` writes them: class names, space-separated tags
    (multilabel), or the values."""
    if head.kind == "multilabel":
        names = classes or tuple(str(i) for i in range(np.asarray(truth).shape[1]))
        return tag_sets(np.asarray(truth).astype(bool), names)
    return np.asarray(classes)[truth.astype(int)] if classes else truth


def tag_sets(hot: np.ndarray, tags: tuple[str, ...]) -> np.ndarray:
    """``[n, tags]`` booleans -> n strings of the tags that are on, space-separated ("" for
    none), in vocabulary order."""
    return np.asarray([" ".join(t for t, on in zip(tags, row) if on) for row in hot.tolist()])
