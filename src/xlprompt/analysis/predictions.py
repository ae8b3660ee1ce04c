"""From per-example predictions to uncertainty: intervals of every table row, paired comparisons.

The evaluation writes one parquet file per prompt (``xlprompt.analysis.prompt_metrics``): the keys of its
metrics rows, then ``example_id``, ``gold``, ``pred`` (label names) and ``score_<label>`` per label,
whose column order is the label order. Here they become label codes and, per row of
``per_language.csv`` and ``summary.csv``, a 95% interval (``xlprompt.analysis.statistics.metric_interval``:
test examples resampled, seeds as a second level); and ``comparisons.csv``: every pair of methods
on the same test examples, per language and over all languages, with a paired test whose
p-values are Holm-corrected over the languages of the pair.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from xlprompt.analysis.aggregate import KEYS, METRICS
from xlprompt.analysis.statistics import LEVEL, RESAMPLES, holm, metric_interval, paired_difference

logger = logging.getLogger(__name__)

RUN_KEYS = [key for key in KEYS if key != "lang"]  # what names one evaluated prompt (the tables' keys)
TRANSFER_KEYS = ["model", "task", "prompt_length", "arm", "init", "source", "seed"]  # evaluate_transfer's
ALL_LANGUAGES = "all"  # the comparisons' row over every language's test examples together


def read_predictions(paths: Iterable[Path], keys: Sequence[str] = RUN_KEYS) -> pd.DataFrame:
    """Every predictions file, with label codes (``gold_code``, ``pred_code``) and ``n_labels``;
    ``keys``: the columns that name a run (evaluate's, or evaluate_transfer's ``TRANSFER_KEYS``)."""
    frames = []
    for path in paths:
        frame = pd.read_parquet(path)
        labels = [column.removeprefix("score_") for column in frame.columns if column.startswith("score_")]
        missing = [key for key in [*keys, "lang", "example_id", "gold", "pred"] if key not in frame.columns]
        if missing or not labels:
            raise ValueError(f"{path}: not a predictions file (missing columns {missing or ['score_<label>']})")
        code = {label: i for i, label in enumerate(labels)}
        unknown = sorted(set(frame["gold"]).union(frame["pred"]) - set(code))
        if unknown:
            raise ValueError(f"{path}: labels {unknown} have no score_<label> column")
        frames.append(
            frame[[*keys, "lang", "example_id"]].assign(
                gold_code=frame["gold"].map(code).astype(int),
                pred_code=frame["pred"].map(code).astype(int),
                n_labels=len(labels),
            )
        )
    if not frames:
        raise ValueError("no predictions files given")
    return pd.concat(frames, ignore_index=True)


def _aligned(group: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """One test set's gold codes (examples,) and predictions (seeds, examples), examples in one
    order for every seed; raises if the seeds were not scored on the same examples."""
    wide = group.pivot(index=["lang", "example_id"], columns="seed", values="pred_code")
    gold = group.drop_duplicates(["lang", "example_id"]).set_index(["lang", "example_id"])["gold_code"]
    if wide.isna().any().any() or len(gold) != len(wide):
        raise ValueError(
            f"seeds {list(wide.columns)} of {group.iloc[0].drop(['seed', 'lang', 'example_id']).to_dict()} "
            "were not scored on the same test examples"
        )
    return gold.loc[wide.index].to_numpy(), wide.to_numpy().T, list(wide.columns)


def interval_table(
    predictions: pd.DataFrame, over_seeds: bool, level: float = LEVEL, resamples: int = RESAMPLES
) -> pd.DataFrame:
    """``low`` and ``high`` of every metric: per seed (``over_seeds`` False: the rows of
    per_language.csv) or of the mean over seeds (True: the rows of summary.csv)."""
    keys = [*RUN_KEYS, "lang"] if not over_seeds else [k for k in RUN_KEYS if k != "seed"] + ["lang"]
    rows = []
    for key, group in predictions.groupby(keys, sort=True):
        gold, pred, _ = _aligned(group)
        for metric in METRICS:
            low, high = metric_interval(gold, pred, metric, int(group["n_labels"].iloc[0]), level, resamples)
            rows.append({**dict(zip(keys, key)), "metric": metric, "low": low, "high": high})
    return pd.DataFrame(rows)


def with_intervals(table: pd.DataFrame, intervals: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the ``low`` and ``high`` of its rows; every row must have them."""
    keys = [column for column in intervals.columns if column not in ("low", "high")]
    merged = table.merge(intervals, on=keys, how="left", validate="one_to_one")
    missing = merged[merged["low"].isna()]
    if len(missing):
        raise ValueError(f"{len(missing)} table rows have no predictions, e.g. {missing.iloc[0][keys].to_dict()}")
    return merged


