"""Scores of out-of-fold predictions, and the prediction columns written to CSV files."""

from __future__ import annotations

import math

import numpy as np

from tfrec_tools.train.models import HeadSpec

_EPS = 1e-7


def score(head: HeadSpec, truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """binary: auc, accuracy, log_loss; multiclass: accuracy, log_loss; regression: rmse.
    A metric that is undefined for the data (AUC with one class present) is NaN."""
    from sklearn.metrics import log_loss, roc_auc_score

    truth = np.asarray(truth)
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


def main_metric(head: HeadSpec) -> tuple[str, str]:
    """The metric that ranks runs, and whether higher ("max") or lower ("min") is better."""
    return {"binary": ("auc", "max"), "multiclass": ("accuracy", "max")}.get(
        head.kind, ("rmse", "min")
    )


def prediction_columns(
    head: HeadSpec, values: np.ndarray, classes: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """CSV columns for one head: ``{name}`` holds the probability (binary), the value
    (regression) or the predicted class name (multiclass, with ``{name}_p_{class}`` columns
    for the class probabilities)."""
    if head.kind != "multiclass":
        return {head.name: values}
    names = classes or tuple(str(i) for i in range(values.shape[1]))
    columns = {f"{head.name}_p_{name}": values[:, i] for i, name in enumerate(names)}
    columns[head.name] = np.asarray(names)[values.argmax(axis=1)]
    return columns
