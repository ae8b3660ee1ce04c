"""Training curves of trained prompts, from their train_log.jsonl: a tidy table and a figure per task.

Writes::

    --table                  training_curves.csv: model, task, method, prompt_length, seed, step,
                             metric (dev_loss | dev_accuracy | train_loss), value
    --out/training_{task}.png   per task: validation loss and accuracy against step, one colour per
                             method, one thin line per seed (dashes: prompt length, where several)

Methods that do not train (untrained, no_prompt) have no validation lines and no curve; every
task of the prompts still gets its figure. The figures are drawn from the table alone.

Example:
    python -m xlprompt plot_curves --model tiny-xlmr-demo \
        --prompt results/demo/prompts/tiny-xlmr-demo/topic/spt/L16/seed0 results/demo/prompts/tiny-xlmr-demo/topic/spt/L16/seed1 \
        --table results/demo/tables/training_curves.csv --out results/demo/figures
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

from xlprompt.analysis.curves import training_curves  # noqa: E402
from xlprompt.analysis.figures import ordered_methods, save  # noqa: E402
from xlprompt.runtime.cli import stage_parser, start  # noqa: E402
from xlprompt.runtime.io import read_json, write_csv  # noqa: E402

logger = logging.getLogger(__name__)

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
            sns.lineplot(data=data, x="step", y="value", hue="method", hue_order=hue_order,
                         style="prompt length" if len(lengths) > 1 else None, units="seed", estimator=None,
                         marker="o", markersize=3, markeredgewidth=0, linewidth=0.9, alpha=0.8, ax=ax,
                         legend=ax is axes[-1])
        else:
            ax.text(0.5, 0.5, "no trained runs", ha="center", va="center", transform=ax.transAxes, color="grey")
        ax.set_xlabel("training step")
        ax.set_ylabel(label)
    axes[1].set_ylim(0, 1.02)
    if axes[1].get_legend() is not None:
        sns.move_legend(axes[1], "upper left", bbox_to_anchor=(1.02, 1), frameon=False)
    fig.suptitle(f"{task}: validation on the training language during training (one line per seed)")
    save(fig, path)


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("plot_curves", __doc__)
    parser.add_argument("--prompt", required=True, type=Path, nargs="+", help="trained prompt artifact folder(s)")
    parser.add_argument("--model", required=True, help="the backbone the prompts were trained on (its folder name)")
    parser.add_argument("--table", required=True, type=Path, help="the tidy table to write (training_curves.csv)")
    parser.add_argument("--out", required=True, type=Path, help="figures folder")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    start(args)
    curves = training_curves(args.prompt, args.model)
    write_csv(curves, args.table)
    # Every task of the prompts gets a figure, also one whose runs none trained.
    tasks = sorted({read_json(prompt / "meta.json")["task"] for prompt in args.prompt})
    for task in tasks:
        training_figure(curves, task, args.out / f"training_{task}.png")
    logger.info("training curves of %d of %d runs; figures for %s in %s",
                len(curves.groupby(["task", "method", "prompt_length", "seed"])), len(args.prompt),
                ", ".join(tasks), args.out)
