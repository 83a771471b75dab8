"""evaluation.py: the threshold rule and baseline.json's bins, on hand-made data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

from training_scripts import evaluation


def test_max_accuracy_threshold_separates_the_classes() -> None:
    # GIVEN scores where every positive scores 0.7 or more and every negative 0.3 or less
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    # WHEN the max-accuracy cut-off is chosen
    threshold = evaluation.choose_threshold(y, p, "max_accuracy")
    # THEN it separates them perfectly, and among the perfect cut-offs it is the one nearest 0.5
    assert threshold == 0.5


def test_max_accuracy_keeps_one_half_when_validation_barely_prefers_another_cut_off() -> None:
    # GIVEN validation rows where 0.4 is right on 3 more rows than 0.5 (of 5 where they disagree)
    y = np.array([0] * 50 + [1] * 50 + [1, 1, 1, 1, 0])
    p = np.concatenate([np.full(50, 0.1), np.full(50, 0.9), [0.45, 0.45, 0.45, 0.45, 0.45]])
    # WHEN the max-accuracy cut-off is chosen
    threshold = evaluation.choose_threshold(y, p, "max_accuracy")
    # THEN 0.5 stays: 4 wins and 1 loss is what chance gives too often (sign test p = 0.19)
    assert threshold == 0.5


def test_max_accuracy_moves_the_cut_off_when_validation_is_clear_about_it() -> None:
    # GIVEN validation rows where every row scored 0.45 is a positive: 0.4 is right on 30 rows 0.5 gets wrong
    y = np.array([0] * 50 + [1] * 50 + [1] * 30)
    p = np.concatenate([np.full(50, 0.1), np.full(50, 0.9), np.full(30, 0.45)])
    # WHEN the max-accuracy cut-off is chosen
    threshold = evaluation.choose_threshold(y, p, "max_accuracy")
    # THEN the better cut-off is taken (the best grid value nearest 0.5 that separates them)
    assert threshold == 0.45


@settings(deadline=None, max_examples=60)
@given(st.integers(0, 1500), st.integers(0, 1500))
def test_sign_test_agrees_with_scipys_binomial_test(wins: int, losses: int) -> None:
    # GIVEN any counts of disagreeing rows won and lost
    # WHEN the one-sided sign test is computed (exactly, or by the normal approximation beyond 1,000 rows)
    ours = evaluation.sign_test(wins, losses)
    # THEN it agrees with scipy's exact binomial test
    theirs = binomtest(wins, wins + losses, 0.5, alternative="greater").pvalue if wins + losses else 1.0
    assert ours == pytest.approx(theirs, rel=0.05, abs=1e-3)


def test_max_f1_threshold_favours_recall_of_the_rare_class() -> None:
    # GIVEN a rare positive class scored in the middle of the negatives
    y = np.array([0] * 8 + [1, 1])
    p = np.array([0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.45, 0.6, 0.4, 0.5])
    # WHEN both methods choose
    # THEN F1 takes the lower cut-off, which catches both positives
    assert evaluation.choose_threshold(y, p, "max_f1") <= 0.4 < evaluation.choose_threshold(y, p, "max_accuracy")


def test_unknown_threshold_method_is_refused() -> None:
    # GIVEN a method that does not exist
    # WHEN choose_threshold is asked for it
    # THEN it refuses with a ValueError
    with pytest.raises(ValueError):
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
