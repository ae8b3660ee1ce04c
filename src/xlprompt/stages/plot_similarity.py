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
from pathlib import Path

from xlprompt.analysis.figures import similarity_figures
from xlprompt.runtime.cli import stage_parser, start

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("plot_similarity", __doc__)
    parser.add_argument(
        "--tables", required=True, type=Path, help="folder with similarity, transfer, correlation, neuron_masking .csv"
    )
    parser.add_argument("--train-language", default="en")
    parser.add_argument("--out", required=True, type=Path, help="figures folder")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    start(args)
    similarity_figures(args.tables, args.train_language, args.out)
    logger.info("wrote figures to %s", args.out)
