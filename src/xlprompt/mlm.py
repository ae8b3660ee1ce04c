"""Masked-LM batches and the masked-positions-only loss (pretraining and LTP's fine-tuning)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pad_batch(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token-id lists -> (input_ids, attention_mask), both (batch, max_len)."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask


def mask_tokens(
    input_ids: torch.Tensor,
    maskable: torch.Tensor,
    mask_prob: torch.Tensor,
    mask_id: int,
    vocab_size: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: choose positions with per-token probability; 80% <mask>, 10% random, 10% kept.

    input_ids, maskable (bool), mask_prob: (batch, seq). Returns (masked inputs, chosen (bool)).
    """
    chosen = (torch.rand(input_ids.shape, generator=generator) < mask_prob) & maskable
    # Every sequence predicts at least one token, so no batch row is wasted.
    empty = ~chosen.any(dim=1)
    if empty.any():
        scores = torch.rand(input_ids.shape, generator=generator).masked_fill(~maskable, -1.0)
        first = scores.argmax(dim=1)
        chosen[empty, first[empty]] = True
    roll = torch.rand(input_ids.shape, generator=generator)
    inputs = input_ids.clone()
    inputs[chosen & (roll < 0.8)] = mask_id
    random_slots = chosen & (roll >= 0.8) & (roll < 0.9)
    inputs[random_slots] = torch.randint(vocab_size, input_ids.shape, generator=generator)[random_slots]
    return inputs, chosen


def masked_positions_loss(model, inputs: torch.Tensor, attention_mask: torch.Tensor,
                          targets: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the LM head on the masked positions only.

    The output layer (hidden x vocab) runs on about 15% of the positions instead of all of
    them: the same loss as the standard head, at a fraction of its cost.
    """
    hidden = model.base_model(input_ids=inputs, attention_mask=attention_mask).last_hidden_state  # (B, S, d)
    picked = hidden[chosen]  # (n_masked, d)
    return F.cross_entropy(lm_head_of(model)(picked), targets[chosen])


def lm_head_of(model: torch.nn.Module) -> torch.nn.Module:
    """The masked-LM output head (hidden -> vocabulary logits) of an encoder masked LM."""
    for name in ("lm_head", "cls"):  # XLM-R / RoBERTa, BERT
        if hasattr(model, name):
            return getattr(model, name)
    raise TypeError(f"{type(model).__name__} has no known masked-LM head (lm_head or cls)")
