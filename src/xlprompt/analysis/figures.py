"""Every figure of an experiment, drawn from its tables (and from nothing else), with what they share: the order
methods appear in, and how a figure is written (atomically, as PNG)."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never open a window

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.artist import Artist

from xlprompt.analysis.correlation import transfer_outcomes
from xlprompt.analysis.figure_text import text_problems
from xlprompt.analysis.spot import SIMILARITY_KEYS
from xlprompt.runtime.io import atomic_file
from xlprompt.runtime.settings import METHODS

logger = logging.getLogger(__name__)

METHOD_ORDER = list(METHODS)  # the library's order of methods: every figure lists them so


def ordered_methods(values: Iterable[str]) -> list[str]:
    """The methods among ``values`` in the library's order, then any others (variants) alphabetically."""
    present = set(values)
    known = [m for m in METHOD_ORDER if m in present]
    return known + sorted(present - set(known))


def save(fig, path: Path) -> None:
    """Write ``fig`` to ``path`` as PNG (under a temporary name until complete) and close it; text that
    collides (:func:`xlprompt.analysis.figure_text.text_problems`) is logged as a warning."""
    for problem in text_problems(fig):
        logger.warning("%s: %s", Path(path).name, problem)
    with atomic_file(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=130, bbox_inches="tight")
    plt.close(fig)


def heatmap(summary: pd.DataFrame, languages: pd.DataFrame, task: str, path: Path) -> None:
    acc = summary[(summary.task == task) & (summary.metric == "accuracy")]
    acc = acc.assign(row=acc["method"] + " L" + acc["prompt_length"].astype(str))
    table = acc.pivot_table(index="row", columns="lang", values="mean")
    lang_order = [lang for lang in languages["lang"] if lang in table.columns]
    row_order = [r for m in ordered_methods(acc["method"]) for r in sorted(acc.loc[acc.method == m, "row"].unique())]
    table = table.loc[row_order, lang_order]
    text = acc.assign(text=acc.apply(lambda r: f"{r['mean']:.2f}\n[{r['low']:.2f}, {r['high']:.2f}]", axis=1))
    text = text.pivot(index="row", columns="lang", values="text").loc[row_order, lang_order]
    fig, ax = plt.subplots(figsize=(1.3 * len(lang_order) + 2, 0.75 * len(row_order) + 1.5))
    sns.heatmap(
        table,
        annot=text,
        fmt="",
        annot_kws={"fontsize": 7},
        vmin=0,
        vmax=1,
        cmap="viridis",
        ax=ax,
        cbar_kws={"label": "accuracy"},
    )
    order = "by distance from English" if languages["distance"].notna().any() else "as listed (no distances)"
    ax.set_title(f"{task}: test accuracy, mean over seeds [95% interval]\nlanguages ordered {order}", fontsize=10)
    ax.set_xlabel("language")
    ax.set_ylabel("method, prompt length")
    save(fig, path)


def accuracy_vs_distance(summary: pd.DataFrame, languages: pd.DataFrame, tasks: pd.DataFrame, path: Path) -> None:
    acc = summary[summary.metric == "accuracy"].merge(languages[["lang", "distance"]], on="lang")
    order = [
        f"{m} L{length}"
        for m in ordered_methods(acc["method"])
        for length in sorted(acc.loc[acc.method == m, "prompt_length"].unique())
    ]
    acc = acc.assign(method=acc["method"] + " L" + acc["prompt_length"].astype(str))
    # Generated languages have a distance from English; real ones (Hub data) have none: then the
    # x axis lists the languages in languages.csv's order.
    measured = acc["distance"].notna().any()
    x, label = ("distance", "distance from English") if measured else ("lang", "language (no distance known)")
    position = {lang: i for i, lang in enumerate(languages["lang"])}
    acc = acc.sort_values("distance") if measured else acc.sort_values("lang", key=lambda s: s.map(position))
    tasks_shown = sorted(acc["task"].unique())
    fig, axes = plt.subplots(
        1, len(tasks_shown), figsize=(3.6 * len(tasks_shown) + 1.5, 3.4), sharey=True, squeeze=False
    )
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
            ax.errorbar(
                xs,
                line["mean"],
                yerr=[line["mean"] - line["low"], line["high"] - line["mean"]],
                marker="o",
                markersize=4,
                capsize=2,
                linewidth=1.2,
                color=colours[method],
                label=method,
            )
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
    lang_order = [*(lang for lang in languages["lang"] if lang in set(rows["lang"])), "all"]
    pair_order = list(dict.fromkeys(rows["pair"]))
    values = rows.pivot(index="pair", columns="lang", values="difference").loc[pair_order, lang_order]
    marks = rows.assign(text=rows.apply(lambda r: f"{r['difference']:+.2f}{'*' if r['better'] else ''}", axis=1))
    marks = marks.pivot(index="pair", columns="lang", values="text").loc[pair_order, lang_order]
    fig, ax = plt.subplots(figsize=(1.1 * len(lang_order) + 2.5, 0.45 * len(pair_order) + 1.5))
    sns.heatmap(
        values,
        annot=marks,
        fmt="",
        annot_kws={"fontsize": 8},
        vmin=-1,
        vmax=1,
        center=0,
        cmap="RdBu",
        ax=ax,
        cbar_kws={"label": "accuracy of A - accuracy of B"},
    )
    ax.set_title(
        f"{task}: paired differences on the same test\nexamples (mean over seeds); * one method\n"
        "better beyond chance (paired permutation\ntest, Holm over languages, 0.05)",
        fontsize=10,
    )
    ax.set_xlabel("language (all: every language's examples together)")
    ax.set_ylabel("A - B, prompt length")
    save(fig, path)


