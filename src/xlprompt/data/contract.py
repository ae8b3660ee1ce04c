"""The data-set contract shared by every stage.

A data set is a folder::

    labels.json                 {"task": ..., "names": [...], "verbalizers": {family: [...]},
                                 optionally "verbalizers_by_language": {lang: {family: [...]}}}
    {lang}/{split}.parquet      columns id (str), text (str), text_pair (str or null), label (int)

Every loader (generated world, Hub, local files) writes exactly this, and every later stage
reads it through :func:`load_split` and :func:`load_labels`, which reject malformed files
with a message naming the file and the problem.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from xlprompt.runtime.io import atomic_file, read_json, write_json
from xlprompt.runtime.settings import ConfigError

logger = logging.getLogger(__name__)

COLUMNS = ("id", "text", "text_pair", "label")
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class LabelSpace:
    task: str
    names: list[str]
    verbalizers: dict[str, list[str]]  # model family -> one word per label (the default, English)
    by_language: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # lang -> family -> words

    def verbalizer(self, family: str, language: str | None = None) -> list[str]:
        """The label words ``family`` reads; a language's own words where labels.json gives them."""
        if language in self.by_language and family in self.by_language[language]:
            return self.by_language[language][family]
        if family not in self.verbalizers:
            raise ValueError(
                f"labels.json of task {self.task!r} has no verbalizer for model family {family!r}; "
                f"it has {sorted(self.verbalizers)}"
            )
        return self.verbalizers[family]


def write_labels(folder: str | Path, space: LabelSpace) -> None:
    raw = {"task": space.task, "names": space.names, "verbalizers": space.verbalizers}
    if space.by_language:
        raw["verbalizers_by_language"] = space.by_language
    write_json(Path(folder) / "labels.json", raw)


def load_labels(folder: str | Path) -> LabelSpace:
    path = Path(folder) / "labels.json"
    raw = read_json(path)
    for key in ("task", "names", "verbalizers"):
        if key not in raw:
            raise ValueError(f"{path}: missing key {key!r}")
    names = raw["names"]
    by_language = raw.get("verbalizers_by_language", {})
    for where, verbalizers in [("", raw["verbalizers"])] + [
        (f" of language {lang!r}", v) for lang, v in by_language.items()
    ]:
        for family, words in verbalizers.items():
            if len(words) != len(names):
                raise ValueError(
                    f"{path}: verbalizer for {family!r}{where} has {len(words)} words for {len(names)} labels"
                )
    return LabelSpace(raw["task"], list(names), dict(raw["verbalizers"]), dict(by_language))


def write_split(frame: pd.DataFrame, folder: str | Path, lang: str, split: str) -> Path:
    path = Path(folder) / lang / f"{split}.parquet"
    frame = frame.loc[:, list(COLUMNS)].astype(
        {"id": "string", "text": "string", "text_pair": "string", "label": "int64"}
    )
    with atomic_file(path, "wb") as handle:
        frame.to_parquet(handle, index=False)
    return path


def split_path(folder: str | Path, lang: str, split: str) -> Path:
    return Path(folder) / lang / f"{split}.parquet"


def languages_of(folder: str | Path) -> list[str]:
    """Languages present in a data set folder (those with at least one split file)."""
    return sorted(p.name for p in Path(folder).iterdir() if p.is_dir() and any(p.glob("*.parquet")))


def load_split(folder: str | Path, lang: str, split: str, n_labels: int | None = None) -> pd.DataFrame:
    """Read one split and check it against the contract before anything computes on it."""
    path = split_path(folder, lang, split)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no {split} split for language {lang!r}")
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for corrupt files
        raise ValueError(f"{path}: cannot be read as parquet ({err})") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected {list(COLUMNS)}")
    if frame.empty:
        raise ValueError(f"{path}: the split is empty")
    missing_label = frame.index[frame["label"].isna()]
    if len(missing_label):
        raise ValueError(f"{path}: row {int(missing_label[0])}: column 'label' is empty")
    if not pd.api.types.is_integer_dtype(frame["label"]):
        raise ValueError(f"{path}: column 'label' must be integers, got dtype {frame['label'].dtype}")
    if n_labels is not None:
        bad = frame.index[(frame["label"] < 0) | (frame["label"] >= n_labels)]
        if len(bad):
            row = int(bad[0])
            raise ValueError(
                f"{path}: row {row} has label {frame['label'].iloc[row]}, outside 0..{n_labels - 1} of labels.json"
            )
    not_text = frame.index[~frame["text"].map(lambda v: isinstance(v, str))]
    if len(not_text):
        raise ValueError(f"{path}: row {int(not_text[0])}: column 'text' is not a string")
    blank = frame.index[frame["text"].str.strip() == ""]
    if len(blank):
        raise ValueError(f"{path}: row {int(blank[0])}: column 'text' is blank")
    bad_pair = frame.index[~frame["text_pair"].map(lambda v: v is None or isinstance(v, str) or pd.isna(v))]
    if len(bad_pair):
        raise ValueError(f"{path}: row {int(bad_pair[0])}: column 'text_pair' must be a string or empty")
    bad_id = frame.index[~frame["id"].map(lambda v: isinstance(v, str) and v != "")]
    if len(bad_id):
        raise ValueError(f"{path}: row {int(bad_id[0])}: column 'id' must be a non-empty string")
    if frame["id"].duplicated().any():
        dup = frame["id"][frame["id"].duplicated()].iloc[0]
        raise ValueError(f"{path}: duplicated id {dup!r}")
    return frame


def label_map_indices(
    mapping: dict[str, str],
    source_task: str,
    source_labels: list[str],
    target_task: str,
    target_labels: list[str],
    where: str,
) -> list[int]:
    """A zero-shot label map as target label indices, one per source label in order.

    Any shape is allowed: several source labels may share a target label, and a target label
    may have no source label (xlprompt.analysis.evaluation.score: it is never predicted). Every source label must
    be mapped, and only to a label the target has; ``where`` names the map in the error.
    """
    unknown = [label for label in mapping if label not in source_labels]
    if unknown:
        raise ConfigError(f"{where}: unknown {source_task} label(s) {unknown}; allowed: {source_labels}")
    if sorted(mapping) != sorted(source_labels):
        raise ConfigError(
            f"{where}: the map must give every label of {source_task} exactly once; "
            f"labels: {source_labels}, mapped: {sorted(mapping)}"
        )
    unknown = sorted(set(mapping.values()) - set(target_labels))
    if unknown:
        raise ConfigError(f"{where}: unknown {target_task} label(s) {unknown}; allowed: {target_labels}")
    return [target_labels.index(mapping[label]) for label in source_labels]
