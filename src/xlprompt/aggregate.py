"""Turning per-prompt metrics files into tidy long tables, the only input of every figure."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pandas as pd
from scipy import stats

from xlprompt.io import read_json

KEYS = ["model", "task", "method", "prompt_length", "source", "seed", "lang"]
METRICS = ["accuracy", "macro_f1"]


def per_language_table(metric_files: Iterable[Path]) -> pd.DataFrame:
    """One row per model, task, method, prompt length, source, seed, language and metric."""
    rows = []
    for path in metric_files:
        result = read_json(path)
        for row in result["rows"]:
            for metric in METRICS:
                rows.append({**{k: result[k] for k in KEYS if k != "lang"}, "lang": row["lang"],
                             "metric": metric, "value": row[metric]})
    if not rows:
        raise ValueError("aggregate: no metrics rows found")
    return pd.DataFrame(rows).sort_values(KEYS + ["metric"]).reset_index(drop=True)


def languages_table(languages_json: Path) -> pd.DataFrame:
    return pd.DataFrame(read_json(languages_json)).sort_values("distance", kind="stable").reset_index(drop=True)


def summary_table(per_language: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds."""
    keys = [k for k in KEYS if k != "seed"] + ["metric"]
    grouped = per_language.groupby(keys, sort=True)["value"]
    out = grouped.agg(mean="mean", std="std", seeds="count").reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out


def distance_correlation(per_language: pd.DataFrame, languages: pd.DataFrame) -> pd.DataFrame:
    """Spearman rank correlation of accuracy (mean over seeds) with distance from English."""
    acc = per_language[per_language.metric == "accuracy"]
    mean = acc.groupby(["model", "task", "method", "prompt_length", "source", "lang"])["value"].mean().reset_index()
    mean = mean.merge(languages[["lang", "distance"]], on="lang", how="inner")
    rows = []
    for keys, group in mean.groupby(["model", "task", "method", "prompt_length", "source"], sort=True):
        defined = len(group) > 2 and group["value"].nunique() > 1 and group["distance"].nunique() > 1
        rho = stats.spearmanr(group["value"], group["distance"]).statistic if defined else float("nan")
        rows.append(dict(zip(["model", "task", "method", "prompt_length", "source"], keys),
                         spearman_rho=rho, languages=len(group)))
    return pd.DataFrame(rows)


def tasks_table(metric_files: Iterable[Path]) -> pd.DataFrame:
    """Per task: number of labels and chance accuracy (test sets are balanced)."""
    rows = {}
    for path in metric_files:
        result = read_json(path)
        rows[result["task"]] = {"task": result["task"], "labels": round(1 / result["chance"]),
                                "chance_accuracy": result["chance"]}
    return pd.DataFrame(sorted(rows.values(), key=lambda r: r["task"]))
