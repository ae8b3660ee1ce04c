"""Draw similarity against transfer, and the neuron masking check, from the tables alone.

Writes (under --out, a figures folder)::

    similarity_vs_transfer.png   one panel per similarity measure: each (source, target) pair's
                                 similarity against its transfer gain in the training language,
                                 with Spearman rho and its bootstrap interval
    neuron_masking.png           accuracy of each prompt's own task with all neurons on, its top
                                 share switched off, and as many random neurons switched off

Example:
    python -m xlprompt plot_similarity --tables results/demo/tables --out results/demo/figures
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never open a window

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from xlprompt.analysis.correlation import transfer_outcomes  # noqa: E402
from xlprompt.analysis.figures import save  # noqa: E402
from xlprompt.analysis.spot import SIMILARITY_KEYS  # noqa: E402
from xlprompt.runtime.cli import stage_parser, start  # noqa: E402

logger = logging.getLogger(__name__)


def measure_name(metric: str, embedding: str, layers: str) -> str:
    if embedding == "activations":
        return f"{metric} (neurons, layers {layers})"
    return f"{metric} ({'task embedding' if embedding == 'snapshot' else 'trained prompt'})"


def similarity_vs_transfer(similarity: pd.DataFrame, transfer: pd.DataFrame, correlation: pd.DataFrame,
                           train_language: str, path: Path) -> None:
    outcome = f"gain_{train_language}"
    points = similarity.merge(transfer_outcomes(transfer, train_language).query("outcome == @outcome"),
                              on=["source", "target", "prompt_length"])
    measures = points[SIMILARITY_KEYS].drop_duplicates().sort_values(SIMILARITY_KEYS).itertuples(index=False)
    measures = list(measures)
    cols = min(4, len(measures))
    rows = math.ceil(len(measures) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.2 * rows), squeeze=False)
    for ax, (metric, embedding, layers) in zip(axes.flat, measures):
        mine = points[(points.metric == metric) & (points.embedding == embedding) & (points.layers == layers)]
        sns.scatterplot(data=mine, x="value", y="outcome_value", hue="target", style="target", ax=ax, s=60)
        for _, point in mine.iterrows():
            ax.annotate(point["source"], (point["value"], point["outcome_value"]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
        stats = correlation[(correlation.metric == metric) & (correlation.embedding == embedding)
                            & (correlation.layers == layers) & (correlation.outcome == outcome)]
        title = measure_name(metric, embedding, layers)
        if len(stats):
            s = stats.iloc[0]
            title += (f"\nSpearman {s.spearman:+.2f} [{s.spearman_low:+.2f}, {s.spearman_high:+.2f}], "
                      f"p (sources permuted) {s.spearman_p_sources:.2f}")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("similarity (distance for euclidean)")
        ax.set_ylabel(f"accuracy gain over random init ({train_language})")
        ax.axhline(0, color="grey", linewidth=0.8, linestyle="--")
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    for ax in list(axes.flat)[len(measures):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, title="target", loc="upper right")
    fig.suptitle("Does prompt similarity predict transfer? One point per (source, target) pair", y=1.0)
    fig.tight_layout()
    save(fig, path)


def neuron_masking(table: pd.DataFrame, path: Path) -> None:
    data = table.assign(prompt=table["name"] + " (" + table["task"] + ")")
    grid = sns.catplot(data=data, x="lang", y="accuracy", hue="condition", col="prompt", kind="bar",
                       hue_order=["all_on", "random_off", "top_off"], height=3, aspect=1.2, errorbar=None,
                       col_wrap=min(3, data["prompt"].nunique()))
    share = table["share"].iloc[0]
    grid.figure.suptitle(f"Switching off a prompt's top {share:.0%} activated neurons vs as many random ones "
                         "(mean over seeds)", y=1.03)
    save(grid.figure, path)


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("plot_similarity", __doc__)
    parser.add_argument("--tables", required=True, type=Path, help="folder with similarity, transfer, correlation, "
                                                                  "neuron_masking .csv")
    parser.add_argument("--train-language", default="en")
    parser.add_argument("--out", required=True, type=Path, help="figures folder")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    start(args)
    tables = {name: pd.read_csv(args.tables / f"{name}.csv")
              for name in ("similarity", "transfer", "correlation", "neuron_masking")}
    similarity_vs_transfer(tables["similarity"], tables["transfer"], tables["correlation"], args.train_language,
                           args.out / "similarity_vs_transfer.png")
    neuron_masking(tables["neuron_masking"], args.out / "neuron_masking.png")
    logger.info("wrote figures to %s", args.out)
