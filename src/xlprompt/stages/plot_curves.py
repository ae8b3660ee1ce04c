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
        --prompt results/demo/prompts/tiny-xlmr-demo/topic/spt/L16/seed0 \
                 results/demo/prompts/tiny-xlmr-demo/topic/spt/L16/seed1 \
        --table results/demo/tables/training_curves.csv --out results/demo/figures
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from xlprompt.analysis.curves import training_curves
from xlprompt.analysis.figures import training_figure
from xlprompt.runtime.cli import stage_parser, start
from xlprompt.runtime.io import read_json, write_csv

logger = logging.getLogger(__name__)


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
    logger.info(
        "training curves of %d of %d runs; figures for %s in %s",
        len(curves.groupby(["task", "method", "prompt_length", "seed"])),
        len(args.prompt),
        ", ".join(tasks),
        args.out,
    )
