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

from xlprompt.analysis.figures import experiment_figures
from xlprompt.runtime.cli import stage_parser, start

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("plot", __doc__)
    parser.add_argument("--tables", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    start(args)
    experiment_figures(args.tables, args.out)
    logger.info("wrote figures to %s", args.out)
