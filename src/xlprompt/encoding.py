"""Turning a data-set split into token ids for the prompted masked LM."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from xlprompt.mlm import pad_batch


@dataclass
class EncodedSplit:
    """Token ids with the <mask> slot, one row per example (lists: variable length)."""

    input_ids: list[list[int]]
    mask_index: list[int]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, rows: list[int] | torch.Tensor, pad_id: int) -> dict[str, torch.Tensor]:
        rows = [int(r) for r in rows]
        ids, attention = pad_batch([self.input_ids[r] for r in rows], pad_id)
        return {
            "input_ids": ids,
            "attention_mask": attention,
            "mask_index": torch.tensor([self.mask_index[r] for r in rows]),
            "labels": torch.tensor([self.labels[r] for r in rows]),
        }


def encode_split(tokenizer, frame: pd.DataFrame, max_length: int) -> EncodedSplit:
    """``<s> text [</s> </s> pair] <mask> </s>``; the text (then the pair) is cut to fit."""
    texts = tokenizer(list(frame["text"]), add_special_tokens=False)["input_ids"]
    has_pair = frame["text_pair"].notna()
    pairs = tokenizer([p if isinstance(p, str) else "" for p in frame["text_pair"]], add_special_tokens=False)["input_ids"]
    bos, eos, mask = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.mask_token_id
    ids, mask_index = [], []
    for text, pair, paired in zip(texts, pairs, has_pair):
        budget = max_length - (5 if paired else 3)  # room for the special tokens and <mask>
        if paired:
            pair = pair[: max(budget // 2, budget - len(text))]
            text = text[: budget - len(pair)]
            row = [bos] + text + [eos, eos] + pair
        else:
            row = [bos] + text[:budget]
        mask_index.append(len(row))
        ids.append(row + [mask, eos])
    return EncodedSplit(ids, mask_index, [int(v) for v in frame["label"]])
