"""Does a similarity measure predict transfer? Rank and linear correlation over prompt pairs.

Su et al. 2022 correlate each similarity of two prompts with how well one transfers to the
other's task; here every (source, target) pair of SPoT gives one point, and the outcomes are
the transfer gain over random init (training language, and mean over languages) and the
zero-shot accuracy where a label map applies. Confidence intervals: percentile bootstrap over
pairs, seeded.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from xlprompt.spot import SIMILARITY_KEYS

logger = logging.getLogger(__name__)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    return float(pd.Series(x).rank().corr(pd.Series(y).rank()))


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    return float(pd.Series(x).corr(pd.Series(y)))


def bootstrap_interval(x: np.ndarray, y: np.ndarray, statistic, resamples: int = 1000, seed: int = 0,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of ``statistic`` over pairs resampled with replacement.

    Resamples where the statistic is undefined (a constant side) are left out.
    """
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        pick = rng.integers(0, len(x), len(x))
        value = statistic(x[pick], y[pick])
        if np.isfinite(value):
            values.append(value)
    if not values:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


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


def correlation_table(similarity: pd.DataFrame, transfer: pd.DataFrame, train_language: str,
                      resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per similarity measure and outcome: Spearman and Pearson with bootstrap CIs."""
    outcomes = transfer_outcomes(transfer, train_language)
    merged = similarity.merge(outcomes, on=["source", "target", "prompt_length"], how="inner")
    rows = []
    for keys, group in merged.groupby(["model", "prompt_length", *SIMILARITY_KEYS, "outcome"], sort=True):
        x, y = group["value"].to_numpy(float), group["outcome_value"].to_numpy(float)
        row = dict(zip(["model", "prompt_length", *SIMILARITY_KEYS, "outcome"], keys), pairs=len(group))
        for name, fn in (("spearman", spearman), ("pearson", pearson)):
            row[name] = fn(x, y) if len(group) > 2 else float("nan")
            row[f"{name}_low"], row[f"{name}_high"] = (bootstrap_interval(x, y, fn, resamples, seed)
                                                       if len(group) > 2 else (float("nan"), float("nan")))
        rows.append(row)
    if not rows:
        raise ValueError("correlation_table: no (source, target) pair has both a similarity and a transfer result")
    return pd.DataFrame(rows)
