"""outputs.scores and its baselines: a head's OOF main metric beside a trivial predictor's."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tfrec_tools.train.models import HeadSpec
from tfrec_tools.train.outputs import Baseline, baseline, scores
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