def _comparison_groups(predictions: pd.DataFrame, arm: str):
    """The keys (model, task, prompt_length, source) of each group and its rows: the methods of one prompt length, with
    the runs without a prompt (length 0: ``no_prompt``) in every length's group. Transfer arms
    (``arm`` other than method) group by model, target and length: their source is the arm."""
    if arm != "method":
        for key, group in predictions.groupby(["model", "task", "prompt_length"], sort=True):
            yield dict(zip(["model", "task", "prompt_length"], key)), group
        return
    for (model, task, source), group in predictions.groupby(["model", "task", "source"], sort=True):
        lengths = sorted(set(group["prompt_length"]) - {0}) or [0]
        for length in lengths:
            yield (
                {"model": model, "task": task, "prompt_length": length, "source": source},
                group[group["prompt_length"].isin({length, 0})],
            )


def comparisons_table(
    predictions: pd.DataFrame,
    method_order: Sequence[str] = (),
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    alpha: float = 0.05,
    arm: str = "method",
) -> pd.DataFrame:
    """Every pair of methods (A before B in ``method_order``, then by name) on the same test
    examples, per model, task, prompt length (runs without a prompt join every length) and
    source: accuracy of each (mean over seeds), the
    difference A - B with its interval and the paired test's p-value per language and over all
    languages (``lang`` = "all"), ``p_holm`` Holm-corrected over the pair's languages (the "all"
    row is a family of its own), and ``better``: the method ahead where ``p_holm`` < ``alpha``.
    ``arm="arm"`` compares SPoT's inits of one target instead (evaluate_transfer's predictions);
    the columns are then ``arm_a`` and ``arm_b``.

    The paired test takes each example's correctness averaged over the method's seeds, so a
    method with several seeds is compared by its mean prediction quality on that example.
    """
    rank = {method: i for i, method in enumerate(method_order)}
    rows = []
    for key, group in _comparison_groups(predictions, arm):
        correct = {}  # arm -> Series over (lang, example_id): correctness averaged over seeds
        for method, runs in group.groupby(arm):
            correct[method] = (
                (runs["gold_code"] == runs["pred_code"]).groupby([runs["lang"], runs["example_id"]]).mean()
            )
        methods = sorted(correct, key=lambda m: (rank.get(m, len(rank)), m))
        for a, b in itertools.combinations(methods, 2):
            both = pd.concat({"a": correct[a], "b": correct[b]}, axis=1)
            if both.isna().any().any():
                raise ValueError(f"{a} and {b} on {key} were not scored on the same test examples")
            pair = []
            for lang, part in [*both.groupby(level="lang", sort=False), (ALL_LANGUAGES, both)]:
                test = paired_difference(part["a"].to_numpy(), part["b"].to_numpy(), level, resamples)
                pair.append(
                    {
                        **key,
                        f"{arm}_a": a,
                        f"{arm}_b": b,
                        "lang": lang,
                        "examples": len(part),
                        "accuracy_a": part["a"].mean(),
                        "accuracy_b": part["b"].mean(),
                        **test,
                    }
                )
            languages = pair[:-1]
            for row, adjusted in zip(languages, holm([row["p_value"] for row in languages])):
                row["p_holm"] = adjusted
            pair[-1]["p_holm"] = pair[-1]["p_value"]
            for row in pair:
                ahead = a if row["difference"] > 0 else b
                row["better"] = ahead if row["p_holm"] < alpha else ""
            rows.extend(pair)
    if not rows:
        logger.info("comparisons: fewer than two methods per task, nothing to compare")
    columns = [
        "model",
        "task",
        "prompt_length",
        *(["source"] if arm == "method" else []),
        f"{arm}_a",
        f"{arm}_b",
        "lang",
        "examples",
        "accuracy_a",
        "accuracy_b",
        "difference",
        "low",
        "high",
        "p_value",
        "p_holm",
        "better",
    ]
    return pd.DataFrame(rows, columns=columns)
