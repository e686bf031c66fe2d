"""report.learning_warnings: a run that did not learn says what to change, with the numbers."""

from __future__ import annotations

from tfrec_tools.train.config import TrainConfig, resolve_defaults
from tfrec_tools.train.kfold import FoldResult
from tfrec_tools.train.models import ModelConfig
from tfrec_tools.train.outputs import Baseline, Scores
from tfrec_tools.train.report import learning_warnings

FLAT = Baseline("accuracy", 0.33, 0.5, 0.1, "always predicting the most common class")
HISTORY = {"loss": [1.1, 1.1], "learning_rate": [1e-9, 1.6e-8]}


def warnings_for(baseline: Baseline, model: ModelConfig, **given) -> list[str]:
    chosen = resolve_defaults(model, given, labels={"lr_max": "--lr-max"})
    config = TrainConfig(
        ("s",),
        "run",
        model=model,
        schedule=chosen.schedule,
        batch_size=chosen.batch_size,
        epochs=2,
        sources=chosen.sources,
    )
    results = [FoldResult(0, 1, 2, HISTORY, None, None)]
    return learning_warnings(config, results, Scores({}, {}, {"label": baseline}))


def test_a_run_that_did_not_learn_says_what_to_change():
    (text,) = warnings_for(FLAT, ModelConfig(), lr_max=1e-9)
    assert text == (
        "label: the model did not learn: OOF accuracy 0.3300 is no better than always "
        "predicting the most common class (0.5000, + 0.1000 for chance). Try: raise the "
        "learning rate: --lr-max 0.0002 (this run: 1e-09 per sample, a peak of 1.6e-08, from "
        "--lr-max); train longer: --epochs 4 (this run: 2); start from pretrained weights: e.g. "
        "--model efficientnet_b0 --weights imagenet. If nothing helps, check the labels against "
        "the images"
    )


def test_at_the_default_rate_it_suggests_three_times_more_and_imagenet():
    (text,) = warnings_for(FLAT, ModelConfig("resnet50"))
    assert "--lr-max 0.0003 (this run: 0.0001 per sample" in text
    assert "from model default (scratch)" in text
    assert "start from pretrained weights: --weights imagenet." in text


def test_a_run_that_learned_is_silent():
    learned = Baseline("accuracy", 0.98, 0.5, 0.1, "always predicting the most common class")
    assert warnings_for(learned, ModelConfig()) == []
