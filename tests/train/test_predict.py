"""The model card (model.json): augmentation settings and where they ran, old cards too,
and damaged ones."""

from __future__ import annotations

import json

import pytest

from tfrec_tools.errors import ConfigError
from tfrec_tools.read.augment import PRESETS
from tfrec_tools.train.models import ModelConfig
from tfrec_tools.train.predict import ModelCard, load_card
from tfrec_tools.train.specs import HeadSpec, InputSpec

MELANOMA = PRESETS["kaggle-melanoma"]


def card(model: ModelConfig) -> ModelCard:
    head = HeadSpec("label", "multiclass", 3)
    return ModelCard(
        model, (head,), InputSpec((16, 16)), {"label": ("a", "b", "c")}, (0,), MELANOMA, 7, {}
    )


def test_the_card_stores_the_settings_and_where_they_ran():
    host, model = card(ModelConfig()), card(ModelConfig(augment=MELANOMA))
    assert (host.augment_on, model.augment_on) == ("host", "model")
    for one in (host, model):
        saved = json.loads(json.dumps(one.to_json()))
        assert saved["augment_on"] == one.augment_on
        assert ModelCard.from_json(saved) == one


def test_an_older_card_naming_a_preset_still_loads():
    saved = json.loads(json.dumps(card(ModelConfig()).to_json()))
    saved["augment"] = "standard"  # the name runs stored before the settings
    del saved["augment_on"]
    assert ModelCard.from_json(saved).augment == MELANOMA  # what "standard" meant then


def test_the_card_keeps_a_multilabel_heads_threshold():
    head = HeadSpec("tags", "multilabel", 2, threshold=0.3)
    one = ModelCard(
        ModelConfig(), (head,), InputSpec((16, 16)), {"tags": ("a", "b")}, (0,), MELANOMA, 7, {}
    )
    saved = json.loads(json.dumps(one.to_json()))
    assert saved["heads"][0]["threshold"] == 0.3
    assert ModelCard.from_json(saved).heads == (head,)
    del saved["heads"][0]["threshold"]  # a card written before thresholds: the default
    assert ModelCard.from_json(saved).heads[0].threshold == 0.5


@pytest.mark.parametrize("text", ['{"model": {', "{}", "\udcff"])
def test_a_damaged_card_is_one_config_error(tmp_path, text):
    (tmp_path / "model.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ConfigError, match=r"model\.json is not a model card `tfrec train` wrote"):
        load_card(str(tmp_path))
