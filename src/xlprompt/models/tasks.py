"""The task(s) one prompt trains on: one data set, or a mixture (SPoT's multi-task source).

A mixture puts the tasks' label words side by side in one verbalizer list; every example
chooses only among its own task's words (``EncodedSplit.choices``). A single task is the
mixture of one, so training and evaluation have one code path.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from xlprompt.data.contract import LabelSpace, load_labels, load_split, split_path
from xlprompt.data.encoding import EncodedSplit, encode_split
from xlprompt.models.families import label_word_text

logger = logging.getLogger(__name__)


def few_shot(frame: pd.DataFrame, per_class: int, seed: int) -> pd.DataFrame:
    """Stratified sample of ``per_class`` rows of every label (all rows of a smaller class)."""
    if per_class <= 0:
        return frame
    keep = [
        group.sample(n=min(per_class, len(group)), random_state=seed).index
        for _, group in frame.groupby("label", sort=True)
    ]
    return frame.loc[sorted(index for part in keep for index in part)]


def undersample(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Every class cut to the smallest class's count (a seeded sample), rows in their order: balanced classes,
    as the SPT authors undersample their splits (``groupby('label').apply(lambda x: x.sample(min_samples))``)."""
    smallest = int(frame["label"].value_counts().min())
    return few_shot(frame, smallest, seed)


def word_ids(tokenizer, words: list[str], where: str | Path, family: str) -> list[list[int]]:
    """The token ids of every label word as ``family`` reads it.

    Causal and encoder-decoder models score a word of several tokens by the sum of its tokens'
    log-probabilities; a masked LM reads one token at its ``<mask>`` slot, so there each word
    must be a single token.
    """
    ids = []
    for word in words:
        pieces = tokenizer(label_word_text(word, family), add_special_tokens=False)["input_ids"]
        if not pieces:
            raise ValueError(f"{where}: verbalizer word {word!r} is no token at all for this tokenizer")
        if family == "masked_lm" and len(pieces) != 1:
            raise ValueError(
                f"{where}: verbalizer word {word!r} is {len(pieces)} tokens for this tokenizer; "
                "a masked LM reads one token at <mask>: choose single-token label words"
            )
        ids.append(list(pieces))
    return ids


def verbalizer_ids(
    tokenizer, labels: LabelSpace, data_dir: Path, family: str, language: str | None = None
) -> list[list[int]]:
    return word_ids(tokenizer, labels.verbalizer(family, language), data_dir / "labels.json", family)


@dataclass(frozen=True)
class TaskSet:
    """Data folders of the task(s) a prompt trains on, with their label spaces."""

    data_dirs: tuple[Path, ...]
    labels: tuple[LabelSpace, ...]

    @classmethod
    def load(cls, data_dirs: list[Path] | tuple[Path, ...]) -> TaskSet:
        dirs = tuple(Path(d) for d in data_dirs)
        if not dirs:
            raise ValueError("no data set given")
        labels = tuple(load_labels(d) for d in dirs)
        names = [space.task for space in labels]
        if len(set(names)) != len(names):
            raise ValueError(f"the same task twice in one mixture: {names}")
        return cls(dirs, labels)

    @property
    def name(self) -> str:
        """``topic``, or ``topic+nli`` for a mixture."""
        return "+".join(space.task for space in self.labels)

    @property
    def label_counts(self) -> list[int]:
        return [len(space.names) for space in self.labels]

    def verbalizer_ids(self, tokenizer, family: str, language: str | None = None) -> list[list[int]]:
        return [
            i
            for d, space in zip(self.data_dirs, self.labels)
            for i in verbalizer_ids(tokenizer, space, d, family, language)
        ]

    def verbalizers(self, family: str, language: str | None = None) -> dict[str, list[str]]:
        return {space.task: space.verbalizer(family, language) for space in self.labels}

    def label_names(self) -> dict[str, list[str]]:
        return {space.task: list(space.names) for space in self.labels}

    def split_files(self, language: str, split: str) -> list[Path]:
        return [split_path(d, language, split) for d in self.data_dirs]

    def encode(
        self,
        tokenizer,
        language: str,
        split: str,
        max_length: int,
        per_class: int = 0,
        seed: int = 0,
        *,
        family: str,
        special_tokens: bool = True,
        balanced: bool = False,
    ) -> EncodedSplit:
        """One split of every task, encoded (:func:`encode_split`); few-shot sampled when ``per_class`` > 0,
        after cutting every class to the smallest one's count when ``balanced``."""
        parts = []
        for data_dir, space in zip(self.data_dirs, self.labels):
            frame = load_split(data_dir, language, split, len(space.names))
            frame = few_shot(undersample(frame, seed) if balanced else frame, per_class, seed)
            parts.append(encode_split(tokenizer, frame, max_length, family, special_tokens))
        if len(parts) == 1:
            return parts[0]
        return EncodedSplit.concatenate(parts, self.label_counts)
