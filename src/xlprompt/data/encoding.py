"""Turning a data-set split into token ids for a prompted model of any family (xlprompt.models.families)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch

from xlprompt.runtime.logs import timed
from xlprompt.runtime.methods import METHODS_BY_NAME

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def pad_batch(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token-id lists -> (input_ids, attention_mask), both (batch, max_len)."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask


@dataclass
class EncodedSplit:
    """Token ids, one row per example (lists: variable length), and where each is read.

    ``mask_index``: the ``<mask>`` slot (masked LMs) or the text's length, where the prompt
    follows it (causal LMs); unused by encoder-decoders (they read the first decoder position).

    ``choices`` is set when several tasks share one prompt (a SPoT multi-task source): the
    verbalizer then lists every task's label words side by side, ``labels`` index into that
    list, and row r may only choose among ``choices[r] = (start, stop)``.

    ``token_type_ids`` (one list per row, like ``input_ids``) where the tokenizer gives them
    (BERT: 1 for the second text of a pair), else None.
    """

    input_ids: list[list[int]]
    mask_index: list[int]
    labels: list[int]
    choices: list[tuple[int, int]] | None = None
    token_type_ids: list[list[int]] | None = None
    ids: list[str] | None = None  # the examples' ids (the data set's id column)

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, rows: Sequence[int] | torch.Tensor, pad_id: int) -> dict[str, torch.Tensor]:
        rows = [int(r) for r in rows]
        ids, attention = pad_batch([self.input_ids[r] for r in rows], pad_id)
        batch = {
            "input_ids": ids,
            "attention_mask": attention,
            "mask_index": torch.tensor([self.mask_index[r] for r in rows]),
            "labels": torch.tensor([self.labels[r] for r in rows]),
        }
        if self.choices is not None:
            batch["choices"] = torch.tensor([self.choices[r] for r in rows])  # (B, 2)
        if self.token_type_ids is not None:
            batch["token_type_ids"] = pad_batch([self.token_type_ids[r] for r in rows], 0)[0]  # (B, S)
        return batch

    def head(self, n: int) -> EncodedSplit:
        """The first ``n`` rows."""
        types = self.token_type_ids[:n] if self.token_type_ids is not None else None
        choices = self.choices[:n] if self.choices is not None else None
        ids = self.ids[:n] if self.ids is not None else None
        return EncodedSplit(self.input_ids[:n], self.mask_index[:n], self.labels[:n], choices, types, ids)

    def inference_batches(self, batch_size: int, pad_id: int) -> Iterator[tuple[list[int], dict[str, torch.Tensor]]]:
        """Batches for scoring, rows sorted by length so that little of each batch is padding.

        Yields (rows, batch): callers put each row's result back at its position in the split.
        """
        order = sorted(range(len(self)), key=lambda r: len(self.input_ids[r]))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            yield rows, self.batch(rows, pad_id)

    @classmethod
    def concatenate(cls, parts: list[EncodedSplit], n_labels: list[int]) -> EncodedSplit:
        """Several tasks' splits as one, labels shifted into the side-by-side label list."""
        ids, mask_index, labels, choices, offset = [], [], [], [], 0
        for part, n in zip(parts, n_labels):
            ids += part.input_ids
            mask_index += part.mask_index
            labels += [offset + label for label in part.labels]
            choices += [(offset, offset + n)] * len(part)
            offset += n
        types = None
        if all(part.token_type_ids is not None for part in parts):
            types = [row for part in parts for row in part.token_type_ids or []]
        example_ids = [i for part in parts for i in (part.ids or [])] if all(p.ids for p in parts) else None
        return cls(ids, mask_index, labels, choices, types, example_ids)


