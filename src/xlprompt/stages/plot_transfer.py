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

import pandas as pd

from xlprompt.analysis.figures import plot_transfer
from xlprompt.runtime.cli import stage_parser, start

logger = logging.getLogger(__name__)


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
