"""The registered backbones: uint8 in, the keras.applications each wires, its preprocessing,
its smallest image, and EfficientNet's ImageNet statistics. CPU, 32x32 images."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest

from tests.train.tiny_models import BINARY, NAMES, SIZE, images
from tfrec_tools.errors import ConfigError
from tfrec_tools.train import backbones, registry
from tfrec_tools.train.models import ModelConfig, build_model
from tfrec_tools.train.specs import InputSpec


@pytest.mark.parametrize("name", ["small_cnn", "efficientnet_b0", "efficientnet_v2_b0", "resnet50"])
def test_backbone_builds_and_runs_on_uint8(name):
    model = build_model(ModelConfig(name=name), InputSpec(SIZE), (BINARY,))
    assert model.input.dtype == "uint8" and model.input.name == "image"
    assert tuple(model.input.shape) == (None, *SIZE, 3)
    out = model(images(2), training=False).numpy()
    assert out.shape == (2, 1) and np.all((out >= 0) & (out <= 1))


def test_every_registry_name_wires_its_keras_application(monkeypatch):
    """Cheap: each keras.applications constructor is replaced by a recorder (building all 17
    real backbones takes minutes on CPU; see the slow test below)."""
    calls = {}

    def recorder(function):
        def fake(**kwargs):
            calls[function] = kwargs
            inputs = keras.Input(kwargs["input_shape"])
            return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inputs))

        return fake

    functions = {f"efficientnet_b{i}": f"EfficientNetB{i}" for i in range(8)}
    variants = ("b0", "b1", "b2", "b3", "s", "m", "l")
    functions |= {f"efficientnet_v2_{v}": f"EfficientNetV2{v.upper()}" for v in variants}
    functions["resnet50"] = "ResNet50"
    for function in functions.values():
        monkeypatch.setattr(keras.applications, function, recorder(function))
    expected = {"include_top": False, "weights": None, "input_shape": (*SIZE, 3), "pooling": "avg"}
    for name, function in functions.items():
        calls.clear()
        build_model(ModelConfig(name=name), InputSpec(SIZE), (BINARY,))
        assert calls == {function: expected}, name
    assert sorted(functions) == sorted(n for n in NAMES if n != "small_cnn")
    assert registry.get_backbone("resnet50").preprocessing == "caffe"
    assert {registry.get_backbone(n).preprocessing for n in NAMES if n != "resnet50"} == {"none"}


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("TFREC_SLOW_TESTS"), reason="set TFREC_SLOW_TESTS=1")
@pytest.mark.parametrize("name", NAMES)
def test_every_registry_name_builds_for_real(name):
    model = build_model(ModelConfig(name=name), InputSpec(SIZE), (BINARY,))
    assert model(images(1), training=False).shape == (1, 1)


def test_preprocessing_matches_what_each_backbone_expects():
    x = images(2)
    resnet = build_model(ModelConfig(name="resnet50"), InputSpec(SIZE), (BINARY,))
    caffe = resnet.get_layer("image_preprocessing")(x).numpy()
    expected = keras.applications.resnet50.preprocess_input(x.astype(np.float32))
    np.testing.assert_allclose(caffe, expected, rtol=1e-6, atol=1e-4)
    small = build_model(ModelConfig(), InputSpec(SIZE), (BINARY,))
    raw = small.get_layer("image_preprocessing")(x).numpy()
    np.testing.assert_array_equal(raw, x.astype(np.float32))  # 0..255 floats into the backbone
    rescale = small.get_layer("small_cnn_backbone").get_layer("rescaling")
    assert rescale.scale == pytest.approx(1 / 255)


def test_image_smaller_than_the_backbone_accepts_is_refused():
    with pytest.raises(ConfigError) as err:
        build_model(ModelConfig(name="resnet50"), InputSpec((16, 16)), (BINARY,))
    assert str(err.value) == (
        "`image_size` must be at least 32x32 for model 'resnet50'. Received: image_size=(16, 16)"
    )


def test_efficientnet_imagenet_statistics_give_the_same_graph_and_outputs(tmp_path, monkeypatch):
    """keras' EfficientNetB0(weights="imagenet") adds a Rescaling the weights=None graph lacks.
    With a local stand-in for the download, ours (weights=None graph, folded statistics) must
    compute what keras' imagenet graph computes, also when loaded from the *_notop.h5 file."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format
    from keras.src.utils import file_utils

    shape = (*SIZE, 3)
    source = keras.applications.EfficientNetB0(include_top=False, weights=None, input_shape=shape)
    (norm,) = [layer for layer in source.layers if isinstance(layer, keras.layers.Normalization)]
    norm.adapt_mean.assign([0.485, 0.456, 0.406])
    norm.adapt_variance.assign(list(backbones.IMAGENET_STDDEV_RGB))  # what keras' file holds
    notop = str(tmp_path / "efficientnetb0_notop.h5")
    with h5py.File(notop, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, source)
    monkeypatch.setattr(file_utils, "get_file", lambda *args, **kwargs: notop)
    reference = keras.applications.EfficientNetB0(
        include_top=False, weights="imagenet", input_shape=shape, pooling="avg"
    )
    assert rescalings(reference) == 2  # the extra layer this test is about
    x = images(2).astype(np.float32)
    expected = stem(reference)(x, training=False).numpy()
    for weights in ("imagenet", notop):
        config = ModelConfig("efficientnet_b0", weights=weights)
        backbone = build_model(config, InputSpec(SIZE), (BINARY,)).get_layer("efficientnetb0")
        assert rescalings(backbone) == 1
        got = stem(backbone)(x, training=False).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def stem(backbone):
    """The first conv's output: a random-init EfficientNet's pooled output is ~1e-6 whatever
    the input, so the comparison is made where the input normalisation still shows."""
    return keras.Model(backbone.input, backbone.get_layer("stem_conv").output)


def rescalings(model) -> int:
    return sum(isinstance(layer, keras.layers.Rescaling) for layer in model.layers)