def restrict_to_choices(logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Logits (..., B, n_labels) with every label outside a row's task set to -inf."""
    if "choices" not in batch:
        return logits
    label = torch.arange(logits.shape[-1], device=logits.device)  # (n_labels,)
    start, stop = batch["choices"][:, :1], batch["choices"][:, 1:]  # (B, 1) each
    return logits.masked_fill((label < start) | (label >= stop), float("-inf"))


@dataclass(frozen=True)
class SpecialTokens:
    """Where a tokenizer puts its special tokens around one text and around a pair.

    Read off the tokenizer itself (its post-processor, through ``special_tokens_mask``), so a
    masked LM's input follows the template it was pretrained with: ``<s> A </s></s> B </s>``
    for XLM-R, ``[CLS] A [SEP] B [SEP]`` for BERT. ``pair_types``: the token type of the first
    segment (prefix, A, middle) and of the second (B, suffix), None where the model takes none.
    """

    single_prefix: list[int]
    single_suffix: list[int]
    pair_prefix: list[int]
    pair_middle: list[int]
    pair_suffix: list[int]
    pair_types: tuple[int, int] | None

    @classmethod
    def of(cls, tokenizer: PreTrainedTokenizerBase) -> SpecialTokens:
        single = tokenizer("a", return_special_tokens_mask=True)
        pair = tokenizer("a", "b", return_special_tokens_mask=True, return_token_type_ids=True)
        one = _runs(single["input_ids"], single["special_tokens_mask"])
        two = _runs(pair["input_ids"], pair["special_tokens_mask"])
        if len(two) == 3:  # nothing between the two texts (BLOOM adds no special tokens at all)
            two = [two[0], [], [], [], two[2]]
        if len(one) != 3 or len(two) != 5:
            raise ValueError(
                f"{type(tokenizer).__name__}: cannot read its special-token template "
                f"(one text -> {single['input_ids']}, a pair -> {pair['input_ids']})"
            )
        types = None
        if "token_type_ids" in tokenizer.model_input_names:
            first_b = len(two[0]) + len(tokenizer("a", add_special_tokens=False)["input_ids"]) + len(two[2])
            types = (pair["token_type_ids"][0], pair["token_type_ids"][first_b])
        return cls(one[0], one[2], two[0], two[2], two[4], types)


def _runs(ids: list[int], special: list[int]) -> list[list[int]]:
    """``ids`` cut into alternating runs: specials, text, specials[, text, specials]."""
    runs: list[list[int]] = [[]]
    for token, is_special in zip(ids, special):
        if bool(is_special) != (len(runs) % 2 == 1):  # the current run is of the other kind
            runs.append([])
        runs[-1].append(token)
    if len(runs) % 2 == 0:
        runs.append([])  # no trailing specials
    return runs


def text_length(max_length: int, length_budget: str, prompt_positions: int, family: str) -> int:
    """Tokens one input's text may take, its special tokens included, under a run's ``training.max_length``.

    ``length_budget`` text: ``max_length`` itself, the prompt on top. total: what ``max_length`` leaves
    after the prompt's ``prompt_positions``, and for a causal LM one more, the end-of-sequence token
    that closes the SPT authors' input after the prompt (``text [PROMPT]*L </s>``, src/preprocessing.py).
    xlprompt does not feed that token: it comes after the position the label is read at, so in a causal
    model it cannot change the prediction; counting it cuts each text where theirs is cut.
    """
    if length_budget == "text":
        return max_length
    if length_budget != "total":
        raise ValueError(f"length_budget must be text or total, got {length_budget!r}")
    return max_length - prompt_positions - (1 if family == "causal_lm" else 0)


def run_encoding(config: dict[str, Any], family: str) -> tuple[int, bool]:
    """(text tokens, special tokens) of a run's config as its meta.json records it: the last two
    arguments of :func:`encode_split` (records older than the options: the text budget, with specials)."""
    method = METHODS_BY_NAME.get(config["method"])  # none for a projected prompt ("projector"): an input prompt
    positions = int(config.get("prompt_length", 0)) if method is None or method.input_prompt else 0
    length = text_length(int(config["max_length"]), config.get("length_budget", "text"), positions, family)
    return length, bool(config.get("add_special_tokens", True))


def encode_split(
    tokenizer: PreTrainedTokenizerBase,
    frame: pd.DataFrame,
    max_length: int,
    family: str = "masked_lm",
    special_tokens: bool = True,
) -> EncodedSplit:
    """Encode a split for ``family``; the text (then the pair) is cut to fit ``max_length`` tokens.

    masked_lm: the tokenizer's own template with ``<mask>`` at the end of the last segment,
    ``<s> text [</s> </s> pair] <mask> </s>`` (XLM-R), ``[CLS] text [SEP] [pair] [MASK] [SEP]``
    (BERT, with token types where the tokenizer gives them); causal_lm and seq2seq: the
    tokenizer's own special tokens and pair layout (what the model was pretrained with; XGLM
    starts with ``</s>``, BLOOM adds none, mT5 ends with ``</s>``). ``special_tokens`` false:
    none of them, the texts side by side (a masked LM's ``<mask>`` still ends the input), as
    the SPT authors tokenize (``add_special_tokens=False``).
    """
    if family != "masked_lm":
        return _encode_plain(tokenizer, frame, max_length, family, special_tokens)
    if tokenizer.mask_token_id is None:
        raise ValueError(f"{type(tokenizer).__name__} has no mask token: a masked-LM prompt is read at the mask")
    special = SpecialTokens.of(tokenizer) if special_tokens else SpecialTokens([], [], [], [], [], None)
    with timed("tokenising"):
        texts = tokenizer(list(frame["text"]), add_special_tokens=False)["input_ids"]
        has_pair = frame["text_pair"].notna()
        pairs = tokenizer([p if isinstance(p, str) else "" for p in frame["text_pair"]], add_special_tokens=False)[
            "input_ids"
        ]
    mask = tokenizer.mask_token_id
    ids, mask_index, token_types = [], [], []
    for text, pair, paired in zip(texts, pairs, has_pair):
        if paired:
            prefix, middle, suffix = special.pair_prefix, special.pair_middle, special.pair_suffix
            budget = max_length - len(prefix) - len(middle) - len(suffix) - 1  # room for <mask>
            pair = pair[: max(budget // 2, budget - len(text))]
            text = text[: budget - len(pair)]
            first = prefix + text + middle
            second = [*pair, mask, *suffix]
        else:
            prefix, suffix = special.single_prefix, special.single_suffix
            first = prefix + text[: max_length - len(prefix) - len(suffix) - 1]
            second = [mask, *suffix]
        mask_index.append(len(first) + len(second) - len(suffix) - 1)
        ids.append(first + second)
        if special.pair_types is not None:
            type_a, type_b = special.pair_types if paired else (special.pair_types[0],) * 2
            token_types.append([type_a] * len(first) + [type_b] * len(second))
    labels = [int(v) for v in frame["label"]]
    return EncodedSplit(
        ids,
        mask_index,
        labels,
        token_type_ids=token_types if special.pair_types else None,
        ids=[str(i) for i in frame["id"]],
    )


def _encode_plain(
    tokenizer: PreTrainedTokenizerBase, frame: pd.DataFrame, max_length: int, family: str, special_tokens: bool
) -> EncodedSplit:
    texts = list(frame["text"])
    pairs = [p if isinstance(p, str) else None for p in frame["text_pair"]]
    cut = {"max_length": max_length, "add_special_tokens": special_tokens}
    with timed("tokenising"):
        if all(p is None for p in pairs):
            ids = tokenizer(texts, truncation=True, **cut)["input_ids"]
        elif all(p is not None for p in pairs):
            ids = tokenizer(texts, pairs, truncation="longest_first", **cut)["input_ids"]
        else:  # a task whose rows differ: each row as it is
            ids = [tokenizer(t, p, truncation="longest_first", **cut)["input_ids"] for t, p in zip(texts, pairs)]
    # A causal LM reads after the prompt that follows the text; an encoder-decoder at the decoder.
    mask_index = [len(row) for row in ids] if family == "causal_lm" else [0] * len(ids)
    return EncodedSplit(
        [list(row) for row in ids], mask_index, [int(v) for v in frame["label"]], ids=[str(i) for i in frame["id"]]
    )
