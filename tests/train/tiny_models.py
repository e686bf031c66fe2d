"""Tiny inputs, heads and a one-step fit shared by the model tests (32x32 images, 8 rows)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfrec_tools.train.models import compile_model
from tfrec_tools.train.specs import HeadSpec, InputSpec

SIZE = (32, 32)
NAMES = [
    *(f"efficientnet_b{i}" for i in range(8)),
    *(f"efficientnet_v2_{v}" for v in ("b0", "b1", "b2", "b3", "s", "m", "l")),
    "resnet50",
    "small_cnn",
]
BINARY, MULTI, REGRESSION = (
    HeadSpec("sick", "binary"),
    HeadSpec("grade", "multiclass", 3),
    HeadSpec("bmi", "regression"),
)
TABULAR = InputSpec(SIZE, numeric=("age", "score"), categorical=(("site", 3),))


def images(n: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *SIZE, 3), dtype=np.uint8)


def labels(head: HeadSpec, n: int = 8) -> np.ndarray:
    """Unbalanced on purpose: a [batch] vs [batch, 1] broadcast would change the metrics."""
    if head.kind == "regression":
        return np.linspace(-1, 2, n).astype(np.float32)
    if head.kind == "binary":
        return (np.arange(n) % 4 == 0).astype(np.int64)
    return (np.arange(n) % 4 % head.num_classes).astype(np.int64)


def tabular_x(n: int = 8) -> dict[str, np.ndarray]:
    age = np.linspace(20, 80, n).astype(np.float32)
    age[1] = np.nan
    score = np.linspace(0, 1e5, n).astype(np.float32)  # raw scale: overflows float16
    site = (np.arange(n) % 3).astype(np.int64)
    site[2], site[3] = -1, 7  # missing, and a code outside the vocabulary
    return {"image": images(n), "age": age, "score": score, "site": site}


def batch_of(y) -> int:
    return len(next(iter(y.values()))) if isinstance(y, dict) else len(y)


def fit(model, heads, x, y, *, validate: bool = True, **compile_options):
    """One step on one batch; validation (the val_ names) on the same batch."""
    compile_model(model, heads, learning_rate=1e-3, **compile_options)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_of(y))
    history = model.fit(data, validation_data=data if validate else None, epochs=1, verbose=0)
    return history.history
