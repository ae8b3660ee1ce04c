"""Turning per-prompt metrics files into tidy long tables, the only input of every figure."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
from scipy import stats

from xlprompt.runtime.io import read_json

KEYS = ["model", "task", "method", "prompt_length", "source", "seed", "lang"]
METRICS = ["accuracy", "macro_f1"]


def per_language_table(metric_files: Iterable[Path]) -> pd.DataFrame:
    """One row per model, task, method, prompt length, source, seed, language and metric."""
    rows = []
    for path in metric_files:
        result = read_json(path)
        for row in result["rows"]:
            for metric in METRICS:
                rows.append(
                    {
                        **{k: result[k] for k in KEYS if k != "lang"},
                        "lang": row["lang"],
                        "metric": metric,
                        "value": row[metric],
                    }
                )
    if not rows:
        raise ValueError("aggregate: no metrics rows found")
    return pd.DataFrame(rows).sort_values([*KEYS, "metric"]).reset_index(drop=True)


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
        rows.append(
            dict(
                zip(["model", "task", "method", "prompt_length", "source"], keys),
                spearman_rho=rho,
                languages=len(group),
            )
        )
    return pd.DataFrame(rows)


def tasks_table(metric_files: Iterable[Path]) -> pd.DataFrame:
    """Per task: number of labels and chance accuracy (test sets are balanced)."""
    rows: dict[str, dict[str, Any]] = {}
    for path in metric_files:
        result = read_json(path)
        rows[result["task"]] = {
            "task": result["task"],
            "labels": round(1 / result["chance"]),
            "chance_accuracy": result["chance"],
        }
    return pd.DataFrame([rows[task] for task in sorted(rows)])


METHOD_COLUMNS = ["trainable_parameters", "trainable_share", "artifact_bytes", "artifact_share"]


def language_groups(languages: pd.DataFrame, train_language: str) -> dict[str, list[str]]:
    """The training language, and the others split at their median distance from English into
    ``near`` (at most the median) and ``far``; without distances (real data) every other
    language is ``near`` and ``far`` is empty."""
    others = languages[languages["lang"] != train_language]
    if others["distance"].isna().all():
        return {"train": [train_language], "near": list(others["lang"]), "far": []}
    median = others["distance"].median()
    return {
        "train": [train_language],
        "near": list(others.loc[others["distance"] <= median, "lang"]),
        "far": list(others.loc[others["distance"] > median, "lang"]),
    }


def methods_table(prompt_dirs: Iterable[Path], summary: pd.DataFrame, languages: pd.DataFrame) -> pd.DataFrame:
    """Per model, task, method and prompt length: what the method trains and stores (trainable
    parameters and their share of the backbone, artifact bytes and their share of a full
    checkpoint, from each prompt's meta.json), its training seconds per prompt (mean over seeds
    of each run's own steps and validations) and test accuracy (summary.csv's mean over seeds) in
    the training language and averaged over the near and the far languages
    (:func:`language_groups`)."""
    rows = []
    for prompt_dir in prompt_dirs:
        meta = read_json(Path(prompt_dir) / "meta.json")
        cfg = meta["config"]
        rows.append(
            {
                "task": meta["task"],
                "method": meta.get("method_name", cfg["method"]),
                "prompt_length": cfg["prompt_length"],
                "train_language": meta["train_language"],
                "steps": meta["steps"],
                "train_seconds": meta.get("train_seconds", float("nan")),
                **{column: meta.get(column, float("nan")) for column in METHOD_COLUMNS},
            }
        )
    if not rows:
        raise ValueError("methods_table: no prompt folders given")
    runs = pd.DataFrame(rows)
    keys = ["task", "method", "prompt_length"]
    out = (
        runs.groupby(keys, sort=True)
        .agg(
            seeds=("steps", "size"),
            steps=("steps", "first"),
            train_seconds=("train_seconds", "mean"),
            train_language=("train_language", "first"),
            **{column: (column, "first") for column in METHOD_COLUMNS},
        )
        .reset_index()
    )
    accuracy = summary[summary["metric"] == "accuracy"]
    for name in ("train", "near", "far"):
        values = []
        for row in out.itertuples():
            group = language_groups(languages, row.train_language)[name]
            cells = accuracy[
                (accuracy["task"] == row.task)
                & (accuracy["method"] == row.method)
                & (accuracy["prompt_length"] == row.prompt_length)
                & accuracy["lang"].isin(group)
            ]
            values.append(cells["mean"].mean() if len(cells) else float("nan"))
        out[f"accuracy_{name}"] = values
    model = accuracy["model"].iloc[0] if len(accuracy) else ""
    return out.assign(model=model)[
        [
            "model",
            *keys,
            "seeds",
            "steps",
            *METHOD_COLUMNS,
            "train_seconds",
            "train_language",
            "accuracy_train",
            "accuracy_near",
            "accuracy_far",
        ]
    ]
