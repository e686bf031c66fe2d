"""outputs.scores and its baselines: a head's OOF main metric beside a trivial predictor's."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tfrec_tools.train.outputs import Baseline, baseline, oof_frame, scores
from tfrec_tools.train.specs import HeadSpec
from tfrec_tools.train.tta import Predictions

MULTI = HeadSpec("label", "multiclass", 3)


def oof(truth: np.ndarray, values: np.ndarray, head: HeadSpec = MULTI) -> list:
    ids = tuple(f"i{i}" for i in range(len(truth)))
    return [(0, Predictions(ids, {head.name: values}, {head.name: truth}))]


def test_a_model_that_learned_nothing_is_no_better_than_the_majority_class():
    truth = np.array([0] * 50 + [1] * 30 + [2] * 20)
    uniform = np.full((100, 3), 1 / 3)
    got = scores(oof(truth, uniform), (MULTI,)).baselines["label"]
    assert (got.metric, got.trivial) == ("accuracy", 0.5)
    assert got.margin == pytest.approx(2 * math.sqrt(0.5 * 0.5 / 100))
    assert not got.learned
    right = np.eye(3)[truth] * 0.9 + 0.1 / 3
    assert scores(oof(truth, right), (MULTI,)).baselines["label"].learned


def test_binary_and_regression_baselines():
    truth = np.array([0, 1] * 20)
    binary = HeadSpec("sick", "binary")
    assert not baseline(binary, truth, 0.55).learned  # within 2 standard errors of 0.5
    assert baseline(binary, truth, 0.9).learned
    assert baseline(binary, np.zeros(8), math.nan).learned  # AUC undefined: nothing to judge
    bmi = HeadSpec("bmi", "regression")
    values = np.array([1.0, 3.0])
    assert baseline(bmi, values, 1.0) == Baseline(
        "rmse", 1.0, 1.0, 0.0, "always predicting the mean label 2"
    )
    assert not baseline(bmi, values, 1.0).learned and baseline(bmi, values, 0.5).learned


def test_multilabel_baseline_is_the_best_constant_tag_set():
    tags = HeadSpec("tags", "multilabel", 3)
    truth = np.array([[1, 1, 0], [1, 0, 0], [1, 0, 1], [1, 1, 0]])
    # every image gets tags 0 and 1: 6 of the 8 predicted are right, 1 true tag missed
    got = baseline(tags, truth, 0.8)
    assert (got.metric, got.trivial) == ("f1_micro", pytest.approx(12 / 15))
    assert got.predictor == "always predicting the 2 most common tags"
    assert got.margin == pytest.approx(2 * math.sqrt(0.8 * 0.2 / 7))
    assert not baseline(tags, truth, 1.0).learned  # 7 true tags: too few to tell
    many = np.tile(truth, (25, 1))  # 175 true tags: a margin of 0.06
    assert not baseline(tags, many, 0.85).learned and baseline(tags, many, 0.9).learned
    assert baseline(tags, np.zeros((3, 3)), math.nan).learned


def test_multilabel_oof_rows_name_the_true_and_predicted_tags():
    tags = HeadSpec("tags", "multilabel", 2)
    truth = np.array([[1, 0], [1, 1], [0, 0]])
    values = np.array([[0.9, 0.1], [0.7, 0.6], [0.2, 0.3]])
    frame = oof_frame(oof(truth, values, tags), (tags,), {"tags": ("a", "b")})
    assert list(frame.columns) == ["image_id", "fold", "tags_true", "tags_p_a", "tags_p_b", "tags"]
    assert frame["tags_true"].tolist() == ["a", "a b", ""]
    assert frame["tags"].tolist() == ["a", "a b", ""]
    overall = scores(oof(truth, values, tags), (tags,)).overall["tags"]
    assert overall["f1_micro"] == 1.0
