"""An experiment's tidy tables, each a frame by its file name: the evaluation's (``aggregate``) and SPoT's
(``transfer_tables``). The stages write them; ``python -m xlprompt <stage> --help`` describes every column."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from xlprompt.analysis.aggregate import (
    distance_correlation,
    languages_table,
    methods_table,
    per_language_table,
    summary_table,
    tasks_table,
)
from xlprompt.analysis.predictions import (
    TRANSFER_KEYS,
    comparisons_table,
    interval_table,
    read_predictions,
    with_intervals,
)
from xlprompt.analysis.spot import BASELINES, retrieval_table, transfer_table
from xlprompt.runtime.io import read_json


def evaluation_tables(
    metrics: Sequence[Path],
    predictions: Sequence[Path],
    languages_json: Path,
    prompts: Sequence[Path] = (),
    method_order: Sequence[str] = (),
) -> dict[str, pd.DataFrame]:
    """per_language, summary (with intervals from the predictions), comparisons, languages,
    distance_correlation, tasks; and methods where the prompt folders are given."""
    per_language = per_language_table(sorted(metrics))
    languages = languages_table(languages_json)
    read = read_predictions(sorted(predictions))
    summary = with_intervals(summary_table(per_language), interval_table(read, over_seeds=True))
    tables = {"per_language": with_intervals(per_language, interval_table(read, over_seeds=False)), "summary": summary}
    if prompts:
        tables["methods"] = methods_table(sorted(prompts), summary, languages)
    tables.update(
        {
            "comparisons": comparisons_table(read, method_order),
            "languages": languages,
            "distance_correlation": distance_correlation(per_language, languages),
            "tasks": tasks_table(sorted(metrics)),
        }
    )
    return tables


def spot_tables(
    results: Sequence[Path], similarity_csv: Path, predictions: Sequence[Path] = ()
) -> dict[str, pd.DataFrame]:
    """transfer and retrieval from evaluate_transfer's documents and similarity.csv; transfer_comparisons where
    their predictions are given (the baselines first, then the sources alphabetically)."""
    transfer = transfer_table([read_json(path) for path in sorted(results)])
    tables = {"transfer": transfer, "retrieval": retrieval_table(transfer, pd.read_csv(similarity_csv))}
    if predictions:
        read = read_predictions(sorted(predictions), TRANSFER_KEYS)
        order = [*BASELINES, *sorted(set(transfer.loc[transfer.init == "transfer", "source"]))]
        tables["transfer_comparisons"] = comparisons_table(read, order, arm="arm")
    return tables
