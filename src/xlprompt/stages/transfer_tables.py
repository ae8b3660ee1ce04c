"""SPoT's tables: every transfer run with its gain over random init, and source retrieval.

Reads evaluate_transfer's JSON files and similarity.csv; writes (under --out)::

    transfer.csv    model, target, prompt_length, init, source, source_tasks, source_language,
                    seed, lang, metric, value, applicable, gain (value - random init's)
    retrieval.csv   per target, similarity and language: no transfer, top-1 and best-of-top-3
                    retrieved sources, oracle best source (target 'mean': over targets)
    transfer_comparisons.csv  with --predictions: every pair of inits of a target (random,
                    label_words, each source, each source zero-shot) on the same test examples,
                    per language and over all: difference, 95% interval, paired-test p-value,
                    Holm over languages (xlprompt.analysis.predictions.comparisons_table)

Example:
    python -m xlprompt transfer_tables --results results/demo/transfer_metrics/tiny-xlmr-demo/*/L16.json \
        --predictions results/demo/transfer_predictions/tiny-xlmr-demo/*/L16.parquet \
        --similarity results/demo/tables/similarity.csv --out results/demo/tables
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from xlprompt.analysis.tables import spot_tables
from xlprompt.runtime.cli import stage_parser, start
from xlprompt.runtime.io import write_csv

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("transfer_tables", __doc__)
    parser.add_argument("--results", nargs="+", required=True, type=Path, help="evaluate_transfer JSON files")
    parser.add_argument("--predictions", nargs="*", default=[], type=Path, help="evaluate_transfer predictions files")
    parser.add_argument("--similarity", required=True, type=Path, help="similarity.csv")
    parser.add_argument("--out", required=True, type=Path, help="tables folder")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    start(args)
    tables = spot_tables(args.results, args.similarity, args.predictions)
    for name, table in tables.items():
        write_csv(table, args.out / f"{name}.csv")
    logger.info(
        "wrote transfer.csv (%d rows) and retrieval.csv (%d rows) to %s",
        len(tables["transfer"]),
        len(tables["retrieval"]),
        args.out,
    )
