"""Does a similarity measure predict transfer? Rank and linear correlation over prompt pairs.

Su et al. 2022 correlate each similarity of two prompts with how well one transfers to the
other's task; here every (source, target) pair of SPoT gives one point, and the outcomes are
the transfer gain over random init (training language, and mean over languages) and the
zero-shot accuracy where a label map applies. The coefficients are scipy's.

Pairs are not independent: every source appears in a pair with every target, so both the
interval and the test treat sources and targets as the units. The interval: scipy's bootstrap
with sources and targets resampled independently (all pairs of the drawn sources and targets,
a two-way cluster bootstrap), percentile, resamples where the coefficient is undefined (a
constant side) left out. The p-values: scipy's permutation test that relabels whole sources
(p_sources: which source's similarities go with which source's outcomes) and, separately,
whole targets (p_targets); exact when every relabelling fits in the resamples (4 sources: 24).
Both need the full grid, every source with every target: where an outcome exists for only
some pairs (zero-shot needs a label map) they are left empty.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from xlprompt.analysis.spot import SIMILARITY_KEYS

logger = logging.getLogger(__name__)

COEFFICIENTS = ("spearman", "pearson")  # scipy's stats.spearmanr and stats.pearsonr


def coefficient(kind: str, x: np.ndarray, y: np.ndarray) -> float:
    """scipy's Spearman or Pearson coefficient; NaN for fewer than 3 points or a constant side."""
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        result = stats.spearmanr(x, y) if kind == "spearman" else stats.pearsonr(x, y)
        return float(result.statistic)


def unit_grid(
    sources: np.ndarray, targets: np.ndarray, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """``x`` and ``y`` as (sources, targets) matrices, or None unless every source pairs with
    every target exactly once."""
    source_ids, s = np.unique(sources, return_inverse=True)
    target_ids, t = np.unique(targets, return_inverse=True)
    if len(x) != len(source_ids) * len(target_ids) or len(set(zip(s, t))) != len(x):
        return None
    grid_x = np.empty((len(source_ids), len(target_ids)))
    grid_y = np.empty_like(grid_x)
    grid_x[s, t], grid_y[s, t] = x, y
    return grid_x, grid_y


def unit_interval(
    kind: str, grid_x: np.ndarray, grid_y: np.ndarray, resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of the coefficient, sources and targets resampled as units (an axis
    with one unit stays as it is)."""
    resampled = [axis for axis in (0, 1) if grid_x.shape[axis] > 1]
    if not resampled:
        return float("nan"), float("nan")

    def statistic(*drawn):
        picks = [np.arange(size) for size in grid_x.shape]
        for axis, units in zip(resampled, drawn):
            picks[axis] = units.astype(int)
        cells = np.ix_(*picks)
        return coefficient(kind, grid_x[cells].ravel(), grid_y[cells].ravel())

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns about the NaN resamples this function leaves out
        result = stats.bootstrap(
            [np.arange(grid_x.shape[axis]) for axis in resampled],
            statistic,
            paired=False,
            vectorized=False,
            n_resamples=resamples,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    values = result.bootstrap_distribution[np.isfinite(result.bootstrap_distribution)]
    if not len(values):
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def unit_permutation_p(
    kind: str, grid_x: np.ndarray, grid_y: np.ndarray, unit: str, resamples: int = 1000, seed: int = 0
) -> float:
    """Two-sided p-value of the coefficient when whole sources (``unit="source"``, rows) or whole
    targets (``"target"``, columns) are relabelled: scipy's permutation test, exact when the
    relabellings fit in ``resamples``."""
    axis = {"source": 0, "target": 1}[unit]
    if grid_x.shape[axis] < 2 or not np.isfinite(coefficient(kind, grid_x.ravel(), grid_y.ravel())):
        return float("nan")

    def statistic(order):
        relabelled = np.take(grid_y, order.astype(int), axis=axis)
        return coefficient(kind, grid_x.ravel(), relabelled.ravel())

    result = stats.permutation_test(
        (np.arange(grid_x.shape[axis]),),
        statistic,
        permutation_type="pairings",
        vectorized=False,
        n_resamples=resamples,
        rng=np.random.default_rng(seed),
    )
    return float(result.pvalue)


def transfer_outcomes(transfer: pd.DataFrame, train_language: str) -> pd.DataFrame:
    """Per source, target and length, each outcome (mean over seeds): long format."""
    acc = transfer[(transfer["metric"] == "accuracy") & transfer["applicable"]]
    keys = ["model", "source", "target", "prompt_length"]
    tuned = acc[acc["init"] == "transfer"]
    zero = acc[acc["init"] == "zero_shot"]
    parts = [
        tuned[tuned["lang"] == train_language].groupby(keys)["gain"].mean().rename(f"gain_{train_language}"),
        tuned.groupby(keys)["gain"].mean().rename("gain_mean"),
        zero[zero["lang"] == train_language].groupby(keys)["value"].mean().rename(f"zero_shot_{train_language}"),
    ]
    wide = pd.concat(parts, axis=1).reset_index()
    return wide.melt(id_vars=keys, var_name="outcome", value_name="outcome_value").dropna(subset=["outcome_value"])


def correlation_table(
    similarity: pd.DataFrame, transfer: pd.DataFrame, train_language: str, resamples: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """One row per similarity measure and outcome: Spearman and Pearson, unit-bootstrap intervals
    and unit-permutation p-values (module docstring)."""
    outcomes = transfer_outcomes(transfer, train_language)
    merged = similarity.merge(outcomes, on=["source", "target", "prompt_length"], how="inner")
    rows = []
    for keys, group in merged.groupby(["model", "prompt_length", *SIMILARITY_KEYS, "outcome"], sort=True):
        x, y = group["value"].to_numpy(float), group["outcome_value"].to_numpy(float)
        grid = unit_grid(group["source"].to_numpy(), group["target"].to_numpy(), x, y)
        row = dict(
            zip(["model", "prompt_length", *SIMILARITY_KEYS, "outcome"], keys),
            pairs=len(group),
            sources=group["source"].nunique(),
            targets=group["target"].nunique(),
        )
        for kind in COEFFICIENTS:
            row[kind] = coefficient(kind, x, y)
            row[f"{kind}_low"], row[f"{kind}_high"] = (
                unit_interval(kind, grid[0], grid[1], resamples, seed)
                if grid is not None
                else (float("nan"), float("nan"))
            )
            for unit in ("source", "target"):
                row[f"{kind}_p_{unit}s"] = (
                    unit_permutation_p(kind, grid[0], grid[1], unit, resamples, seed)
                    if grid is not None
                    else float("nan")
                )
        rows.append(row)
    if not rows:
        raise ValueError("correlation_table: no (source, target) pair has both a similarity and a transfer result")
    return pd.DataFrame(rows)
