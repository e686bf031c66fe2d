"""The tabular branch: image + features with missing values, and wide-and-deep without an image."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.train.tiny_models import BINARY, MULTI, REGRESSION, TABULAR, fit, labels, tabular_x
from tfrec_tools.train.heads import monitor_for
from tfrec_tools.train.models import ModelConfig, build_model
from tfrec_tools.train.specs import InputSpec


def test_multi_input_multi_output_fits_with_missing_values():
    heads = (BINARY, REGRESSION)
    model = build_model(ModelConfig(), TABULAR, heads)
    assert sorted(model.input) == ["age", "image", "score", "site"]
    assert model.input["age"].dtype == "float32" and model.input["site"].dtype == "int64"
    x = tabular_x()
    y = {"sick": labels(BINARY), "bmi": labels(REGRESSION)}
    history = fit(model, heads, x, y, loss_weights={"sick": 1.0, "bmi": 0.5})
    assert {"val_loss", "val_sick_auc", "val_sick_accuracy", "val_bmi_rmse"} <= set(history)
    assert monitor_for(heads) == ("val_loss", "min")
    weighted = history["val_sick_loss"][0] + 0.5 * history["val_bmi_loss"][0]
    assert history["val_loss"][0] == pytest.approx(weighted, rel=1e-5)  # loss_weights apply
    out = model(x, training=False)
    assert sorted(out) == ["bmi", "sick"] and tuple(out["sick"].shape) == (8, 1)
    assert all(np.all(np.isfinite(v.numpy())) for v in out.values())


def test_wide_and_deep_adds_a_linear_part_to_an_mlp():
    spec = InputSpec(None, numeric=("age", "score"), categorical=(("site", 3),))
    model = build_model(ModelConfig(tabular_units=8), spec, (MULTI,))
    assert sorted(model.input) == ["age", "score", "site"]
    x = {k: v for k, v in tabular_x().items() if k != "image"}
    history = fit(model, (MULTI,), x, labels(MULTI), validate=False)
    assert "accuracy" in history and np.isfinite(history["loss"][0])
    parts = keras.Model(
        model.input, [model.get_layer("grade_wide").output, model.get_layer("grade_deep").output]
    )
    wide, deep = (p.numpy() for p in parts(x, training=False))
    np.testing.assert_allclose(
        model(x, training=False).numpy(), tf.nn.softmax(wide + deep).numpy(), rtol=1e-5, atol=1e-6
    )
    assert model.get_layer("grade_wide").input.shape[-1] == 4 + 4  # values+flags, one-hot(3+1)
