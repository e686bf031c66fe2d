"""tfrec_tools.read.augment_layers: the Keras layers build, run on a batch and stay in range."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from tests.read.test_augment import OFF
from tests.read.test_augment_ops import noise
from tfrec_tools.read.augment import PRESETS
from tfrec_tools.read.augment_layers import augmentation_layers


def test_augmentation_layers_build_and_run_on_a_batch(caplog):
    with caplog.at_level(logging.WARNING, logger="tfrec_tools.read.augment_layers"):
        model = augmentation_layers(PRESETS["kaggle-melanoma"])
    assert "no Keras layer for cutout" in caplog.text
    names = [type(layer).__name__ for layer in model.layers]
    assert names == [
        "RandomFlip",
        "RandomRotation",
        "RandomShear",
        "RandomZoom",
        "RandomTranslation",
        "RandomSaturation",
        "RandomContrast",
        "RandomBrightness",
    ]
    batch = np.stack([noise(24, 40, i) for i in range(4)])
    out = model(batch, training=True).numpy()
    assert out.shape == (4, 24, 40, 3)
    assert out.min() >= 0 and out.max() <= 255
    assert not np.allclose(out, batch)


def test_augmentation_layers_saturation_stays_in_range_and_none_is_identity():
    batch = np.stack([noise(16, 16, i) for i in range(2)])
    strong = augmentation_layers(replace(OFF, saturation=(1.5, 1.5)))
    assert strong(batch, training=True).numpy().min() >= 0  # see _saturation_layer
    np.testing.assert_array_equal(augmentation_layers(OFF)(batch).numpy(), batch)
