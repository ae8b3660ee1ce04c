"""Soft prompts and the prompted masked LM that reads labels through a verbalizer.

Input layout (encoder masked LMs), as in PEFT prompt tuning and Su et al. 2022::

    [P_1 .. P_L] <s> text </s> </s> text_pair <mask> </s>

The prompt vectors enter through ``inputs_embeds`` in front of the token embeddings; the
label is read at the ``<mask>`` slot as the masked-LM head's logits of the label words.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from xlprompt.mlm import lm_head_of
from xlprompt.settings import INITS

logger = logging.getLogger(__name__)



class SoftPrompt(nn.Module):
    """L trainable vectors of the backbone's width, optionally reparameterised.

    With reparameterization (Philippy et al. 2024): P' = LayerNorm(W2 ReLU(W1 P)).
    """

    def __init__(self, length: int, dim: int, reparam_hidden: int = 0) -> None:
        super().__init__()
        self.embedding = nn.Parameter(torch.zeros(length, dim))
        self.reparam = (
            nn.Sequential(nn.Linear(dim, reparam_hidden), nn.ReLU(), nn.Linear(reparam_hidden, dim), nn.LayerNorm(dim))
            if reparam_hidden
            else None
        )

    @property
    def length(self) -> int:
        return self.embedding.shape[0]

    def forward(self) -> torch.Tensor:  # (L, d)
        return self.reparam(self.embedding) if self.reparam is not None else self.embedding


def init_prompt(prompt: SoftPrompt, how: str, word_embeddings: torch.Tensor, candidate_ids: list[int],
                label_ids: list[int], generator: torch.Generator) -> None:
    """Initialise the prompt's raw vectors.

    uniform: U(-0.5, 0.5) (Philippy et al.); vocab: embeddings of tokens sampled from
    ``candidate_ids`` (SPoT samples the 5,000 most common); label_words: the label words'
    embeddings, repeated to length L (SPoT's target-side baseline).
    """
    length, dim = prompt.embedding.shape
    with torch.no_grad():
        if how == "uniform":
            prompt.embedding.copy_(torch.rand(length, dim, generator=generator) - 0.5)
        elif how == "vocab":
            pick = torch.randint(len(candidate_ids), (length,), generator=generator)
            prompt.embedding.copy_(word_embeddings[torch.tensor(candidate_ids)[pick]])
        elif how == "label_words":
            ids = torch.tensor(label_ids).repeat(length // len(label_ids) + 1)[:length]
            prompt.embedding.copy_(word_embeddings[ids])
        else:
            raise ValueError(f"prompt init must be one of {INITS}, got {how!r}")


class PromptedMaskedLM(nn.Module):
    """A masked LM with a soft prompt in front, scoring label words at the mask slot."""

    def __init__(self, backbone: nn.Module, prompt: SoftPrompt | None, verbalizer_ids: list[int]) -> None:
        super().__init__()
        self.backbone = backbone
        self.prompt = prompt
        self.register_buffer("verbalizer_ids", torch.tensor(verbalizer_ids, dtype=torch.long), persistent=False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, mask_index: torch.Tensor) -> torch.Tensor:
        """input_ids, attention_mask: (B, S) right-padded; mask_index: (B,). Returns (B, n_labels)."""
        prompts = self.prompt().unsqueeze(0) if self.prompt is not None else None
        return prompted_logits(self.backbone, prompts, self.verbalizer_ids, input_ids, attention_mask, mask_index)[0]


def prompted_logits(backbone: nn.Module, prompts: torch.Tensor | None, verbalizer_ids: torch.Tensor,
                    input_ids: torch.Tensor, attention_mask: torch.Tensor, mask_index: torch.Tensor) -> torch.Tensor:
    """Label-word logits at the mask slot of every prompt on every row, in one forward pass.

    prompts: (P, L, d), P prompts of one length sharing ``backbone`` (None: no prompt, P = 1);
    input_ids, attention_mask: (B, S) right-padded; mask_index: (B,). Returns (P, B, n_labels):
    the P x B sequences run as one batch, so evaluating P prompts costs one pass over the data.
    """
    embeds = backbone.get_input_embeddings()(input_ids)  # (B, S, d)
    batch = input_ids.shape[0]
    n_prompts = 1
    if prompts is not None and prompts.shape[1]:
        n_prompts, length = prompts.shape[:2]
        embeds = torch.cat([prompts.unsqueeze(1).expand(-1, batch, -1, -1),
                            embeds.unsqueeze(0).expand(n_prompts, -1, -1, -1)], dim=2).flatten(0, 1)  # (P*B, L+S, d)
        attention_mask = torch.cat([attention_mask.new_ones(batch, length), attention_mask], dim=1).repeat(n_prompts, 1)
        mask_index = (mask_index + length).repeat(n_prompts)
    hidden = backbone.base_model(inputs_embeds=embeds, attention_mask=attention_mask).last_hidden_state
    at_mask = hidden[torch.arange(hidden.shape[0]), mask_index]  # (P*B, d)
    return lm_head_of(backbone)(at_mask)[:, verbalizer_ids].view(n_prompts, batch, -1)  # (P, B, n_labels)
