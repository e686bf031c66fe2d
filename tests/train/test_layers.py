"""The custom layers: missing numeric values and unknown codes, and a .keras file without Lambda."""

from __future__ import annotations

import keras
import numpy as np

from tests.train.tiny_models import BINARY, MULTI, TABULAR, tabular_x
from tfrec_tools.train.models import ModelConfig, build_model


def test_numeric_nan_becomes_zero_plus_indicator_and_bad_codes_get_the_extra_row():
    model = build_model(ModelConfig(), TABULAR, (BINARY,))
    age = np.array([30.0, np.nan, np.inf], np.float32)
    score = np.array([1.0, 2.0, np.nan], np.float32)
    columns = model.get_layer("numeric_columns")([age, score]).numpy()
    log = np.log1p
    expected = [[log(30), log(1), 0, 0], [0, log(2), 1, 0], [0, 0, 1, 1]]
    np.testing.assert_allclose(columns, expected, rtol=1e-6)
    signed = model.get_layer("numeric_columns")([np.array([-3.0], np.float32)] * 2).numpy()
    np.testing.assert_allclose(signed, [[-np.log1p(3), -np.log1p(3), 0, 0]], rtol=1e-6)
    index = model.get_layer("site_index")(np.array([0, 2, -1, 3, 99], np.int64)).numpy()
    np.testing.assert_array_equal(index, [0, 2, 3, 3, 3])
    assert model.get_layer("site_embedding").input_dim == 4


def test_whole_model_saves_as_keras_file_without_lambda(tmp_path):
    """The custom layers (preprocessing, NaN handling, category index) are serializable."""
    model = build_model(ModelConfig(), TABULAR, (MULTI,))
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    x = tabular_x()
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)
