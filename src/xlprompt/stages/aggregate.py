"""Collect every metrics.json of an experiment into tidy tables.

Writes (under --out, a tables folder)::

    per_language.csv       model, task, method, prompt_length, source, seed, lang, metric, value,
                           low, high (95% interval: test examples resampled)
    summary.csv            the same without seed: mean, std, number of seeds, low, high (95%
                           interval of the mean over seeds: seeds, then their test examples)
    comparisons.csv        every pair of methods per task and language (and "all"): accuracies,
                           difference, its 95% interval, paired-test p-value, Holm-corrected p,
                           the method ahead where it is beyond chance (xlprompt.analysis.predictions)
    languages.csv          every language's knobs and its distance from English
    distance_correlation.csv  Spearman rho of accuracy with distance, per task and method
    tasks.csv              per task: number of labels and chance accuracy
    methods.csv            with --prompts: per task, method and prompt length, trainable
                           parameters and share of the backbone, artifact bytes and share of a
                           full checkpoint, training seconds per prompt, accuracy in the
                           training language and over near and far languages

Example:
    python -m xlprompt aggregate --metrics results/demo/metrics/**/*.json \
        --predictions results/demo/predictions/**/*.parquet --methods spt full_ft ltp untrained no_prompt \
        --languages resources/data/demo/languages.json --out results/demo/tables
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from xlprompt.analysis.tables import evaluation_tables
from xlprompt.runtime.cli import stage_parser, start
from xlprompt.runtime.io import write_csv

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("aggregate", __doc__)
    parser.add_argument("--metrics", nargs="+", required=True, type=Path, help="metrics.json files")
    parser.add_argument(
        "--predictions", nargs="+", required=True, type=Path, help="the predictions parquet files of the same prompts"
    )
    parser.add_argument(
        "--prompts",
        nargs="*",
        default=[],
        type=Path,
        help="the evaluated prompt folders (their meta.json): methods.csv",
    )
    parser.add_argument("--methods", nargs="*", default=[], help="the order of methods in comparisons (A before B)")
    parser.add_argument("--languages", required=True, type=Path, help="the world's languages.json")
    parser.add_argument("--out", required=True, type=Path, help="tables folder")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    start(args)
    tables = evaluation_tables(args.metrics, args.predictions, args.languages, args.prompts, args.methods)
    for name, table in tables.items():
        write_csv(table, args.out / f"{name}.csv")
    logger.info("wrote tables for %d metrics files to %s", len(args.metrics), args.out)
