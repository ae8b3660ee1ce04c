"""A user's own data files (MLDoc, Taxi1500, anything labelled) converted to the data contract.

The config names where the files are (a path with ``{lang}`` and ``{split}``), which column
holds what, and the label names; the format follows the file's suffix (.tsv, .csv, .jsonl,
.parquet). A language without a training file is evaluation-only. Every problem is reported
with the file (and row) before anything is written.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from xlprompt.data.contract import SPLITS
from xlprompt.data.source_files import FORMATS, SourceDataError, read_table, require_columns

logger = logging.getLogger(__name__)


class LocalDataError(SourceDataError):
    """A local data file or its description in the config that cannot be used."""


@dataclass(frozen=True)
class LocalSpec:
    """What the config says about a local data set (``data.datasets.<name>`` with ``local:``)."""

    path: str  # e.g. /data/mldoc/{lang}/{split}.tsv
    languages: tuple[str, ...]
    labels: tuple[str, ...]  # label names, in the order of the label ids
    text: str = "text"  # column names in the files
    label: str = "label"
    text_pair: str | None = None
    id: str | None = None
    label_words: tuple[str, ...] | None = None  # default: the label names
    split_names: Mapping[str, str] = field(default_factory=lambda: {s: s for s in SPLITS})  # contract -> in path

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> LocalSpec:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise LocalDataError(f"local data: unknown key(s) {unknown}; allowed: {sorted(known)}")
        for key in ("path", "languages", "labels"):
            if key not in raw:
                raise LocalDataError(f"local data: missing key {key!r}")
        values = dict(raw)
        for key in ("languages", "labels", "label_words"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        spec = cls(**values)
        spec.check()
        return spec

    def check(self) -> None:
        if "{lang}" not in self.path or "{split}" not in self.path:
            raise LocalDataError(f"local data: path {self.path!r} needs both {{lang}} and {{split}}")
        if Path(self.path).suffix not in FORMATS:
            raise LocalDataError(f"local data: path {self.path!r}: the suffix must be one of {list(FORMATS)}")
        if len(set(self.labels)) != len(self.labels) or len(self.labels) < 2:
            raise LocalDataError(f"local data: labels {list(self.labels)} must be at least 2 distinct names")
        if self.label_words is not None and len(self.label_words) != len(self.labels):
            raise LocalDataError(f"local data: {len(self.label_words)} label_words for {len(self.labels)} labels")
        missing = sorted(set(SPLITS) - set(self.split_names))
        if missing:
            raise LocalDataError(f"local data: split_names lacks {missing}")

    def file(self, lang: str, split: str) -> Path:
        return Path(self.path.format(lang=lang, split=self.split_names[split]))

    @property
    def words(self) -> tuple[str, ...]:
        return self.label_words or self.labels


def label_ids(values: pd.Series, names: tuple[str, ...], path: Path) -> pd.Series:
    """Label names (or their ids 0..n-1) -> ids; anything else is an error naming the row."""
    index = {name: i for i, name in enumerate(names)}
    as_text = values.map(lambda v: str(v).strip())
    by_name = as_text.map(index)
    by_id = pd.to_numeric(as_text, errors="coerce").where(lambda ids: ids.isin(range(len(names))))
    ids = by_name.fillna(by_id)
    unknown = ids.index[ids.isna()]
    if len(unknown):
        row = int(unknown[0])
        raise LocalDataError(
            f"{path}: row {row} has label {values.iloc[row]!r}, which is not one of the labels "
            f"{list(names)} (or their ids 0..{len(names) - 1})"
        )
    return ids.astype("int64")


def convert_file(spec: LocalSpec, path: Path) -> pd.DataFrame:
    frame = read_table(path)
    wanted = [c for c in (spec.text, spec.label, spec.text_pair, spec.id) if c is not None]
    require_columns(frame, wanted, path, "from the config's column mapping")
    frame = frame.reset_index(drop=True)
    ids = frame[spec.id].astype(str) if spec.id else pd.Series([str(i) for i in range(len(frame))])
    converted: pd.DataFrame = pd.DataFrame(
        {
            "id": ids,
            "text": frame[spec.text],
            "text_pair": frame[spec.text_pair] if spec.text_pair else None,
            "label": label_ids(frame[spec.label], spec.labels, path),
        }
    )
    return converted


def local_splits(spec: LocalSpec) -> dict[tuple[str, str], pd.DataFrame]:
    """(language, split) -> contract frame, for every file the spec names that exists.

    Each language needs its test file; train and validation come together or not at all (a
    language without them is evaluation-only).
    """
    frames = {}
    for lang in spec.languages:
        present = {split: spec.file(lang, split).exists() for split in SPLITS}
        if not present["test"]:
            raise LocalDataError(f"{spec.file(lang, 'test')}: missing (every language needs a test split)")
        if present["train"] != present["validation"]:
            have, lack = ("train", "validation") if present["train"] else ("validation", "train")
            raise LocalDataError(
                f"{spec.file(lang, lack)}: missing, while {spec.file(lang, have)} exists "
                "(a language trains with both or is evaluation-only with neither)"
            )
        if not present["train"]:
            logger.info("%s: no training split; evaluation only", lang)
        for split in SPLITS:
            if present[split]:
                frames[lang, split] = convert_file(spec, spec.file(lang, split))
    return frames
