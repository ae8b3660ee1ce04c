"""Uncertainty of accuracies from per-example predictions: intervals, paired tests, Holm.

Intervals take label codes (gold, predicted) or correctness (1 right, 0 wrong), as the
predictions parquet files give them; the paired test takes correctness. scipy does the
resampling where it has the procedure: ``scipy.stats.bootstrap`` for one seed's interval and
a paired difference's interval,
``scipy.stats.permutation_test`` (sign flips of paired differences: approximate randomization)
for the paired test. scipy has no two-level bootstrap (seeds, then examples within a seed) and
no Holm correction, so those two are written here.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

LEVEL = 0.95
RESAMPLES = 2000


def accuracy_of(gold: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Accuracy along the last axis (any leading axes are resamples or seeds)."""
    return np.mean(gold == pred, axis=-1)


def macro_f1_of(gold: np.ndarray, pred: np.ndarray, n_labels: int) -> np.ndarray:
    """Macro-F1 over the labels ``range(n_labels)`` along the last axis, as scikit-learn's
    ``f1_score(labels=range(n_labels), average="macro", zero_division=0)`` computes it for one
    sample (tested equal), for a whole batch of resamples at once: F1 of a label is
    2 tp / (gold count + predicted count), 0 where it is neither gold nor predicted.
    """
    per_label = []
    for label in range(n_labels):
        is_gold, is_pred = gold == label, pred == label
        true_positives = np.sum(is_gold & is_pred, axis=-1)
        counted = np.sum(is_gold, axis=-1) + np.sum(is_pred, axis=-1)
        per_label.append(np.divide(2 * true_positives, counted, out=np.zeros(counted.shape), where=counted > 0))
    return np.mean(per_label, axis=0)


def metric_of(name: str, n_labels: int):
    """The vectorized form of a table metric: ``(gold, pred) -> value`` along the last axis."""
    if name == "accuracy":
        return accuracy_of
    if name == "macro_f1":
        return lambda gold, pred: macro_f1_of(gold, pred, n_labels)
    raise ValueError(f"no interval for metric {name!r} (accuracy, macro_f1)")


def metric_interval(
    gold: np.ndarray,
    pred: np.ndarray,
    metric: str = "accuracy",
    n_labels: int = 2,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """A ``level`` interval of a metric's mean over seeds, from label codes.

    ``gold``: (examples,); ``pred``: (examples,) for one seed, or (seeds, examples) for several
    (the same test set in the same order). One seed: scipy's paired percentile bootstrap over
    test examples. Several: a two-level bootstrap, seeds resampled with replacement, then each
    drawn seed's examples, the metric computed per drawn seed and averaged (seed-to-seed
    variation is the second level: training randomness, not only test-set sampling).
    """
    gold = np.asarray(gold)
    pred = np.atleast_2d(np.asarray(pred))
    if pred.shape[-1] != gold.shape[-1] or gold.ndim != 1 or not len(gold):
        raise ValueError(f"metric_interval: gold {gold.shape} and predictions {pred.shape} do not match")
    statistic = metric_of(metric, n_labels)
    rng = np.random.default_rng(seed)
    if pred.shape[0] == 1:
        result = stats.bootstrap(
            (gold, pred[0]),
            lambda g, p, axis=-1: statistic(g, p),  # noqa: ARG005 (bootstrap passes axis; statistic is per resample)
            paired=True,
            n_resamples=resamples,
            confidence_level=level,
            method="percentile",
            rng=rng,
            vectorized=True,
        )
        return float(result.confidence_interval.low), float(result.confidence_interval.high)
    n_seeds, n_examples = pred.shape
    seeds = rng.integers(0, n_seeds, (resamples, n_seeds))  # (R, S): the seeds of each resample
    examples = rng.integers(0, n_examples, (resamples, n_seeds, n_examples))  # (R, S, N)
    values = statistic(gold[examples], pred[seeds[..., None], examples]).mean(axis=1)  # (R,)
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(low), float(high)


def accuracy_interval(
    correct: np.ndarray, level: float = LEVEL, resamples: int = RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """A ``level`` interval of the mean accuracy, from correctness (1 right, 0 wrong):
    (examples,) for one seed or (seeds, examples); see :func:`metric_interval`."""
    correct = np.asarray(correct, dtype=int)
    return metric_interval(np.ones(correct.shape[-1], dtype=int), correct, "accuracy", 2, level, resamples, seed)


def paired_difference(
    correct_a: np.ndarray, correct_b: np.ndarray, level: float = LEVEL, resamples: int = RESAMPLES, seed: int = 0
) -> dict:
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

    def difference(x, y, axis=-1):
        return np.mean(x - y, axis=axis)

    interval = stats.bootstrap(
        (a, b),
        difference,
        paired=True,
        n_resamples=resamples,
        confidence_level=level,
        method="percentile",
        rng=rng,
        vectorized=True,
    ).confidence_interval
    test = stats.permutation_test(
        (a, b), difference, permutation_type="samples", n_resamples=resamples, vectorized=True, rng=rng
    )
    return {
        "difference": float(np.mean(a - b)),
        "low": float(interval.low),
        "high": float(interval.high),
        "p_value": float(test.pvalue),
    }


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
