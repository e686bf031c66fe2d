"""Each head kind: a one-step fit logs the metric ``monitor_for`` watches, as numpy computes it."""

from __future__ import annotations

import numpy as np
import pytest

from tests.train.tiny_models import BINARY, MULTI, REGRESSION, SIZE, fit, images, labels
from tfrec_tools.train.heads import monitor_for
from tfrec_tools.train.models import ModelConfig, build_model
from tfrec_tools.train.specs import HeadSpec, InputSpec


@pytest.mark.parametrize("head", [BINARY, MULTI, REGRESSION], ids=lambda h: h.kind)
def test_one_head_fits_and_logs_the_monitored_metric(head):
    model = build_model(ModelConfig(), InputSpec(SIZE), (head,))
    x, y = images(), labels(head)
    history = fit(model, (head,), x, y)
    monitor, mode = monitor_for((head,))
    assert monitor in history and monitor[4:] in history
    assert mode == ("min" if head.kind == "regression" else "max")
    # labels are [batch], outputs [batch, k]: the validation pass (after the step, on the
    # same batch) must log what numpy computes from the outputs
    p = model(x, training=False).numpy()
    if head.kind == "binary":
        bce = -np.mean(y * np.log(p[:, 0]) + (1 - y) * np.log(1 - p[:, 0]))
        assert history["val_loss"][0] == pytest.approx(bce, rel=1e-4)
        assert history["val_accuracy"][0] == pytest.approx(np.mean((p[:, 0] > 0.5) == y))
    elif head.kind == "multiclass":
        assert p.shape == (8, 3)
        assert history["val_accuracy"][0] == pytest.approx(np.mean(p.argmax(1) == y))
    else:
        rmse = np.sqrt(np.mean((p[:, 0] - y) ** 2))
        assert history["val_rmse"][0] == pytest.approx(rmse, rel=1e-4)


def test_a_multilabel_head_fits_and_logs_f1_at_its_threshold():
    head = HeadSpec("tags", "multilabel", 4, threshold=0.45)
    model = build_model(ModelConfig(), InputSpec(SIZE), (head,))
    x = images()
    y = (np.arange(32).reshape(8, 4) % 3 == 0).astype(np.int64)  # int64 multi-hot, as read
    history = fit(model, (head,), x, y)
    assert monitor_for((head,)) == ("val_f1_micro", "max")
    assert {"val_f1_micro", "val_f1_macro", "val_auc", "f1_micro"} <= set(history)
    p = model(x, training=False).numpy()
    assert p.shape == (8, 4) and ((p > 0) & (p < 1)).all()  # sigmoids, not a softmax
    predicted, truth = p > 0.45, y.astype(bool)
    tp = (predicted & truth).sum()
    f1 = 2 * tp / (predicted.sum() + truth.sum())
    assert history["val_f1_micro"][0] == pytest.approx(f1, abs=1e-5)
    bce = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert history["val_loss"][0] == pytest.approx(bce, rel=1e-4)
