"""Print where an experiment's results are and its headline table (the end of `make demo`).

Reads summary.csv (and languages.csv, for the order of the languages, where it exists) under
--tables; writes nothing. Prints the tables and figures folders and the report, then test
accuracy per method (rows) and language (columns), one block per task: the mean over seeds and,
where summary.csv has the columns low and high, its 95% interval.

Example:
    python -m xlprompt headline --tables results/demo/tables
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from xlprompt.analysis.headline import headline_table
from xlprompt.runtime.cli import stage_parser, start


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("headline", __doc__)
    parser.add_argument("--tables", required=True, type=Path, help="the experiment's tables folder")
    parser.add_argument("--report", type=Path, help="the HTML report (default: report.html next to --tables)")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    start(args)
    summary_csv = args.tables / "summary.csv"
    if not summary_csv.is_file():
        raise SystemExit(f"headline: {summary_csv} not found; run the workflow first (make demo)")
    languages_csv = args.tables / "languages.csv"
    languages = list(pd.read_csv(languages_csv)["lang"]) if languages_csv.is_file() else None
    table = headline_table(pd.read_csv(summary_csv), languages)
    figures = args.tables.parent / "figures"
    report = args.report or args.tables.parent / "report.html"
    print(f"tables:  {args.tables}/ ({len(list(args.tables.glob('*.csv')))} CSV files)")
    print(f"figures: {figures}/ ({len(list(figures.glob('*.png')))} PNG files)")
    print(f"report:  {report}" + ("" if report.is_file() else " (not built: make report)"))
    print()
    print(table)
