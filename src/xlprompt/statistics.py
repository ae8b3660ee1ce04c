"""Uncertainty of accuracies from per-example predictions: intervals, paired tests, Holm.

Every function takes per-example correctness (1 correct, 0 wrong), as the predictions parquet
files give it (``gold == pred``). scipy does the resampling where it has the procedure:
``scipy.stats.bootstrap`` for one seed's interval and a paired difference's interval,
``scipy.stats.permutation_test`` (sign flips of paired differences: approximate randomization)
for the paired test. scipy has no two-level bootstrap (seeds, then examples within a seed) and
no Holm correction, so those two are written here.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

LEVEL = 0.95
RESAMPLES = 2000


def accuracy_interval(correct: np.ndarray, level: float = LEVEL, resamples: int = RESAMPLES,
                      seed: int = 0) -> tuple[float, float]:
    """A ``level`` interval of the mean accuracy over seeds.

    ``correct``: (examples,) for one seed, or (seeds, examples) for several (the same test set).
    One seed: scipy's percentile bootstrap over test examples. Several: a two-level bootstrap,
    seeds resampled with replacement, then each drawn seed's examples (seed-to-seed variation
    is the second level: training randomness, not only test-set sampling).
    """
    correct = np.atleast_2d(np.asarray(correct, dtype=float))
    rng = np.random.default_rng(seed)
    if correct.shape[0] == 1:
        result = stats.bootstrap((correct[0],), np.mean, n_resamples=resamples, confidence_level=level,
                                 method="percentile", rng=rng, vectorized=True)
        return float(result.confidence_interval.low), float(result.confidence_interval.high)
    n_seeds, n_examples = correct.shape
    seeds = rng.integers(0, n_seeds, (resamples, n_seeds))  # (R, S): the seeds of each resample
    examples = rng.integers(0, n_examples, (resamples, n_seeds, n_examples))  # (R, S, N)
    means = correct[seeds[..., None], examples].mean(axis=(1, 2))  # (R,)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def paired_difference(correct_a: np.ndarray, correct_b: np.ndarray, level: float = LEVEL,
                      resamples: int = RESAMPLES, seed: int = 0) -> dict:
    """Accuracy of A minus accuracy of B on the same test examples, its interval and p-value.

    ``correct_a``, ``correct_b``: (examples,) on the same examples in the same order (averaged
    over seeds first, where there are several). The interval: scipy's paired percentile
    bootstrap of the mean difference; the p-value: scipy's permutation test that swaps A and B
    within each example (two-sided; exact when 2^n is at most ``resamples``).
    """
    a, b = np.asarray(correct_a, dtype=float), np.asarray(correct_b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or not len(a):
        raise ValueError(f"paired_difference needs two equally long 1-d arrays, got {a.shape} and {b.shape}")
    rng = np.random.default_rng(seed)
    difference = lambda x, y, axis=-1: np.mean(x - y, axis=axis)  # noqa: E731
    interval = stats.bootstrap((a, b), difference, paired=True, n_resamples=resamples, confidence_level=level,
                               method="percentile", rng=rng, vectorized=True).confidence_interval
    test = stats.permutation_test((a, b), difference, permutation_type="samples", n_resamples=resamples,
                                  vectorized=True, rng=rng)
    return {"difference": float(np.mean(a - b)), "low": float(interval.low), "high": float(interval.high),
            "p_value": float(test.pvalue)}


def holm(p_values: list[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment: the family-wise error rate of a set of tests at its level.

    The i-th smallest p-value is multiplied by (m - i), made monotone, capped at 1.
    """
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, np.maximum.accumulate(p[order] * (len(p) - np.arange(len(p)))))
    adjusted = np.empty_like(p)
    adjusted[order] = scaled
    return adjusted
