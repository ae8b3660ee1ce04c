"""An experiment's headline as text: test accuracy per method and language, from summary.csv."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from xlprompt.runtime.settings import METHODS

INTERVAL = ("low", "high")  # summary.csv's 95% interval, where the table has one


def _row_label(method: str, prompt_length: int, source: str) -> str:
    """``spt L16`` as in the heatmaps; a prompt started from another one names its source."""
    label = f"{method} L{prompt_length}"
    return label if source in ("none", "") else f"{label} from {source}"


def _cell(row: pd.Series, digits: int, interval: bool) -> str:
    mean = f"{row['mean']:.{digits}f}"
    if not interval or pd.isna(row["low"]) or pd.isna(row["high"]):
        return mean
    return f"{mean} [{row['low']:.{digits}f}, {row['high']:.{digits}f}]"


def headline_table(
    summary: pd.DataFrame, languages: Sequence[str] | None = None, metric: str = "accuracy", digits: int = 3
) -> str:
    """One block per task (and model, where there are several): a row per method and prompt
    length, a column per language (in the order of ``languages``, e.g. by distance from English;
    others after them, sorted), each cell the mean over seeds and, where summary.csv has the
    columns ``low`` and ``high``, its 95% interval in brackets."""
    table = summary[summary["metric"] == metric]
    if table.empty:
        raise ValueError(f"summary.csv has no rows of metric {metric!r}")
    interval = all(column in table.columns for column in INTERVAL)
    found = list(dict.fromkeys(table["lang"]))
    order = [lang for lang in (languages or []) if lang in found]
    order += sorted(lang for lang in found if lang not in order)
    method_rank = {method: rank for rank, method in enumerate(METHODS)}
    several_models = table["model"].nunique() > 1
    what = f"test {metric}, mean over seeds" + (" [95% interval]" if interval else "")
    blocks = []
    for (model, task), block in table.groupby(["model", "task"], sort=True):
        block = block.assign(
            row=[_row_label(*values) for values in zip(block["method"], block["prompt_length"], block["source"])],
            cell=[_cell(row, digits, interval) for _, row in block.iterrows()],
            rank=block["method"].map(lambda method: method_rank.get(method, len(method_rank))),
        ).sort_values(["rank", "method", "prompt_length", "source"], kind="stable")
        grid = block.pivot(index="row", columns="lang", values="cell")
        grid = grid.reindex(
            index=list(dict.fromkeys(block["row"])), columns=[lang for lang in order if lang in grid.columns]
        ).fillna("-")
        grid.index.name = grid.columns.name = None
        title = f"{task} ({model})" if several_models else task
        blocks.append(f"{title}: {what}\n{grid.to_string()}")
    return "\n\n".join(blocks)
