"""tfrec_tools.read.augment: config validation, presets, JSON files, saved runs and names."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import replace

import pytest

from tfrec_tools.errors import ConfigError
from tfrec_tools.read.augment import (
    DEFAULT_AUGMENT,
    PRESETS,
    AugmentConfig,
    augment_config,
    augment_name,
    stored_augment,
)

OFF = PRESETS["none"]
SINGLE_OPS = {  # one operation on in each; test_augment_ops runs them all
    "flip_left_right": replace(OFF, flip_left_right=True),
    "flip_up_down": replace(OFF, flip_up_down=True),
    "saturation": replace(OFF, saturation=(0.7, 1.3)),
    "contrast": replace(OFF, contrast=(0.8, 1.2)),
    "brightness": replace(OFF, brightness=0.1),
    "hue": replace(OFF, hue=0.1),
    "rotation": replace(OFF, rotation=10.0),
    "shear": replace(OFF, shear=5.0),
    "zoom": replace(OFF, zoom=0.1),
    "shift": replace(OFF, shift=0.1),
    "cutout": replace(OFF, cutout_count=3, cutout_probability=1.0),
    "standard": PRESETS["standard"],
    "kaggle-melanoma": PRESETS["kaggle-melanoma"],
}


# ---- config --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"brightness": -0.1}, "`brightness` must be in [0, 1]. Received: brightness=-0.1"),
        ({"hue": 0.6}, "`hue` must be in [0, 0.5]. Received: hue=0.6"),
        ({"zoom": 0.5}, "`zoom` must be in [0, 0.4]. Received: zoom=0.5"),
        ({"shear": 25}, "`shear` must be in [0, 20]. Received: shear=25"),
        (
            {"saturation": (1.3, 0.7)},
            "`saturation` must be None or (lower, upper) with 0 <= lower <= upper. "
            "Received: saturation=(1.3, 0.7)",
        ),
        (
            {"contrast": (0.8,)},
            "`contrast` must be None or (lower, upper) with 0 <= lower <= upper. "
            "Received: contrast=(0.8,)",
        ),
        (
            {"fill_mode": "mirror"},
            "`fill_mode` must be one of constant, nearest, reflect, wrap. "
            "Received: fill_mode='mirror'",
        ),
        ({"cutout_count": -1}, "`cutout_count` must be an integer >= 0. Received: cutout_count=-1"),
        ({"cutout_size": 0}, "`cutout_size` must be in (0, 1]. Received: cutout_size=0"),
        (
            {"cutout_probability": 1.5},
            "`cutout_probability` must be in [0, 1]. Received: cutout_probability=1.5",
        ),
        (
            {"flip_left_right": "yes"},
            "`flip_left_right` must be true or false. Received: flip_left_right='yes'",
        ),
    ],
)
def test_config_validation_messages(kwargs, message):
    with pytest.raises(ConfigError) as info:
        AugmentConfig(**kwargs)
    assert str(info.value) == message


def test_enabled_is_false_only_when_every_op_is_off():
    assert not OFF.enabled
    assert not AugmentConfig(cutout_count=5, cutout_probability=0.0).enabled
    assert all(config.enabled for config in SINGLE_OPS.values())
    assert AugmentConfig(saturation=[0.7, 1.3]).saturation == (0.7, 1.3)  # JSON lists


def test_augment_config_presets_and_json_file(tmp_path):
    assert augment_config("none") is PRESETS["none"]
    assert DEFAULT_AUGMENT == "standard"
    standard = augment_config("standard")  # the ecosystem's default: no up-down flips (6 -> 9)
    assert standard.flip_left_right and not standard.flip_up_down
    assert (standard.shear, standard.cutout_count, standard.hue) == (0, 0, 0)
    assert (standard.rotation, standard.zoom, standard.shift) == (5.0, 0.05, 0.03)
    melanoma = augment_config("kaggle-melanoma")  # the Kaggle reference recipe, kept whole
    assert melanoma.flip_left_right and melanoma.flip_up_down and melanoma.cutout_count == 5
    assert (melanoma.saturation, melanoma.contrast) == ((0.7, 1.3), (0.8, 1.2))
    path = tmp_path / "aug.json"
    path.write_text(json.dumps({"flip_up_down": True, "contrast": [0.9, 1.1], "rotation": 3}))
    assert augment_config(str(path)) == AugmentConfig(
        flip_up_down=True, contrast=(0.9, 1.1), rotation=3
    )


def test_augment_config_errors_list_the_allowed_values(tmp_path):
    with pytest.raises(ConfigError) as info:
        augment_config("strong")
    assert str(info.value) == (
        "`augment` must be a preset (none, standard, kaggle-melanoma) or the path of an "
        "existing JSON file. "
        "Received: augment='strong'"
    )
    path = tmp_path / "aug.json"
    path.write_text(json.dumps({"flip": True, "rotation": 3}))
    with pytest.raises(ConfigError) as info:
        augment_config(str(path))
    assert str(info.value).startswith(f"{path}: unknown key(s) flip. Allowed keys: flip_left_right")
    assert "cutout_probability" in str(info.value)
    path.write_text(json.dumps({"hue": 2}))
    with pytest.raises(ConfigError, match=r"aug\.json: `hue` must be in \[0, 0\.5\]"):
        augment_config(str(path))


# ---- saved runs and names ----------------------------------------------------------------


def test_stored_settings_load_and_old_runs_keep_their_meaning(tmp_path):
    melanoma = PRESETS["kaggle-melanoma"]
    assert stored_augment(json.loads(json.dumps(dataclasses.asdict(melanoma)))) == melanoma
    assert stored_augment("standard") == melanoma  # what "standard" meant in older runs
    assert stored_augment("none") is PRESETS["none"]
    custom = AugmentConfig(rotation=3.0)
    assert stored_augment(str(tmp_path / "gone.json"), in_model=custom) is custom


def test_augment_name_is_the_preset_or_the_changed_fields():
    assert [augment_name(p) for p in PRESETS.values()] == list(PRESETS)
    assert augment_name(AugmentConfig(rotation=3.0, hue=0.1)) == "custom (hue, rotation)"
