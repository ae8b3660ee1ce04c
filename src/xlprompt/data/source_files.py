"""Data files as their sources wrote them (Hub downloads, a user's own files), before conversion.

Shared by the Hub loaders (xlprompt.data.hub) and local files (xlprompt.data.local): the error
type and the check of the columns a conversion needs, each problem named with the file; and
reading a local table in its own format with pandas (Hub files are read through datasets,
``xlprompt.data.hub.read_hub_file``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

FORMATS = (".tsv", ".csv", ".jsonl", ".parquet")


class SourceDataError(ValueError):
    """A source file (or its description) that cannot be converted; the message names it."""


def read_table(path: Path) -> pd.DataFrame:
    """A .tsv, .csv, .jsonl or .parquet file, every text column as written."""
    if not path.exists():
        raise SourceDataError(f"{path}: no such file")
    try:
        if path.suffix == ".tsv":  # texts contain quotes: every field verbatim, as a string
            return pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False)
        if path.suffix == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False)
        if path.suffix == ".jsonl":
            return pd.read_json(path, lines=True, dtype=False)
        return pd.read_parquet(path)
    except Exception as err:  # pandas and pyarrow raise several types for damaged files
        raise SourceDataError(f"{path}: cannot be read as {path.suffix[1:]} ({err})") from None


def require_columns(frame: pd.DataFrame, columns: list[str], path: Path, expected: str) -> None:
    """Every column a conversion reads is there (``expected`` says where the names come from), and rows too."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SourceDataError(f"{path}: missing column(s) {missing} ({expected}); the file has {list(frame.columns)}")
    if frame.empty:
        raise SourceDataError(f"{path}: the split is empty")
