"""Calibration measures and the temperature fit."""

import numpy as np
import pytest

from odqa.calibration import (accuracy_at_coverage, auroc, binary_nll, calibration_report,
                              expected_calibration_error, fit_temperature)


def test_ece_zero_when_probability_matches_accuracy():
    probs = [0.8] * 10 + [0.3] * 10
    correct = [True] * 8 + [False] * 2 + [True] * 3 + [False] * 7
    assert expected_calibration_error(probs, correct) == pytest.approx(0.0)


def test_ece_of_an_overconfident_reader():
    # always 0.9 sure, right half of the time: a gap of 0.4
    assert expected_calibration_error([0.9] * 10, [True, False] * 5) == pytest.approx(0.4)


def test_auroc_perfect_random_and_undefined():
    assert auroc([0.9, 0.8, 0.2, 0.1], [True, True, False, False]) == pytest.approx(1.0)
    assert auroc([0.1, 0.2, 0.8, 0.9], [True, True, False, False]) == pytest.approx(0.0)
    assert auroc([0.5, 0.5, 0.5, 0.5], [True, False, True, False]) == pytest.approx(0.5)
    assert auroc([0.3, 0.4], [True, True]) is None


def test_auroc_matches_pairwise_count():
    rng = np.random.default_rng(0)
    p = rng.random(60)
    c = rng.random(60) < p
    pairs = [(a > b) + 0.5 * (a == b) for a, ca in zip(p, c) for b, cb in zip(p, c) if ca and not cb]
    assert auroc(p, c) == pytest.approx(np.mean(pairs))


def test_accuracy_at_coverage_keeps_the_most_probable():
    probs = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]
    correct = [True, True, True, False, True, False, False, False]
    got = accuracy_at_coverage(probs, correct)
    assert got == {"25": 100.0, "50": 75.0, "75": 66.67, "100": 50.0}


def test_report_fields():
    rep = calibration_report([0.9, 0.1], [True, False])
    assert set(rep) == {"ece", "auroc", "mean_probability", "em_at_coverage"}
    assert rep["auroc"] == 1.0 and rep["mean_probability"] == 0.5


def test_length_mismatch_is_refused():
    with pytest.raises(ValueError, match="one length"):
        expected_calibration_error([0.1, 0.2], [True])


def test_fit_temperature_recovers_the_generating_temperature():
    # two-candidate questions: the answer is right with probability sigmoid(margin / 2), so T = 2 calibrates
    rng = np.random.default_rng(1)
    margins = rng.normal(2.0, 2.0, 4000)
    correct = rng.random(4000) < 1 / (1 + np.exp(-margins / 2))

    def top(t):   # the more probable candidate's probability at temperature t
        return 1 / (1 + np.exp(-np.abs(margins) / t))

    # the top candidate is candidate 0 when margin > 0, else candidate 1 (right when candidate 0 is wrong)
    top_correct = np.where(margins > 0, correct, ~correct)
    t = fit_temperature(top, top_correct)
    assert t == pytest.approx(2.0, rel=0.15)
    assert binary_nll(top(t), top_correct) <= binary_nll(top(1.0), top_correct)
