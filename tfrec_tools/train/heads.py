"""What each head kind needs: its output activation, loss, metrics, and the metric to monitor."""

from __future__ import annotations

from typing import Any

from tfrec_tools.errors import ConfigError
from tfrec_tools.train.specs import HeadSpec

# multilabel: one independent sigmoid per tag, binary cross-entropy averaged over the tags
ACTIVATIONS = {
    "binary": "sigmoid",
    "multiclass": "softmax",
    "regression": "linear",
    "multilabel": "sigmoid",
}
LOSSES = {
    "binary": "binary_crossentropy",
    "multiclass": "sparse_categorical_crossentropy",
    "regression": "mean_squared_error",
    "multilabel": "binary_crossentropy",
}
# What Keras 3 logs for the compiled model (checked by a one-step fit in the tests).
# multilabel: micro-F1 at the head's threshold, the score the predicted tag sets get (AUC
# would rank probabilities, not the sets written to the CSVs).
MONITORS = {
    "binary": ("val_auc", "max"),
    "multiclass": ("val_accuracy", "max"),
    "regression": ("val_rmse", "min"),
    "multilabel": ("val_f1_micro", "max"),
}


def head_layer(keras: Any, head: HeadSpec, x: Any) -> Any:
    """float32 so the activation and the loss stay exact under mixed precision."""
    return keras.layers.Dense(
        head.num_classes, activation=ACTIVATIONS[head.kind], dtype="float32", name=head.name
    )(x)


def head_metrics(keras: Any, head: HeadSpec) -> list[Any]:
    """Fresh metric objects (Keras cannot share one between heads). multilabel: micro- and
    macro-F1 with tags above the head's threshold predicted (over the epoch's counts; the
    macro average counts a tag absent from the labels as 0), and AUC per tag, averaged."""
    m = keras.metrics
    if head.kind == "binary":
        return [m.AUC(name="auc"), m.BinaryAccuracy(name="accuracy")]
    if head.kind == "multiclass":
        return [m.SparseCategoricalAccuracy(name="accuracy")]
    if head.kind == "multilabel":
        return [
            m.F1Score(average="micro", threshold=head.threshold, name="f1_micro"),
            m.F1Score(average="macro", threshold=head.threshold, name="f1_macro"),
            m.AUC(multi_label=True, num_labels=head.num_classes, name="auc"),
        ]
    return [m.RootMeanSquaredError(name="rmse")]


def monitor_for(heads: tuple[HeadSpec, ...]) -> tuple[str, str]:
    """The validation metric to watch (checkpoint, early stopping) and its mode: "val_auc"
    (one binary head), "val_accuracy" (multiclass), "val_rmse" (regression), "val_f1_micro"
    (multilabel), "val_loss" (several heads: the weighted sum of their losses), with "max"
    or "min"."""
    if not heads:
        raise ConfigError("`heads` must hold at least one HeadSpec. Received: ()")
    if len(heads) > 1:
        return ("val_loss", "min")
    return MONITORS[heads[0].kind]