def methods(table: pd.DataFrame, tasks: pd.DataFrame, path: Path) -> None:
    """Per task, near and far languages: accuracy against trainable parameters, a point per method and
    prompt length, named in the legend (labels beside the points would collide: methods that train
    nothing share x = 0, and the untrained ones the chance level)."""
    groups = [("accuracy_near", "near languages"), ("accuracy_far", "far languages")]
    groups = [(column, title) for column, title in groups if table[column].notna().any()]
    task_names = sorted(table["task"].unique())
    fig, axes = plt.subplots(
        len(task_names),
        len(groups),
        figsize=(4.2 * len(groups) + 1, 3.2 * len(task_names)),
        squeeze=False,
        sharex=True,
        sharey=True,
    )
    order = ordered_methods(table["method"])
    colours = dict(zip(order, sns.color_palette(n_colors=len(order))))
    lengths = sorted(table["prompt_length"].unique())
    markers = dict(zip(lengths, "osD^v<>pX*"))
    chance = dict(zip(tasks["task"], tasks["chance_accuracy"]))
    for row, task in enumerate(task_names):
        for col, (column, title) in enumerate(groups):
            ax = axes[row][col]
            for point in table[table.task == task].itertuples():
                ax.scatter(
                    point.trainable_parameters,
                    getattr(point, column),
                    color=colours[point.method],
                    s=40,
                    marker=markers.get(point.prompt_length, "o"),
                    alpha=0.85,
                    label=f"{point.method} L{point.prompt_length}",
                )
            if task in chance:
                ax.axhline(chance[task], color="grey", linestyle="--", linewidth=1, label="chance")
            ax.set_xscale("symlog", linthresh=1)
            ax.set_ylim(0, 1.02)
            ax.set_title(f"{task}: {title}", fontsize=10)
            ax.set_xlabel("trainable parameters")
            ax.set_ylabel("test accuracy (mean over seeds)")
            ax.label_outer()  # axis labels on the outer panels only: the axes are shared
    entries: dict[str, Artist] = {}
    for ax in axes.flat:
        entries.update(zip(*reversed(ax.get_legend_handles_labels())))
    names = sorted(
        entries,
        key=lambda name: (name == "chance", order.index(name.rsplit(" L", 1)[0]) if name != "chance" else 0, name),
    )
    fig.legend([entries[name] for name in names], names, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    save(fig, path)


PANELS = [("dev_loss", "validation loss"), ("dev_accuracy", "validation accuracy")]


def training_figure(curves: pd.DataFrame, task: str, path: Path) -> None:
    """Validation loss and accuracy against step for one task's runs (rows of ``curves``)."""
    mine = curves[curves.task == task]
    methods = set(mine["method"])
    hue_order = ordered_methods(methods)
    lengths = sorted(mine["prompt_length"].unique())
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharex=True)
    for ax, (metric, label) in zip(axes, PANELS):
        data = mine[mine.metric == metric].rename(columns={"prompt_length": "prompt length"})
        if not data.empty:
            # units + estimator=None: every seed its own line, nothing averaged.
            sns.lineplot(
                data=data,
                x="step",
                y="value",
                hue="method",
                hue_order=hue_order,
                style="prompt length" if len(lengths) > 1 else None,
                units="seed",
                estimator=None,
                marker="o",
                markersize=3,
                markeredgewidth=0,
                linewidth=0.9,
                alpha=0.8,
                ax=ax,
                legend=ax is axes[-1],
            )
        else:
            ax.text(0.5, 0.5, "no trained runs", ha="center", va="center", transform=ax.transAxes, color="grey")
        ax.set_xlabel("training step")
        ax.set_ylabel(label)
    axes[1].set_ylim(0, 1.02)
    if axes[1].get_legend() is not None:
        sns.move_legend(axes[1], "upper left", bbox_to_anchor=(1.02, 1), frameon=False)
    fig.suptitle(f"{task}: validation on the training language during training (one line per seed)")
    save(fig, path)


