"""Draw SPoT's transfer matrix from transfer.csv (and from nothing else).

Writes ``transfer_gain.png``: source x target heatmaps of the accuracy gain over random init
(mean over seeds), in the training language and averaged over every evaluation language.
Rows are the label-word baseline, each source used as initialisation, and each source reused
zero-shot; a blank cell is a pair that does not apply (no label map for zero-shot).

Example:
    python -m xlprompt plot_transfer --transfer results/demo/tables/transfer.csv \
        --train-language en --out results/demo/figures/transfer_gain.png
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

from xlprompt.analysis.figures import save  # noqa: E402
from xlprompt.runtime.cli import stage_parser, start  # noqa: E402

logger = logging.getLogger(__name__)


ROW_LABELS = {"label_words": "label words", "transfer": "init: ", "zero_shot": "zero-shot: ",
              "projector": "projected, tuned", "projector_zero_shot": "projected, zero-shot"}


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
    order = (["label words"] + sorted(r for r in table.index if r.startswith("init: "))
             + sorted(r for r in table.index if r.startswith("zero-shot: "))
             + sorted(r for r in table.index if r.startswith("label words [")))
    order += sorted(r for r in table.index if r not in order)
    return table.loc[order]


def plot_transfer(transfer: pd.DataFrame, train_language: str, path: Path) -> None:
    panels = [(train_language, f"in the training language ({train_language})"), (None, "mean over evaluation languages")]
    matrices = [gain_matrix(transfer, lang) for lang, _ in panels]
    limit = max(0.05, max(float(m.abs().max().max()) for m in matrices if m.size))
    rows, cols = matrices[0].shape
    fig, axes = plt.subplots(1, 2, figsize=(2 * 1.3 * cols + 5.5, 0.5 * rows + 2), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1.25]})
    for i, (ax, matrix, (_, title)) in enumerate(zip(axes[0], matrices, panels)):
        sns.heatmap(matrix, annot=True, fmt="+.2f", center=0, vmin=-limit, vmax=limit, cmap="RdBu", ax=ax,
                    yticklabels=i == 0, cbar=i == 1, cbar_kws={"label": "accuracy gain over random init"})
        ax.set_title(title)
        ax.set_xlabel("target task")
        ax.set_ylabel("")
        for row, label in enumerate(matrix.index):  # blank cells: pairs that do not apply
            for col, target in enumerate(matrix.columns):
                if pd.isna(matrix.loc[label, target]):
                    ax.text(col + 0.5, row + 0.5, "n/a", ha="center", va="center", color="grey")
    fig.suptitle("Soft prompt transfer: gain over random init (mean over seeds)")
    save(fig, path)


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("plot_transfer", __doc__)
    parser.add_argument("--transfer", required=True, type=Path, help="transfer.csv")
    parser.add_argument("--train-language", default="en", help="the targets' training language")
    parser.add_argument("--out", required=True, type=Path, help="PNG file to write")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    start(args)
    plot_transfer(pd.read_csv(args.transfer), args.train_language, args.out)
    logger.info("wrote %s", args.out)
