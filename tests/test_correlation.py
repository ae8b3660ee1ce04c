"""Correlation of similarity with transfer: scipy's coefficients, sources and targets as units."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from xlprompt.analysis.correlation import coefficient, correlation_table, unit_grid, unit_interval, unit_permutation_p


def test_coefficients_are_scipys_and_undefined_for_a_constant_side():
    # Ranks by hand: x = (1, 2, 3), y ranks (1, 3, 2): rho = 1 - 6 * 2 / (3 * 8) = 0.5
    assert coefficient("spearman", np.array([1.0, 2.0, 3.0]), np.array([10.0, 30.0, 20.0])) == pytest.approx(0.5)
    x, y = np.array([0.1, 0.4, 0.2, 0.9]), np.array([1.0, 0.5, 0.7, 0.2])
    assert coefficient("pearson", x, y) == pytest.approx(stats.pearsonr(x, y).statistic)
    assert np.isnan(coefficient("pearson", x, np.ones(4)))
    assert np.isnan(coefficient("spearman", x[:2], y[:2]))


def test_the_unit_permutation_test_reproduces_a_hand_computed_p_value():
    """3 sources x 2 targets, x = y = source + target. Relabelling sources: y' = pi(s) + t, and only
    pi = identity gives r = 1 (the reversal gives (-2/3 + 1/4) / (2/3 + 1/4) = -5/11), so 1 of the
    3! = 6 relabellings reaches r = 1: two-sided (scipy doubles the smaller tail) p = 2/6. Relabelling
    targets: the swap gives (2/3 - 1/4) / (2/3 + 1/4) = 5/11, 1 of 2 reaches r = 1: p = 2/2 = 1."""
    grid = np.add.outer(np.arange(3.0), np.arange(2.0))
    assert unit_permutation_p("pearson", grid, grid, "source") == pytest.approx(2 / 6)
    assert unit_permutation_p("pearson", grid, grid, "target") == pytest.approx(1.0)
    swapped = np.add.outer(np.arange(3.0), 1 - np.arange(2.0))
    assert coefficient("pearson", grid.ravel(), swapped.ravel()) == pytest.approx(5 / 11)


def test_the_grid_needs_every_source_with_every_target_once():
    x = np.arange(4.0)
    assert unit_grid(np.array(list("aabb")), np.array(list("stst")), x, x)[0].tolist() == [[0, 1], [2, 3]]
    assert unit_grid(np.array(list("aab")), np.array(list("sts")), x[:3], x[:3]) is None  # (b, t) missing
    assert unit_grid(np.array(list("aaab")), np.array(list("stst")), x, x) is None  # (a, s) twice


def test_source_effects_fool_a_test_over_pairs_but_not_the_unit_permutation_test():
    """No relation between similarity and transfer, but each source shifts all of its pairs on both
    sides (a source effect): pairs look correlated. Over 100 such grids (5 sources x 4 targets),
    scipy's test that takes the 20 pairs as independent rejects far more often than 5%; relabelling
    whole sources (5! = 120, exact) stays near its level."""
    rng = np.random.default_rng(0)
    trials, naive, by_units = 100, 0, 0
    for trial in range(trials):
        grid_x = rng.normal(0, 1, (5, 1)) + rng.normal(0, 0.3, (5, 4))
        grid_y = rng.normal(0, 1, (5, 1)) + rng.normal(0, 0.3, (5, 4))
        naive += stats.pearsonr(grid_x.ravel(), grid_y.ravel()).pvalue < 0.05
        by_units += unit_permutation_p("pearson", grid_x, grid_y, "source", seed=trial) < 0.05
    assert naive / trials > 0.2, naive / trials
    assert by_units / trials <= 0.08, by_units / trials


def test_the_unit_interval_is_degenerate_for_a_perfect_relation_and_wider_than_pairs_suggest():
    grid = np.add.outer(np.arange(4.0), np.arange(2.0))
    assert unit_interval("spearman", grid, grid**3, resamples=200) == (pytest.approx(1.0), pytest.approx(1.0))
    rng = np.random.default_rng(1)
    grid_x = rng.normal(0, 1, (5, 1)) + rng.normal(0, 0.3, (5, 4))
    grid_y = grid_x[:, :1] * 0.5 + rng.normal(0, 1, (5, 1)) + rng.normal(0, 0.3, (5, 4))
    low, high = unit_interval("pearson", grid_x, grid_y, resamples=500)
    pairs = stats.bootstrap(
        (grid_x.ravel(), grid_y.ravel()),
        lambda a, b: stats.pearsonr(a, b).statistic,
        paired=True,
        vectorized=False,
        n_resamples=500,
        method="percentile",
        rng=np.random.default_rng(1),
    ).confidence_interval
    assert high - low > pairs.high - pairs.low


def test_the_correlation_table_reports_units_and_p_values():
    similarity = pd.DataFrame(
        {
            "source": list("abcd"),
            "target": "t",
            "prompt_length": 4,
            "metric": "on",
            "embedding": "activations",
            "layers": "all",
            "value": [0.1, 0.2, 0.3, 0.4],
        }
    )
    transfer = pd.DataFrame(
        {
            "model": "m",
            "source": list("abcd"),
            "target": "t",
            "prompt_length": 4,
            "init": "transfer",
            "lang": "en",
            "metric": "accuracy",
            "applicable": True,
            "value": 0.0,
            "gain": [-0.1, 0.0, 0.05, 0.2],
        }
    )
    row = correlation_table(similarity, transfer, "en", resamples=100).query("outcome == 'gain_en'").iloc[0]
    assert (row.pairs, row.sources, row.targets, row.spearman) == (4, 4, 1, pytest.approx(1.0))
    # 4! = 24 relabellings of the sources, only the identity reaches rho = 1: p = 2/24 (two-sided)
    assert row.spearman_p_sources == pytest.approx(2 / 24)
    assert np.isnan(row.spearman_p_targets)
