"""TrainConfig and resolve_defaults: the model's training defaults for its weights, overridden
by what was given, with the source of each; augmentation settled once; old config.json files."""

from __future__ import annotations

import dataclasses
import json

import pytest

from tfrec_tools.errors import ConfigError
from tfrec_tools.read.augment import PRESETS
from tfrec_tools.train import registry
from tfrec_tools.train.config import TrainConfig, resolve_defaults
from tfrec_tools.train.models import ModelConfig
from tfrec_tools.train.schedules import ScheduleConfig

SCRATCH = "model default (scratch)"
CNN = registry.get_backbone("small_cnn").scratch  # small_cnn's defaults from random weights


def test_scratch_and_fine_tune_defaults_come_from_the_registry():
    scratch = resolve_defaults(ModelConfig("small_cnn"))
    assert (scratch.schedule, scratch.batch_size) == (CNN.schedule_config(), CNN.batch_size)
    assert set(scratch.sources.values()) == {SCRATCH}
    tuned = resolve_defaults(ModelConfig("efficientnet_b0", weights="imagenet"))
    assert tuned.schedule == ScheduleConfig()  # the reference fine-tuning recipe
    assert set(tuned.sources.values()) == {"model default (fine-tune)"}


def test_given_values_override_and_say_how_they_were_given():
    given = {"lr_max": 2e-4, "warmup_epochs": None, "batch_size": 8, "decay": 0.5}
    resolved = resolve_defaults(ModelConfig(), given, labels={"lr_max": "--lr-max"})
    assert (resolved.schedule.lr_max, resolved.schedule.decay, resolved.batch_size) == (
        2e-4,
        0.5,
        8,
    )
    assert resolved.schedule.warmup_epochs == CNN.warmup_epochs  # None: the default
    assert resolved.sources == {
        "batch_size": "batch_size",
        "schedule.kind": SCRATCH,
        "schedule.lr_max": "--lr-max",
        "schedule.warmup_epochs": SCRATCH,
        "schedule.decay": "decay",
    }
    with pytest.raises(ConfigError, match=r"`given` must name settings .*Received: \['lr'\]"):
        resolve_defaults(ModelConfig(), {"lr": 1.0})


def test_train_config_fills_what_was_left_unset():
    config = TrainConfig(("s",), "run")
    assert (config.schedule, config.batch_size) == (CNN.schedule_config(), CNN.batch_size)
    assert config.sources["schedule.lr_max"] == SCRATCH
    given = TrainConfig(("s",), "run", schedule=ScheduleConfig(), batch_size=4)
    assert (given.schedule, given.batch_size, given.sources) == (ScheduleConfig(), 4, {})


def test_augmentation_is_placed_once():
    melanoma = PRESETS["kaggle-melanoma"]
    host = TrainConfig(("s",), "run", augment=melanoma)
    assert (host.model.augment, host.host_augment) == (None, melanoma)
    model = TrainConfig(("s",), "run", augment=melanoma, augment_on="model")
    assert (model.model.augment, model.host_augment) == (melanoma, PRESETS["none"])
    with pytest.raises(ConfigError, match="`augment` must be an AugmentConfig"):
        TrainConfig(("s",), "run", augment="standard")
    with pytest.raises(ConfigError, match="`model.augment` must be None or equal `augment`"):
        TrainConfig(("s",), "run", model=ModelConfig(augment=melanoma))


def test_config_json_round_trips():
    config = TrainConfig(("s",), "run", augment=PRESETS["none"], augment_on="model", epochs=3)
    assert TrainConfig.from_json(json.loads(json.dumps(config.to_json()))) == config


def test_an_older_config_json_still_loads():
    old = TrainConfig(("s",), "run", batch_size=16).to_json()
    for key in ("augment_on", "sources"):
        del old[key]
    old["augment"] = "standard"  # a preset name, as runs saved it before the settings
    config = TrainConfig.from_json(json.loads(json.dumps(old)))
    assert (config.augment, config.augment_on) == (PRESETS["kaggle-melanoma"], "host")
    old["model"]["augment"] = dataclasses.asdict(PRESETS["none"])  # augmented in the model
    config = TrainConfig.from_json(json.loads(json.dumps(old)))
    assert (config.augment, config.augment_on) == (PRESETS["none"], "model")


@pytest.mark.parametrize(("epochs", "warmup"), [(1, 0), (2, 0), (4, 1), (8, 2), (12, 2)])
def test_a_short_run_gets_a_shorter_default_warmup(epochs, warmup):
    resolved = resolve_defaults(ModelConfig("small_cnn"), epochs=epochs)
    assert resolved.schedule.warmup_epochs == warmup
    cut = resolved.sources["schedule.warmup_epochs"]
    assert cut.endswith(f"cut to {warmup} for {epochs} epochs") == (warmup < 2)


def test_a_given_warmup_is_never_cut():
    resolved = resolve_defaults(ModelConfig("small_cnn"), {"warmup_epochs": 3}, epochs=1)
    assert resolved.schedule.warmup_epochs == 3
    assert TrainConfig(shards=("s",), run_dir="r", epochs=1).schedule.warmup_epochs == 0


def test_the_threshold_is_kept_and_checked():
    config = TrainConfig(("s",), "run", threshold=0.3)
    assert TrainConfig.from_json(json.loads(json.dumps(config.to_json()))).threshold == 0.3
    assert TrainConfig(("s",), "run").threshold == 0.5
    with pytest.raises(ConfigError, match=r"`threshold` must be in \(0, 1\). Received: thr"):
        TrainConfig(("s",), "run", threshold=0)


def test_schedules_without_warmup_are_not_cut():
    resolved = resolve_defaults(ModelConfig("small_cnn"), {"kind": "constant"}, epochs=1)
    assert "cut" not in resolved.sources["schedule.warmup_epochs"]


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_a_seed_numpy_cannot_take_is_refused(seed):
    with pytest.raises(
        ConfigError, match=rf"^`seed` must be in 0\.\.4294967295\. Received: seed={seed}$"
    ):
        TrainConfig(("s",), "run", seed=seed)


@pytest.mark.parametrize("description", ["a" * 201, "a/b", "a\nb"])
def test_a_description_that_breaks_the_report_file_name_is_refused(description):
    with pytest.raises(ConfigError, match="`description` must be 1 to 200 bytes of printable"):
        TrainConfig(("s",), "run", description=description)


@pytest.mark.parametrize(
    "field, value",
    [
        ("shards", ("foo://x/train*.tfrec",)),
        ("test", ("s", "foo://x/test")),
        ("run_dir", "foo://x/run"),
        ("report_dir", "foo://x/reports"),
        ("model", ModelConfig(weights="foo://x/b0.weights.h5")),
    ],
)
def test_an_unknown_url_scheme_is_refused(field, value):
    args = {"shards": ("s",), "run_dir": "run", field: value}
    with pytest.raises(ConfigError, match="^unsupported URL scheme 'foo' in .*gs://"):
        TrainConfig(**args)