def measure_name(metric: str, embedding: str, layers: str) -> str:
    if embedding == "activations":
        return f"{metric} (neurons, layers {layers})"
    return f"{metric} ({'task embedding' if embedding == 'snapshot' else 'trained prompt'})"


def similarity_vs_transfer(
    similarity: pd.DataFrame, transfer: pd.DataFrame, correlation: pd.DataFrame, train_language: str, path: Path
) -> None:
    """One panel per similarity measure: the gain of each (source, target) pair against the pair's
    similarity, targets by colour and sources by marker (named in the legend, not beside the points,
    where they would collide), the panel's Spearman correlation and its p-value under its title."""
    outcome = f"gain_{train_language}"
    points = similarity.merge(
        transfer_outcomes(transfer, train_language).query("outcome == @outcome"),
        on=["source", "target", "prompt_length"],
    )
    measures = points[SIMILARITY_KEYS].drop_duplicates().sort_values(SIMILARITY_KEYS).itertuples(index=False)
    measures = list(measures)
    cols = min(4, len(measures))
    rows = math.ceil(len(measures) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols + 1.5, 3.3 * rows), squeeze=False, sharey=True)
    targets, sources = sorted(points["target"].unique()), sorted(points["source"].unique())
    for ax, (metric, embedding, layers) in zip(axes.flat, measures):
        mine = points[(points.metric == metric) & (points.embedding == embedding) & (points.layers == layers)]
        sns.scatterplot(
            data=mine,
            x="value",
            y="outcome_value",
            hue="target",
            hue_order=targets,
            style="source",
            style_order=sources,
            ax=ax,
            s=60,
        )
        stats = correlation[
            (correlation.metric == metric)
            & (correlation.embedding == embedding)
            & (correlation.layers == layers)
            & (correlation.outcome == outcome)
        ]
        title = measure_name(metric, embedding, layers)
        if len(stats):
            s = stats.iloc[0]
            if pd.isna(s.spearman):  # a constant similarity or gain: no ranks to correlate
                title += "\n\u03c1 undefined (constant values)"
            else:
                title += (
                    f"\n\u03c1 {s.spearman:+.2f} [{s.spearman_low:+.2f}, {s.spearman_high:+.2f}], "
                    f"p {s.spearman_p_sources:.2f}"
                )
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("distance" if metric == "euclidean" else "similarity")
        # the y axis is shared: its label on the first column only (x differs between measures)
        ax.set_ylabel(
            f"accuracy gain over random init ({train_language})" if ax.get_subplotspec().is_first_col() else ""
        )
        ax.axhline(0, color="grey", linewidth=0.8, linestyle="--")
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    for ax in list(axes.flat)[len(measures) :]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.suptitle(
        "Does prompt similarity predict transfer? One point per (source, target) pair\n"
        "\u03c1: Spearman correlation [95% interval]; p: permutation test over sources",
        fontsize=11,
    )
    fig.tight_layout()
    save(fig, path)


def neuron_masking(table: pd.DataFrame, path: Path) -> None:
    data = table.assign(prompt=table["name"] + " (" + table["task"] + ")")
    grid = sns.catplot(
        data=data,
        x="lang",
        y="accuracy",
        hue="condition",
        col="prompt",
        kind="bar",
        hue_order=["all_on", "random_off", "top_off"],
        height=3,
        aspect=1.2,
        errorbar=None,
        col_wrap=min(3, data["prompt"].nunique()),
    )
    share = table["share"].iloc[0]
    grid.figure.suptitle(
        f"Switching off a prompt's top {share:.0%} activated neurons vs as many random ones (mean over seeds)", y=1.03
    )
    save(grid.figure, path)


