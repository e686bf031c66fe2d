"""Starting weights: whole-model and backbone files, files that fit nothing, ImageNet offline."""

from __future__ import annotations

import numpy as np
import pytest

from tests.train.tiny_models import BINARY, MULTI, REGRESSION, SIZE, TABULAR, tabular_x
from tfrec_tools.errors import ConfigError
from tfrec_tools.train.models import ModelConfig, build_model
from tfrec_tools.train.specs import InputSpec


def test_whole_model_weights_round_trip(tmp_path):
    heads = (BINARY, REGRESSION)
    model = build_model(ModelConfig(), TABULAR, heads)
    rng = np.random.default_rng(0)  # every array, BatchNorm statistics too, away from its init
    model.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(w.dtype) for w in model.weights])
    path = str(tmp_path / "fold0.weights.h5")
    model.save_weights(path)
    loaded = build_model(ModelConfig(weights=path), TABULAR, heads)
    for saved, got in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(saved.numpy(), got.numpy())
    x = tabular_x()
    before, after = model(x, training=False), loaded(x, training=False)
    np.testing.assert_array_equal(before["sick"].numpy(), after["sick"].numpy())
    np.testing.assert_array_equal(before["bmi"].numpy(), after["bmi"].numpy())


def test_backbone_weights_file_loads_into_the_backbone_only(tmp_path):
    model = build_model(ModelConfig(), InputSpec(SIZE), (MULTI,))
    backbone = model.get_layer("small_cnn_backbone")
    path = str(tmp_path / "backbone.weights.h5")
    backbone.save_weights(path)
    loaded = build_model(ModelConfig(weights=path), InputSpec(SIZE), (MULTI,))
    for saved, got in zip(backbone.weights, loaded.get_layer("small_cnn_backbone").weights):
        np.testing.assert_array_equal(saved.numpy(), got.numpy())
    head_before, head_after = model.get_layer("grade").kernel, loaded.get_layer("grade").kernel
    assert not np.allclose(head_before.numpy(), head_after.numpy())  # heads start fresh


def test_weights_file_that_fits_nothing_or_is_missing(tmp_path):
    other = build_model(ModelConfig(), InputSpec(SIZE), (BINARY, REGRESSION))
    path = str(tmp_path / "other.weights.h5")
    other.save_weights(path)
    with pytest.raises(ConfigError, match="fit neither the model"):
        build_model(ModelConfig(weights=path), TABULAR, (BINARY,))
    missing = str(tmp_path / "nope.weights.h5")
    with pytest.raises(ConfigError) as err:
        build_model(ModelConfig(weights=missing), InputSpec(SIZE), (BINARY,))
    assert str(err.value) == f"`weights` file not found: {missing}"


def test_imagenet_download_failure_is_one_config_error():
    """This machine has no network: the real keras download fails. Skip if it ever works."""
    try:
        build_model(
            ModelConfig(name="efficientnet_b0", weights="imagenet"), InputSpec(SIZE), (BINARY,)
        )
    except ConfigError as err:
        message = str(err)
    else:
        pytest.skip("the imagenet weights downloaded: this machine has network access")
    assert message.startswith("could not download the imagenet weights of 'efficientnet_b0' (")
    assert message.endswith(
        "): pass --weights none, or --weights PATH to a local .weights.h5 file "
        "(download it on a machine with internet, e.g. from keras.applications)"
    )
    assert "\n" not in message
