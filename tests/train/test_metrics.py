"""metrics: multi-label scores at a threshold, and the CSV columns of a multi-label head."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tfrec_tools.train.metrics import (
    main_metric,
    multilabel_scores,
    prediction_columns,
    score,
    tag_sets,
    truth_column,
)
from tfrec_tools.train.specs import HeadSpec

TAGS = HeadSpec("tags", "multilabel", 3, threshold=0.4)
TRUTH = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]])  # tag 2 never occurs
PROBS = np.array([[0.9, 0.2, 0.1], [0.6, 0.3, 0.5], [0.1, 0.8, 0.2], [0.45, 0.1, 0.3]])


def test_multilabel_scores_match_sklearn():
    from sklearn.metrics import average_precision_score, f1_score

    got = score(TAGS, TRUTH, PROBS)
    predicted = PROBS > 0.4
    assert got["f1_micro"] == pytest.approx(f1_score(TRUTH, predicted, average="micro"))
    # macro over the tags present in the truth (tag 2 has no F1 to speak of)
    per_tag = f1_score(TRUTH[:, :2], predicted[:, :2], average=None)
    assert got["f1_macro"] == pytest.approx(per_tag.mean())
    ap = [average_precision_score(TRUTH[:, t], PROBS[:, t]) for t in (0, 1)]
    assert got["map"] == pytest.approx(np.mean(ap))
    assert main_metric(TAGS) == ("f1_micro", "max")


def test_the_threshold_is_strict_and_undefined_scores_are_nan():
    assert multilabel_scores(np.array([[1]]), np.array([[0.5]]), 0.5)["f1_micro"] == 0.0
    nothing = multilabel_scores(np.zeros((2, 2)), np.zeros((2, 2)), 0.5)
    assert all(math.isnan(v) for v in nothing.values())


def test_prediction_columns_hold_every_probability_and_the_tags_above_the_threshold():
    columns = prediction_columns(TAGS, PROBS, ("haze", "primary", "water"))
    assert list(columns) == ["tags_p_haze", "tags_p_primary", "tags_p_water", "tags"]
    assert columns["tags_p_water"].tolist() == [0.1, 0.5, 0.2, 0.3]
    assert columns["tags"].tolist() == ["haze", "haze water", "primary", "haze"]


def test_truth_column_and_tag_sets():
    names = ("haze", "primary", "water")
    assert truth_column(TAGS, TRUTH, names).tolist() == ["haze", "haze primary", "primary", ""]
    assert tag_sets(np.zeros((2, 2), bool), ("a", "b")).tolist() == ["", ""]
    assert truth_column(TAGS, TRUTH, ()).tolist() == ["0", "0 1", "1", ""]
