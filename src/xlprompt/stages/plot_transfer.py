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

from xlprompt.cli import stage_parser, start  # noqa: E402
from xlprompt.stages.plot import save  # noqa: E402

logger = logging.getLogger(__name__)


def gain_matrix(transfer: pd.DataFrame, lang: str | None) -> pd.DataFrame:
    """Rows: init and source; columns: targets; values: mean accuracy gain over random init."""
    acc = transfer[(transfer["metric"] == "accuracy") & (transfer["init"] != "random")]
    if lang is not None:
        acc = acc[acc["lang"].isin([lang, "all"])]
    label = acc["init"].map({"label_words": "label words", "transfer": "init: ", "zero_shot": "zero-shot: "})
    acc = acc.assign(row=label.where(acc["init"] == "label_words", label + acc["source"]))
    # Languages first, then seeds: each seed's mean over languages, averaged.
    table = acc.groupby(["row", "target"], sort=True)["gain"].mean().unstack("target")
    order = (["label words"] + sorted(r for r in table.index if r.startswith("init: "))
             + sorted(r for r in table.index if r.startswith("zero-shot: ")))
    return table.loc[[r for r in order if r in table.index]]


def plot_transfer(transfer: pd.DataFrame, train_language: str, path: Path) -> None:
    panels = [(train_language, f"in the training language ({train_language})"), (None, "mean over evaluation languages")]
    matrices = [gain_matrix(transfer, lang) for lang, _ in panels]
    limit = max(0.05, max(float(m.abs().max().max()) for m in matrices if m.size))
    rows, cols = matrices[0].shape
    fig, axes = plt.subplots(1, 2, figsize=(2 * (1.3 * cols + 3), 0.5 * rows + 2), squeeze=False)
    for ax, matrix, (_, title) in zip(axes[0], matrices, panels):
        sns.heatmap(matrix, annot=True, fmt="+.2f", center=0, vmin=-limit, vmax=limit, cmap="RdBu", ax=ax,
                    cbar_kws={"label": "accuracy gain over random init"})
        ax.set_title(title)
        ax.set_xlabel("target task")
        ax.set_ylabel("")
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
