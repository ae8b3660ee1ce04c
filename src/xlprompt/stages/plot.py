"""Draw the figures of an experiment from its tables (and from nothing else).

Writes (under --out, a figures folder)::

    heatmap_{task}.png         method x language, accuracy (mean over seeds) and its 95% interval, one per task
    accuracy_vs_distance.png   accuracy against distance from English, per task and method, with 95%
                               intervals (dashed: chance)
    comparisons_{task}.png     every pair of methods x language: accuracy difference, * where the
                               paired test (Holm-corrected) says one is better beyond chance
    methods.png                accuracy over near and over far languages against trainable
                               parameters, one point per method (methods.csv)

Example:
    python -m xlprompt plot --tables results/demo/tables --out results/demo/figures
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never open a window

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from xlprompt.analysis.figures import ordered_methods, save  # noqa: E402
from xlprompt.runtime.cli import stage_parser, start  # noqa: E402

logger = logging.getLogger(__name__)

def heatmap(summary: pd.DataFrame, languages: pd.DataFrame, task: str, path: Path) -> None:
    acc = summary[(summary.task == task) & (summary.metric == "accuracy")]
    acc = acc.assign(row=acc["method"] + " L" + acc["prompt_length"].astype(str))
    table = acc.pivot_table(index="row", columns="lang", values="mean")
    lang_order = [l for l in languages["lang"] if l in table.columns]
    row_order = [r for m in ordered_methods(acc["method"]) for r in sorted(acc.loc[acc.method == m, "row"].unique())]
    table = table.loc[row_order, lang_order]
    text = acc.assign(text=acc.apply(lambda r: f"{r['mean']:.2f}\n[{r['low']:.2f}, {r['high']:.2f}]", axis=1))
    text = text.pivot(index="row", columns="lang", values="text").loc[row_order, lang_order]
    fig, ax = plt.subplots(figsize=(1.3 * len(lang_order) + 2, 0.75 * len(row_order) + 1.5))
    sns.heatmap(table, annot=text, fmt="", annot_kws={"fontsize": 7}, vmin=0, vmax=1, cmap="viridis", ax=ax,
                cbar_kws={"label": "accuracy"})
    order = "by distance from English" if languages["distance"].notna().any() else "as listed (no distances)"
    ax.set_title(f"{task}: test accuracy (mean over seeds) [95% interval]; languages ordered {order}")
    ax.set_xlabel("language")
    ax.set_ylabel("method, prompt length")
    save(fig, path)


def accuracy_vs_distance(summary: pd.DataFrame, languages: pd.DataFrame, tasks: pd.DataFrame, path: Path) -> None:
    acc = summary[summary.metric == "accuracy"].merge(languages[["lang", "distance"]], on="lang")
    order = [f"{m} L{length}" for m in ordered_methods(acc["method"])
             for length in sorted(acc.loc[acc.method == m, "prompt_length"].unique())]
    acc = acc.assign(method=acc["method"] + " L" + acc["prompt_length"].astype(str))
    # Generated languages have a distance from English; real ones (Hub data) have none: then the
    # x axis lists the languages in languages.csv's order.
    measured = acc["distance"].notna().any()
    x, label = ("distance", "distance from English") if measured else ("lang", "language (no distance known)")
    position = {lang: i for i, lang in enumerate(languages["lang"])}
    acc = acc.sort_values("distance") if measured else acc.sort_values("lang", key=lambda s: s.map(position))
    tasks_shown = sorted(acc["task"].unique())
    fig, axes = plt.subplots(1, len(tasks_shown), figsize=(3.6 * len(tasks_shown) + 1.5, 3.4), sharey=True,
                             squeeze=False)
    colours = dict(zip(order, sns.color_palette(n_colors=len(order))))
    chance = dict(zip(tasks["task"], tasks["chance_accuracy"]))
    # methods side by side around each language (their intervals would hide one another)
    spread = (acc["distance"].max() - acc["distance"].min() if measured else len(position)) or 1.0
    dodge = {method: (i - (len(order) - 1) / 2) * 0.012 * spread for i, method in enumerate(order)}
    for ax, task in zip(axes[0], tasks_shown):
        for method in order:
            line = acc[(acc.task == task) & (acc.method == method)]
            if line.empty:
                continue
            xs = (line[x] if measured else line["lang"].map(position)) + dodge[method]
            ax.errorbar(xs, line["mean"], yerr=[line["mean"] - line["low"], line["high"] - line["mean"]],
                        marker="o", markersize=4, capsize=2, linewidth=1.2, color=colours[method], label=method)
        ax.axhline(chance[task], color="grey", linestyle="--", linewidth=1, label="chance")
        if not measured:
            ax.set_xticks(range(len(position)), list(position))
        ax.set_title(f"task = {task}")
        ax.set_xlabel(label)
        ax.set_ylim(0, 1.02)
    axes[0][0].set_ylabel("test accuracy (95% interval)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    save(fig, path)


def comparisons(table: pd.DataFrame, languages: pd.DataFrame, task: str, path: Path) -> None:
    """Pairs of methods x languages: the accuracy difference A - B, * where one is better beyond chance."""
    rows = table[table.task == task]
    if rows.empty:  # a single method: nothing to compare, and the figure says so
        fig, ax = plt.subplots(figsize=(4, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, f"{task}: one method only, no pair to compare", ha="center", va="center")
        save(fig, path)
        return
    rows = rows.assign(pair=rows["method_a"] + " - " + rows["method_b"] + " L" + rows["prompt_length"].astype(str))
    lang_order = [l for l in languages["lang"] if l in set(rows["lang"])] + ["all"]
    pair_order = list(dict.fromkeys(rows["pair"]))
    values = rows.pivot(index="pair", columns="lang", values="difference").loc[pair_order, lang_order]
    marks = rows.assign(text=rows.apply(lambda r: f"{r['difference']:+.2f}{'*' if r['better'] else ''}", axis=1))
    marks = marks.pivot(index="pair", columns="lang", values="text").loc[pair_order, lang_order]
    fig, ax = plt.subplots(figsize=(1.1 * len(lang_order) + 2.5, 0.45 * len(pair_order) + 1.5))
    sns.heatmap(values, annot=marks, fmt="", annot_kws={"fontsize": 8}, vmin=-1, vmax=1, center=0, cmap="RdBu",
                ax=ax, cbar_kws={"label": "accuracy of A - accuracy of B"})
    ax.set_title(f"{task}: paired differences on the same test examples (mean over seeds)\n"
                 "* one method better beyond chance (paired permutation test, Holm over languages, 0.05)")
    ax.set_xlabel("language (all: every language's examples together)")
    ax.set_ylabel("A - B, prompt length")
    save(fig, path)


def methods(table: pd.DataFrame, tasks: pd.DataFrame, path: Path) -> None:
    """Per task, near and far languages: accuracy against trainable parameters, a point per method."""
    groups = [("accuracy_near", "near languages"), ("accuracy_far", "far languages")]
    groups = [(column, title) for column, title in groups if table[column].notna().any()]
    task_names = sorted(table["task"].unique())
    fig, axes = plt.subplots(len(task_names), len(groups), figsize=(4.2 * len(groups) + 1, 3.2 * len(task_names)),
                             squeeze=False, sharex=True, sharey=True)
    order = ordered_methods(table["method"])
    colours = dict(zip(order, sns.color_palette(n_colors=len(order))))
    chance = dict(zip(tasks["task"], tasks["chance_accuracy"]))
    for row, task in enumerate(task_names):
        for col, (column, title) in enumerate(groups):
            ax = axes[row][col]
            for point in table[table.task == task].itertuples():
                ax.scatter(point.trainable_parameters, getattr(point, column), color=colours[point.method], s=40,
                           label=point.method)
                ax.annotate(f"{point.method} L{point.prompt_length}", (point.trainable_parameters, getattr(point, column)),
                            fontsize=7, xytext=(4, 3), textcoords="offset points")
            if task in chance:
                ax.axhline(chance[task], color="grey", linestyle="--", linewidth=1)
            ax.set_xscale("symlog", linthresh=1)
            ax.set_ylim(0, 1.02)
            ax.set_title(f"{task}: {title}", fontsize=10)
            ax.set_xlabel("trainable parameters")
            ax.set_ylabel("test accuracy (mean over seeds)")
    save(fig, path)


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("plot", __doc__)
    parser.add_argument("--tables", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    start(args)
    summary = pd.read_csv(args.tables / "summary.csv")
    languages = pd.read_csv(args.tables / "languages.csv")
    for task in sorted(summary["task"].unique()):
        heatmap(summary, languages, task, args.out / f"heatmap_{task}.png")
    accuracy_vs_distance(summary, languages, pd.read_csv(args.tables / "tasks.csv"), args.out / "accuracy_vs_distance.png")
    compared = pd.read_csv(args.tables / "comparisons.csv", dtype={"better": str}).fillna({"better": ""})
    for task in sorted(summary["task"].unique()):
        comparisons(compared, languages, task, args.out / f"comparisons_{task}.png")
    methods(pd.read_csv(args.tables / "methods.csv"), pd.read_csv(args.tables / "tasks.csv"), args.out / "methods.png")
    logger.info("wrote figures to %s", args.out)
