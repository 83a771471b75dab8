"""evaluation.py: the threshold rule and baseline.json's bins, on hand-made data."""

from __future__ import annotations

import numpy as np
import pytest

from training_scripts import evaluation


def test_max_accuracy_threshold_separates_the_classes() -> None:
    # GIVEN scores where every positive scores 0.7 or more and every negative 0.3 or less
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    # WHEN the max-accuracy cut-off is chosen
    threshold = evaluation.choose_threshold(y, p, "max_accuracy")
    # THEN it separates them perfectly, and among the perfect cut-offs it is the one nearest 0.5
    assert threshold == 0.5


def test_max_f1_threshold_favours_recall_of_the_rare_class() -> None:
    # GIVEN a rare positive class scored in the middle of the negatives
    y = np.array([0] * 8 + [1, 1])
    p = np.array([0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.45, 0.6, 0.4, 0.5])
    # WHEN both methods choose
    # THEN F1 takes the lower cut-off, which catches both positives
    assert evaluation.choose_threshold(y, p, "max_f1") <= 0.4 < evaluation.choose_threshold(y, p, "max_accuracy")


def test_unknown_threshold_method_is_refused() -> None:
    # GIVEN a method that does not exist
    # THEN choose_threshold names it
    with pytest.raises(ValueError, match="youden"):
        evaluation.choose_threshold(np.array([0, 1]), np.array([0.2, 0.8]), "youden")


def test_numeric_bins_are_deciles_with_shares() -> None:
    # GIVEN the values 1..100
    edges, shares = evaluation.numeric_bins(np.arange(1.0, 101.0))
    # THEN eleven strictly increasing edges and ten shares of about a tenth
    assert len(edges) == 11 and np.all(np.diff(edges) > 0)
    assert shares == pytest.approx([0.1] * 10, abs=0.011)


def test_constant_and_never_present_columns_still_get_one_valid_bin() -> None:
    # GIVEN a constant column and a column with no values at all
    # THEN each has two increasing edges and one share of 1
    for values in (np.full(50, 3.0), np.array([])):
        edges, shares = evaluation.numeric_bins(values)
        assert len(edges) == 2 and edges[0] < edges[1] and shares == [1.0]


def test_baseline_lists_every_category_and_the_missing_share() -> None:
    # GIVEN a categorical column with codes 0 and 2 of three categories, one value missing
    X = np.array([[0.0], [0.0], [2.0], [np.nan]], dtype=np.float32)
    # WHEN the baseline is built
    doc = evaluation.baseline(X, ["colour"], ["categorical"], {"colour": ["red", "green", "blue"]})
    # THEN the unseen category is listed at 0, shares are over present values, missing is a quarter
    feature = doc["features"]["colour"]
    assert feature["frequencies"] == pytest.approx({"red": 2 / 3, "green": 0.0, "blue": 1 / 3})
    assert feature["missing_proportion"] == 0.25
    assert doc["sample_size"] == 4
