"""Model assembly: ModelConfig checks, inputs and head names, augmentation inside the model,
loss weights, mixed precision, and freezing the backbone. CPU, 32x32 images, tiny batches."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.train.tiny_models import BINARY, MULTI, NAMES, SIZE, TABULAR, images, tabular_x
from tfrec_tools.errors import ConfigError
from tfrec_tools.read.augment import PRESETS
from tfrec_tools.train import models, registry
from tfrec_tools.train.models import ModelConfig, build_model, compile_model
from tfrec_tools.train.specs import HeadSpec, InputSpec


def test_unknown_model_lists_the_choices():
    with pytest.raises(ConfigError) as err:
        ModelConfig(name="effnet")
    assert str(err.value) == f"unknown model 'effnet'. Choices: {', '.join(sorted(NAMES))}"


def test_small_cnn_has_no_imagenet_weights():
    with pytest.raises(ConfigError) as err:
        ModelConfig(name="small_cnn", weights="imagenet")
    assert str(err.value) == (
        "model 'small_cnn' has no pretrained weights: `weights` must be None or a path to a "
        ".weights.h5 file. Received: weights='imagenet'"
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dropout": 1.0}, "`dropout` must be in [0, 1). Received: dropout=1.0"),
        ({"tabular_units": 0}, "`tabular_units` must be >= 1. Received: tabular_units=0"),
        (
            {"weights": "model.keras"},
            "`weights` must be 'imagenet', None, or a path to a .weights.h5 file (or to a "
            "keras.applications *_notop.h5 file). Received: weights='model.keras'",
        ),
    ],
)
def test_config_rejects_bad_options(options, message):
    with pytest.raises(ConfigError) as err:
        ModelConfig(**options)
    assert str(err.value) == message


def test_weights_none_string_means_none():
    assert ModelConfig(weights="none").weights is None


def test_weights_choose_the_training_defaults(tmp_path):
    cnn = registry.get_backbone("small_cnn")
    assert (ModelConfig().start, ModelConfig().training_defaults()) == ("scratch", cnn.scratch)
    tuned = ModelConfig(weights=str(tmp_path / "mine.weights.h5"))
    assert (tuned.start, tuned.training_defaults()) == ("fine-tune", cnn.fine_tune)
    imagenet = ModelConfig("efficientnet_b0", weights="imagenet")
    assert imagenet.training_defaults() == registry.FINE_TUNE
    with pytest.raises(ConfigError, match=r"`schedule` must be one of .*Received: schedule='x'"):
        registry.TrainingDefaults(1e-4, 1, "x", 16)


def test_input_spec_is_checked():
    with pytest.raises(ConfigError, match="needs an image or at least one tabular feature"):
        InputSpec(None)
    with pytest.raises(ConfigError, match=r"not 'image'. Received: \['image'\]"):
        InputSpec(SIZE, numeric=("image",))
    with pytest.raises(ConfigError, match="head names must be distinct"):
        build_model(ModelConfig(), InputSpec(SIZE, numeric=("age",)), (HeadSpec("age", "binary"),))
    with pytest.raises(ConfigError, match='name of a layer of the model .The name "fusion_dense"'):
        build_model(ModelConfig(), TABULAR, (HeadSpec("fusion_dense", "binary"),))


def test_augmentation_in_the_model_acts_in_training_only_and_round_trips(tmp_path):
    config = ModelConfig(augment=PRESETS["standard"])
    model = build_model(config, TABULAR, (BINARY,))
    block = model.get_layer("augmentation")
    x = images(4)
    np.testing.assert_array_equal(block(x, training=False).numpy(), x.astype(np.float32))
    assert not np.array_equal(block(x, training=True).numpy(), x.astype(np.float32))
    # what model.json stores rebuilds the same model, and its weights load back
    again = ModelConfig(**dataclasses.asdict(config))
    assert again == config
    path = str(tmp_path / "m.weights.h5")
    model.save_weights(path)
    twin = build_model(again, TABULAR, (BINARY,))
    twin.load_weights(path)
    inputs = {"image": x, **tabular_x(4)}
    np.testing.assert_allclose(
        twin(inputs, training=False).numpy(), model(inputs, training=False).numpy(), rtol=1e-6
    )


def test_unknown_loss_weight_head_is_refused():
    model = build_model(ModelConfig(), InputSpec(SIZE), (BINARY,))
    with pytest.raises(ConfigError, match=r"names unknown heads \['target'\]"):
        compile_model(model, (BINARY,), learning_rate=1e-3, loss_weights={"target": 2.0})


@pytest.fixture
def mixed_precision():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


@pytest.mark.usefixtures("mixed_precision")
def test_mixed_precision_outputs_are_float32():
    heads = (BINARY, MULTI)
    model = build_model(ModelConfig(), TABULAR, heads)
    assert model.get_layer("small_cnn_backbone").get_layer("block1_conv").compute_dtype == "float16"
    x = tabular_x()  # "score" reaches 1e5: inf in float16 unless normalised in float32
    out = model(x, training=False)
    assert {k: v.dtype for k, v in out.items()} == {"sick": tf.float32, "grade": tf.float32}
    assert all(np.all(np.isfinite(v.numpy())) for v in out.values())


def test_freeze_backbone_sets_which_weights_train():
    config = ModelConfig(augment=PRESETS["standard"])  # a second nested model: augmentation
    model = build_model(config, InputSpec(SIZE), (MULTI,))
    backbone = models.freeze_backbone(model, frozen=True, freeze_batchnorm=False)
    assert backbone.name == "small_cnn_backbone"
    assert {v.path for v in model.trainable_weights} == {"grade/kernel", "grade/bias"}
    models.freeze_backbone(model, frozen=False, freeze_batchnorm=True)
    convolutions = {f"block{i}_conv/kernel" for i in range(1, 5)}
    assert {v.path for v in backbone.trainable_weights} == convolutions
    assert all(not layer.trainable for layer in backbone.layers if "_bn" in layer.name)
    models.freeze_backbone(model, frozen=False, freeze_batchnorm=False)
    assert len(backbone.trainable_weights) == 4 * 3  # kernels, BatchNorm gammas and betas


def test_a_tabular_model_has_no_backbone_to_freeze():
    model = build_model(ModelConfig(), dataclasses.replace(TABULAR, image_size=None), (BINARY,))
    with pytest.raises(ConfigError, match="has no image backbone to freeze"):
        models.freeze_backbone(model, frozen=True, freeze_batchnorm=True)
