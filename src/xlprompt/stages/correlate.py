"""Correlate every similarity measure with transfer over all (source, target) pairs.

Reads similarity.csv and transfer.csv; writes correlation.csv: per similarity measure
(metric, embedding, layers) and outcome (gain over random init in the training language and
averaged over languages; zero-shot accuracy where a label map applies), the number of pairs,
Spearman and Pearson correlation and their percentile-bootstrap 95% intervals.

Example:
    python -m xlprompt correlate --similarity results/demo/tables/similarity.csv \
        --transfer results/demo/tables/transfer.csv --out results/demo/tables/correlation.csv
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from xlprompt.analysis.correlation import correlation_table
from xlprompt.runtime.cli import stage_parser, start
from xlprompt.runtime.io import write_csv

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("correlate", __doc__)
    parser.add_argument("--similarity", required=True, type=Path)
    parser.add_argument("--transfer", required=True, type=Path)
    parser.add_argument("--train-language", default="en", help="the targets' training language")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--out", required=True, type=Path, help="correlation.csv to write")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    start(args)
    table = correlation_table(
        pd.read_csv(args.similarity), pd.read_csv(args.transfer), args.train_language, args.resamples, args.seed
    )
    write_csv(table, args.out)
    logger.info("wrote %d correlations to %s", len(table), args.out)
