"""Scoring trained prompts on a data set's test split, language by language.

:class:`TestSets` reads and tokenises each language once, so that every prompt evaluated in
the same process shares one tokenisation. :func:`score` turns a prompted model's predictions
into one metrics row; with a label map it scores a prompt of another task zero-shot (its
predicted source labels mapped onto the target's labels).
"""

from __future__ import annotations

import logging
from pathlib import Path

from xlprompt.data import languages_of, load_labels, load_split
from xlprompt.encoding import EncodedSplit, encode_split
from xlprompt.metrics import accuracy, macro_f1
from xlprompt.prompting import PromptedMaskedLM
from xlprompt.train import predict

logger = logging.getLogger(__name__)


class TestSets:
    """One split of a data set in every requested language, encoded once per max length."""

    def __init__(self, data_dir: Path, tokenizer, languages: list[str] | None = None, split: str = "test") -> None:
        self.data_dir, self.tokenizer, self.split = Path(data_dir), tokenizer, split
        self.labels = load_labels(data_dir)
        self.languages = languages or languages_of(data_dir)
        # Read (and check) every file before anything computes: a bad file fails in seconds.
        self.frames = {lang: load_split(data_dir, lang, split, len(self.labels.names)) for lang in self.languages}
        self._encoded: dict[tuple[str, int], EncodedSplit] = {}

    def encoded(self, lang: str, max_length: int) -> EncodedSplit:
        key = (lang, max_length)
        if key not in self._encoded:
            self._encoded[key] = encode_split(self.tokenizer, self.frames[lang], max_length)
        return self._encoded[key]


def score(model: PromptedMaskedLM, data: EncodedSplit, pad_id: int, n_labels: int,
          label_map: list[int] | None = None, batch_size: int = 128) -> dict:
    """Accuracy and macro-F1 of ``model`` on ``data`` (and mean loss, unless zero-shot).

    ``label_map[i]``: the target label that the model's label i stands for (zero-shot reuse).
    """
    preds, loss = predict(model, data, pad_id, batch_size)
    row = {}
    if label_map is not None:
        preds = [label_map[p] for p in preds]
    else:
        row["loss"] = loss
    return {**row, "accuracy": accuracy(data.labels, preds), "macro_f1": macro_f1(data.labels, preds, n_labels),
            "n": len(data)}
