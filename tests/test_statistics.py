"""The intervals and tests of xlprompt.analysis.statistics on simulated test sets with a known truth."""

from __future__ import annotations

import numpy as np
import pytest

from xlprompt.analysis.statistics import accuracy_interval, holm, paired_difference


def test_one_seed_intervals_cover_the_true_accuracy_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    truth, trials = 0.7, 400
    covered = 0
    for trial in range(trials):
        low, high = accuracy_interval(rng.random(300) < truth, resamples=1000, seed=trial)
        covered += low <= truth <= high
    assert abs(covered / trials - 0.95) <= 0.03, covered / trials


def test_two_level_intervals_cover_the_mean_over_seeds_95_percent_of_the_time():
    """Each seed's model has its own accuracy around the truth: the interval must widen for it."""
    rng = np.random.default_rng(2)
    truth, trials = 0.6, 400
    covered = 0
    for trial in range(trials):
        seed_accuracy = np.clip(truth + rng.normal(0, 0.04, 4), 0, 1)
        correct = rng.random((4, 300)) < seed_accuracy[:, None]
        low, high = accuracy_interval(correct, resamples=1000, seed=trial)
        covered += low <= truth <= high
    # A two-level bootstrap over 4 seeds runs a little narrow (few units to resample); the band.
    assert abs(covered / trials - 0.95) <= 0.03, covered / trials


def test_the_paired_test_rejects_equal_methods_at_most_6_percent_of_the_time_at_alpha_005():
    rng = np.random.default_rng(3)
    trials, rejected = 400, 0
    for trial in range(trials):
        # Two methods of equal accuracy, correlated on the same examples (easy ones are easy for both).
        easy = rng.random(200)
        a, b = rng.random(200) < easy, rng.random(200) < easy
        rejected += paired_difference(a, b, resamples=999, seed=trial)["p_value"] < 0.05
    assert rejected / trials <= 0.06, rejected / trials


def test_the_paired_test_finds_a_real_difference_and_its_interval_holds_it():
    rng = np.random.default_rng(4)
    easy = rng.random(500)
    a, b = rng.random(500) < np.clip(easy + 0.15, 0, 1), rng.random(500) < easy
    result = paired_difference(a, b, seed=0)
    assert result["p_value"] < 0.01
    assert result["low"] <= result["difference"] <= result["high"]
    assert result["low"] > 0


def test_the_exact_paired_test_reproduces_a_hand_computed_p_value():
    """Three examples, A right where B is wrong on two: of the 2^3 = 8 swaps of the differences
    (1, 1, 0), those with |mean| >= 2/3 are (1, 1), (-1, -1) with either sign of the 0: 4 of 8."""
    result = paired_difference(np.array([1, 1, 1]), np.array([0, 0, 1]), resamples=1000)
    assert result["p_value"] == pytest.approx(4 / 8)
    assert result["difference"] == pytest.approx(2 / 3)


def test_holm_matches_its_definition_on_a_worked_example():
    # p sorted: 0.01, 0.02, 0.03, 0.5 -> x4, x3, x2, x1 = 0.04, 0.06, 0.06, 0.5 (monotone)
    assert holm([0.03, 0.5, 0.01, 0.02]).tolist() == pytest.approx([0.06, 0.5, 0.04, 0.06])
    assert holm([0.9, 0.8]).tolist() == pytest.approx([1.0, 1.0])


def test_macro_f1_of_every_resample_equals_scikit_learns():
    from sklearn.metrics import f1_score

    from xlprompt.analysis.statistics import macro_f1_of

    rng = np.random.default_rng(5)
    gold, pred = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
    pred[:20] = gold[:20]
    resamples = rng.integers(0, 50, (30, 50))
    batched = macro_f1_of(gold[resamples], pred[resamples], 4)
    for i, pick in enumerate(resamples):
        assert batched[i] == pytest.approx(
            f1_score(gold[pick], pred[pick], labels=range(4), average="macro", zero_division=0), abs=1e-12
        )
    # a label that is neither gold nor predicted counts 0 (the tables' macro-F1 over every label)
    assert macro_f1_of(np.array([0, 1]), np.array([0, 1]), 3) == pytest.approx(2 / 3)


def test_macro_f1_intervals_cover_the_truth_95_percent_of_the_time():
    """Three balanced labels, a classifier right 70% of the time and uniformly wrong otherwise:
    its population macro-F1 is 0.7 (precision = recall = 0.7 for every label, by symmetry)."""
    from xlprompt.analysis.statistics import metric_interval

    rng = np.random.default_rng(6)
    trials, covered = 400, 0
    for trial in range(trials):
        gold = rng.integers(0, 3, 300)
        wrong = (gold + rng.integers(1, 3, 300)) % 3
        pred = np.where(rng.random(300) < 0.7, gold, wrong)
        low, high = metric_interval(gold, pred, "macro_f1", 3, resamples=1000, seed=trial)
        covered += low <= 0.7 <= high
    assert abs(covered / trials - 0.95) <= 0.03, covered / trials