ROW_LABELS = {
    "label_words": "label words",
    "transfer": "init: ",
    "zero_shot": "zero-shot: ",
    "projector": "projected, tuned",
    "projector_zero_shot": "projected, zero-shot",
}


def gain_matrix(transfer: pd.DataFrame, lang: str | None) -> pd.DataFrame:
    """Rows: init and source; columns: targets; values: mean accuracy gain over random init.

    Rows of a second backbone (cross-model transfer) carry its name in brackets.
    """
    acc = transfer[(transfer["metric"] == "accuracy") & (transfer["init"] != "random")]
    if lang is not None:
        acc = acc[acc["lang"].isin([lang, "all"])]
    label = acc["init"].map(ROW_LABELS)
    with_source = acc["init"].isin(["transfer", "zero_shot"])
    row = label.where(~with_source, label + acc["source"])
    counts = transfer["model"].value_counts()
    main = sorted(counts.index, key=lambda m: (-counts[m], m))[0]
    row = row.where(acc["model"] == main, row + " [" + acc["model"] + "]")
    acc = acc.assign(row=row)
    table = acc.groupby(["row", "target"], sort=True)["gain"].mean().unstack("target")
    order = [
        "label words",
        *sorted(r for r in table.index if r.startswith("init: ")),
        *sorted(r for r in table.index if r.startswith("zero-shot: ")),
        *sorted(r for r in table.index if r.startswith("label words [")),
    ]
    order += sorted(r for r in table.index if r not in order)
    return table.loc[order]


def plot_transfer(transfer: pd.DataFrame, train_language: str, path: Path) -> None:
    panels = [
        (train_language, f"in the training language ({train_language})"),
        (None, "mean over evaluation languages"),
    ]
    matrices = [gain_matrix(transfer, lang) for lang, _ in panels]
    limit = max(0.05, max(float(m.abs().max().max()) for m in matrices if m.size))
    rows, cols = matrices[0].shape
    fig, axes = plt.subplots(
        1, 2, figsize=(2 * 1.3 * cols + 5.5, 0.5 * rows + 2), squeeze=False, gridspec_kw={"width_ratios": [1, 1.25]}
    )
    for i, (ax, matrix, (_, title)) in enumerate(zip(axes[0], matrices, panels)):
        sns.heatmap(
            matrix,
            annot=True,
            fmt="+.2f",
            center=0,
            vmin=-limit,
            vmax=limit,
            cmap="RdBu",
            ax=ax,
            yticklabels=i == 0,
            cbar=i == 1,
            cbar_kws={"label": "accuracy gain over random init"},
        )
        ax.set_title(title)
        ax.set_xlabel("target task")
        ax.set_ylabel("")
        for row, label in enumerate(matrix.index):  # blank cells: pairs that do not apply
            for col, target in enumerate(matrix.columns):
                if pd.isna(matrix.loc[label, target]):
                    ax.text(col + 0.5, row + 0.5, "n/a", ha="center", va="center", color="grey")
    fig.suptitle("Soft prompt transfer: gain over random init (mean over seeds)")
    save(fig, path)


def experiment_figures(tables: Path, out: Path) -> None:
    """The experiment's figures (``python -m xlprompt plot --help`` lists them) from its tables folder."""
    summary = pd.read_csv(tables / "summary.csv")
    languages = pd.read_csv(tables / "languages.csv")
    tasks = pd.read_csv(tables / "tasks.csv")
    compared = pd.read_csv(tables / "comparisons.csv", dtype={"better": str}).fillna({"better": ""})
    for task in sorted(summary["task"].unique()):
        heatmap(summary, languages, task, out / f"heatmap_{task}.png")
    accuracy_vs_distance(summary, languages, tasks, out / "accuracy_vs_distance.png")
    for task in sorted(summary["task"].unique()):
        comparisons(compared, languages, task, out / f"comparisons_{task}.png")
    methods(pd.read_csv(tables / "methods.csv"), tasks, out / "methods.png")


def similarity_figures(tables: Path, train_language: str, out: Path) -> None:
    """Similarity against transfer, and the neuron masking check, from the tables folder."""
    read = {
        name: pd.read_csv(tables / f"{name}.csv")
        for name in ("similarity", "transfer", "correlation", "neuron_masking")
    }
    similarity_vs_transfer(
        read["similarity"], read["transfer"], read["correlation"], train_language, out / "similarity_vs_transfer.png"
    )
    neuron_masking(read["neuron_masking"], out / "neuron_masking.png")
