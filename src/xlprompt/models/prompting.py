"""Soft prompts and the prompted model that reads labels through a verbalizer.

Input layouts, by model family (xlprompt.models.families)::

    masked_lm   [P_1 .. P_L] <s> text </s> </s> text_pair <mask> </s>     read at <mask>
    causal_lm   text [text_pair] [P_1 .. P_L]                             read at P_L (next token)
                (position prefix: [P_1 .. P_L] text [text_pair], read at the last text token)
    seq2seq     encoder [P_1 .. P_L] text [text_pair] </s>; decoder <start>   read at the start

The prompt vectors enter through ``inputs_embeds`` (in front of, or for causal LMs right after,
each row's token embeddings); the label is the LM head's logits of the label words there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from xlprompt.models.families import family_of, lm_head_of, prompt_position
from xlprompt.runtime.settings import INITS, LOSSES

if TYPE_CHECKING:  # transformers for the hints only: importing it costs a second
    from transformers import PreTrainedModel

logger = logging.getLogger(__name__)


class Prompt(nn.Module):
    """What a :class:`PromptedLM` reads in front of (or after) the text: ``forward()`` gives L vectors of
    the backbone's width, (L, d). A :class:`SoftPrompt`, or a source prompt mapped into another backbone
    (xlprompt.methods.projector.ProjectedPrompt)."""

    @property
    def length(self) -> int:
        raise NotImplementedError

    def forward(self) -> torch.Tensor:
        raise NotImplementedError


class SoftPrompt(Prompt):
    """L trainable vectors of the backbone's width, optionally reparameterised.

    With reparameterization (Philippy et al. 2024): P' = LayerNorm(W2 ReLU(W1 P)), the LayerNorm's gain
    and bias trained (``norm_affine``) or fixed at 1 and 0. ``scale``: what the backbone multiplies token
    embeddings by, for a prompt kept in the unscaled space (prompt.space raw; 1: the model's space); the
    backbone then reads ``scale * P'``.
    """

    def __init__(
        self, length: int, dim: int, reparam_hidden: int = 0, scale: float = 1.0, norm_affine: bool = True
    ) -> None:
        super().__init__()
        self.embedding = nn.Parameter(torch.zeros(length, dim))
        self.scale = scale
        self.reparam = (
            nn.Sequential(
                nn.Linear(dim, reparam_hidden),
                nn.ReLU(),
                nn.Linear(reparam_hidden, dim),
                nn.LayerNorm(dim, elementwise_affine=norm_affine),
            )
            if reparam_hidden
            else None
        )

    @property
    def length(self) -> int:
        return int(self.embedding.shape[0])

    def forward(self) -> torch.Tensor:  # (L, d), as the backbone reads it
        out = self.reparam(self.embedding) if self.reparam is not None else self.embedding
        return out * self.scale if self.scale != 1.0 else out


def init_prompt(
    prompt: SoftPrompt,
    how: str,
    embed: nn.Module,
    candidate_ids: list[int],
    label_ids: list[int],
    generator: torch.Generator,
    distinct: bool = False,
) -> None:
    """Initialise the prompt's parameters (in its own space: divided by ``prompt.scale``).

    uniform: U(-0.5, 0.5) (Philippy et al.; in the raw space, as their code draws it); vocab: embeddings
    of tokens sampled from ``candidate_ids`` (SPoT samples the 5,000 most common); label_words: the label
    words' embeddings, repeated to length L (SPoT's target-side baseline). ``embed`` is the backbone's
    input embedding module: its output, not its raw weight, is what the model reads (XGLM scales by
    sqrt(d) inside it), so a token's vector enters the prompt as the model reads that token. ``distinct``:
    vocab draws its tokens without replacement (while there are enough), as Lester et al. do.
    """
    length, dim = prompt.embedding.shape
    with torch.no_grad():
        if how == "uniform":
            prompt.embedding.copy_(torch.rand(length, dim, generator=generator) - 0.5)
        elif how == "vocab":
            if distinct and length <= len(candidate_ids):
                pick = torch.randperm(len(candidate_ids), generator=generator)[:length]
            else:
                pick = torch.randint(len(candidate_ids), (length,), generator=generator)
            prompt.embedding.copy_(embed(torch.tensor(candidate_ids)[pick]) / prompt.scale)
        elif how == "label_words":
            ids = torch.tensor(label_ids).repeat(length // len(label_ids) + 1)[:length]
            prompt.embedding.copy_(embed(ids) / prompt.scale)
        else:
            raise ValueError(f"prompt init must be one of {INITS}, got {how!r}")


def verbalizer_tensor(words: list[list[int]] | list[int]) -> torch.Tensor:
    """Label words' token ids: (n,) when every word is one token, else (n, K) padded with -1."""
    words = [[w] if isinstance(w, int) else list(w) for w in words]
    longest = max(len(w) for w in words)
    if longest == 1:
        return torch.tensor([w[0] for w in words], dtype=torch.long)
    return torch.tensor([w + [-1] * (longest - len(w)) for w in words], dtype=torch.long)


class PromptedLM(nn.Module):
    """A backbone of any family with a soft prompt, scoring the label words where it predicts."""

    verbalizer_ids: torch.Tensor  # a buffer: (n_labels,) or (n_labels, K), see verbalizer_tensor

    def __init__(
        self,
        backbone: PreTrainedModel,
        prompt: Prompt | None,
        verbalizer_ids: list[list[int]] | list[int],
        position: str = "",
        loss: str = "label_words",
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.prompt = prompt
        self.position = prompt_position(family_of(backbone), position)  # prefix | suffix
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        self.loss = loss  # the scores are full-vocabulary log-probabilities when it is "vocabulary"
        self.register_buffer("verbalizer_ids", verbalizer_tensor(verbalizer_ids), persistent=False)

    def prompt_vectors(self) -> torch.Tensor:
        """The prompt as the backbone reads it, (L, d); an error for a model without one."""
        if self.prompt is None:
            raise ValueError("this model has no prompt (no_prompt)")
        return self.prompt()

    @property
    def prompt_positions(self) -> int:
        """Positions the prompt takes beside the text (the backbone's position table must hold both)."""
        return self.prompt.length if self.prompt is not None else 0

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        mask_index: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """input_ids, attention_mask (token_type_ids): (B, S) right-padded; mask_index: (B,).
        Returns (B, n_labels)."""
        prompts = self.prompt().unsqueeze(0) if self.prompt is not None else None
        return prompted_logits(
            self.backbone,
            prompts,
            self.verbalizer_ids,
            input_ids,
            attention_mask,
            mask_index,
            token_type_ids,
            self.position,
            self.loss == "vocabulary",
        )[0]

    def score_batch(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Label logits (B, n_labels) of a batch from :meth:`xlprompt.data.encoding.EncodedSplit.batch`."""
        return self(batch["input_ids"], batch["attention_mask"], batch["mask_index"], batch.get("token_type_ids"))


@dataclass
class PromptedInput:
    """P x B prompted sequences laid out for the backbone, and where each is read.

    embeds, attention_mask (and ``extra``'s token_type_ids): (P*B, T, d), (P*B, T); ``read_at``:
    (P*B,) the position whose output predicts the label word (the mask slot, or the last
    position before the word for a causal LM; an encoder-decoder reads its decoder's first
    position, 0).
    """

    embeds: torch.Tensor
    attention_mask: torch.Tensor
    extra: dict[str, torch.Tensor]
    read_at: torch.Tensor

    def split(self, sizes: list[int]) -> list[PromptedInput]:
        """Consecutive runs of ``sizes`` sequences, each a PromptedInput of its own."""
        parts = zip(self.embeds.split(sizes), self.attention_mask.split(sizes), self.read_at.split(sizes))
        extras = [dict(zip(self.extra, values)) for values in zip(*[v.split(sizes) for v in self.extra.values()])]
        return [
            PromptedInput(embeds, mask, extras[i] if extras else {}, read_at)
            for i, (embeds, mask, read_at) in enumerate(parts)
        ]


def lay_out(
    backbone: PreTrainedModel,
    prompts: torch.Tensor | None,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    mask_index: torch.Tensor,
    token_type_ids: torch.Tensor | None = None,
    position: str = "",
) -> PromptedInput:
    """Every prompt on every row, as the family lays prompt and text out (see the module docstring).

    prompts: (P, L, d), P prompts of one length sharing ``backbone`` (None: no prompt, P = 1);
    input_ids, attention_mask: (B, S) right-padded; mask_index: (B,) (EncodedSplit.mask_index);
    token_type_ids: (B, S) for models that take them (BERT), the prompt's slots type 0 (as PEFT);
    position: prefix | suffix (causal LMs only; default: the family's, xlprompt.models.families).
    Sequence ``p * B + b`` is prompt p on row b.
    """
    batch = input_ids.shape[0]
    n_prompts = prompts.shape[0] if prompts is not None and prompts.shape[1] else 1
    rows = prompts.repeat_interleave(batch, dim=0) if prompts is not None and prompts.shape[1] else None  # (P*B, L, d)
    types = token_type_ids.repeat(n_prompts, 1) if token_type_ids is not None else None
    return lay_out_rows(
        backbone,
        rows,
        input_ids.repeat(n_prompts, 1),
        attention_mask.repeat(n_prompts, 1),
        mask_index.repeat(n_prompts),
        types,
        position,
    )


def lay_out_rows(
    backbone: PreTrainedModel,
    row_prompts: torch.Tensor | None,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    mask_index: torch.Tensor,
    token_type_ids: torch.Tensor | None = None,
    position: str = "",
) -> PromptedInput:
    """Each row with its own prompt: row_prompts (N, L, d), one per row of input_ids (N, S).

    :func:`lay_out` puts P prompts on the same B rows; joint training (``xlprompt.methods.training``) puts
    each prompt on its own batch. Rows never see each other: the layout of a row does not depend
    on what else is in the batch, apart from padding that the attention mask hides.
    """
    family = family_of(backbone)
    position = prompt_position(family, position)
    # The embedding module, not its weight: XGLM scales token embeddings inside it.
    embeds = backbone.get_input_embeddings()(input_ids)  # (N, S, d)
    length = row_prompts.shape[1] if row_prompts is not None else 0
    if row_prompts is not None:  # an fp32 prompt (the master copy that trains) enters a half-precision backbone
        row_prompts = row_prompts.to(embeds.dtype)
    extra = {}
    if token_type_ids is not None and family != "causal_lm":  # the families that take no types ignore them
        if length:
            token_type_ids = torch.cat([token_type_ids.new_zeros(token_type_ids.shape[0], length), token_type_ids], 1)
        extra = {"token_type_ids": token_type_ids}
    if row_prompts is not None and length:
        if position == "suffix":
            embeds, attention_mask = append_after_text(embeds, row_prompts, mask_index)
        else:
            embeds = torch.cat([row_prompts, embeds], dim=1)
            attention_mask = torch.cat(
                [attention_mask.new_ones(attention_mask.shape[0], length), attention_mask], dim=1
            )
    # A causal LM predicts the word after the last prompt vector (suffix) or text token (prefix).
    read_at = {
        "masked_lm": mask_index + length,
        "causal_lm": mask_index + length - 1,
        "seq2seq": torch.zeros_like(mask_index),
    }[family]
    return PromptedInput(embeds, attention_mask, extra, read_at)


def run_backbone(backbone: PreTrainedModel, inputs: PromptedInput) -> torch.Tensor:
    """The hidden states (N, T, d) that predict label words: the encoder's or decoder-only model's,
    or an encoder-decoder's decoder, started with its start token (T = 1)."""
    if family_of(backbone) == "seq2seq":
        start = torch.full(
            (inputs.embeds.shape[0], 1), backbone.config.decoder_start_token_id, device=inputs.embeds.device
        )
        return backbone(
            inputs_embeds=inputs.embeds,
            attention_mask=inputs.attention_mask,
            decoder_input_ids=start,
            output_hidden_states=True,
        ).decoder_hidden_states[-1]
    return backbone.base_model(
        inputs_embeds=inputs.embeds, attention_mask=inputs.attention_mask, **inputs.extra
    ).last_hidden_state


def prompted_logits(
    backbone: PreTrainedModel,
    prompts: torch.Tensor | None,
    verbalizer_ids: torch.Tensor,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    mask_index: torch.Tensor,
    token_type_ids: torch.Tensor | None = None,
    position: str = "",
    full_vocabulary: bool = False,
) -> torch.Tensor:
    """Label-word logits of every prompt on every row, in one forward pass (arguments: :func:`lay_out`).

    Returns (P, B, n_labels): the P x B sequences run as one batch, so evaluating P prompts
    costs one pass over the data. ``full_vocabulary``: log-probabilities under the whole
    vocabulary instead of logits (the same ranking; what the ``vocabulary`` loss reads).
    Label words of several tokens always score their full-vocabulary log-likelihood.
    """
    n_prompts = prompts.shape[0] if prompts is not None and prompts.shape[1] else 1
    inputs = lay_out(backbone, prompts, input_ids, attention_mask, mask_index, token_type_ids, position)
    return label_scores(backbone, inputs, verbalizer_ids, full_vocabulary).view(n_prompts, input_ids.shape[0], -1)


def label_scores(
    backbone: PreTrainedModel, inputs: PromptedInput, verbalizer_ids: torch.Tensor, full_vocabulary: bool = False
) -> torch.Tensor:
    """(N, n_labels) label-word scores of laid-out inputs (see :func:`prompted_logits`)."""
    if verbalizer_ids.dim() == 2:  # label words of several tokens: sum of their tokens' log-probabilities
        family = family_of(backbone)
        if family == "masked_lm":
            raise ValueError(
                "a masked LM reads one token per label word (multi-token words need a causal or encoder-decoder model)"
            )
        return word_log_likelihoods(
            backbone, family, inputs.embeds, inputs.attention_mask, inputs.read_at + 1, verbalizer_ids
        )
    logits = vocabulary_logits(backbone, inputs)
    if full_vocabulary:
        logits = logits.float().log_softmax(dim=-1)
    return logits[:, verbalizer_ids]


def vocabulary_logits(backbone: PreTrainedModel, inputs: PromptedInput) -> torch.Tensor:
    """(N, V): the LM head's logits where each laid-out sequence predicts its label word."""
    if family_of(backbone) == "seq2seq":
        start = torch.full(
            (inputs.embeds.shape[0], 1), backbone.config.decoder_start_token_id, device=inputs.embeds.device
        )
        return backbone(
            inputs_embeds=inputs.embeds, attention_mask=inputs.attention_mask, decoder_input_ids=start
        ).logits[:, 0]
    hidden = run_backbone(backbone, inputs)
    at = hidden[torch.arange(hidden.shape[0], device=hidden.device), inputs.read_at]  # (N, d)
    head = backbone.get_output_embeddings() if family_of(backbone) == "causal_lm" else lm_head_of(backbone)
    return head(at)


def joint_label_scores(
    models: list[PromptedLM], batches: list[dict[str, torch.Tensor]], pad_id: int
) -> list[torch.Tensor]:
    """Each prompted model's label scores (B_i, n_labels_i) on its own batch, with one backbone pass.

    The models share one backbone, one prompt length and one layout; each brings its own prompt,
    label words and loss (:class:`PromptedLM`). Rows are independent, so in eval mode each model's
    scores, and the gradient of its loss, are the ones it gets alone, up to float rounding; in train
    mode its rows draw other dropout masks than alone, from the same distribution.
    """
    first = models[0]
    if any(m.backbone is not first.backbone or m.position != first.position for m in models):
        raise ValueError("prompts scored together must share one backbone and one prompt position")
    lengths = {m.prompt.length if m.prompt is not None else 0 for m in models}
    if len(lengths) > 1:
        raise ValueError(f"prompts scored together must have one length, got {sorted(lengths)}")
    sizes = [len(batch["labels"]) for batch in batches]
    stacked = stack_batches(batches, pad_id)
    rows = None
    if first.prompt is not None:
        rows = torch.cat(
            [m.prompt_vectors().unsqueeze(0).expand(n, -1, -1) for m, n in zip(models, sizes)]
        )  # (N, L, d)
    inputs = lay_out_rows(
        first.backbone,
        rows,
        stacked["input_ids"],
        stacked["attention_mask"],
        stacked["mask_index"],
        stacked.get("token_type_ids"),
        first.position,
    )
    if any(m.verbalizer_ids.dim() == 2 for m in models):  # teacher-forced words: each model's own pass
        return [
            label_scores(m.backbone, part, m.verbalizer_ids, m.loss == "vocabulary")
            for m, part in zip(models, inputs.split(sizes))
        ]
    logits = vocabulary_logits(first.backbone, inputs).split(sizes)
    return [
        (lg.float().log_softmax(dim=-1) if m.loss == "vocabulary" else lg)[:, m.verbalizer_ids]
        for m, lg in zip(models, logits)
    ]


def stack_batches(batches: list[dict[str, torch.Tensor]], pad_id: int) -> dict[str, torch.Tensor]:
    """Batches of :meth:`xlprompt.data.encoding.EncodedSplit.batch` as one: right-padded to the widest."""
    width = max(batch["input_ids"].shape[1] for batch in batches)

    def widen(t: torch.Tensor, value: int) -> torch.Tensor:
        return F.pad(t, (0, width - t.shape[1]), value=value)

    stacked = {
        "input_ids": torch.cat([widen(b["input_ids"], pad_id) for b in batches]),
        "attention_mask": torch.cat([widen(b["attention_mask"], 0) for b in batches]),
        "mask_index": torch.cat([b["mask_index"] for b in batches]),
    }
    if all("token_type_ids" in b for b in batches):
        stacked["token_type_ids"] = torch.cat([widen(b["token_type_ids"], 0) for b in batches])
    return stacked


def label_loss(scores: torch.Tensor, labels: torch.Tensor, loss: str, reduction: str = "mean") -> torch.Tensor:
    """The training loss of label scores (N, n_labels) from a :class:`PromptedLM` with that ``loss``.

    label_words: cross-entropy of the softmax over the label words; vocabulary: -log p(gold word)
    under the whole vocabulary (the scores are already full-vocabulary log-probabilities).
    """
    if loss == "vocabulary":
        return F.nll_loss(scores, labels, reduction=reduction)
    return F.cross_entropy(scores, labels, reduction=reduction)


def append_after_text(
    embeds: torch.Tensor, prompts: torch.Tensor, lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's prompt right after its own text, padding after both (positions stay 0, 1, ...).

    embeds: (N, S, d) right-padded, row n real up to lengths[n]; prompts: (N, L, d).
    Returns (N, S + L, d) and the attention mask (N, S + L).
    """
    seq, dim = embeds.shape[1:]
    length = prompts.shape[1]
    position = torch.arange(seq + length, device=embeds.device).unsqueeze(0)  # (1, T)
    text_len = lengths.unsqueeze(1)  # (N, 1)
    # Index into cat([embeds, prompts]): text tokens, then the prompt, then the text's padding.
    source = torch.where(
        position < text_len,
        position,
        torch.where(position < text_len + length, seq + position - text_len, position - length),
    )
    combined = torch.cat([embeds, prompts], dim=1)
    out = combined.gather(1, source.unsqueeze(-1).expand(-1, -1, dim))
    return out, (position < text_len + length).long()


def word_log_likelihoods(
    backbone: PreTrainedModel,
    family: str,
    embeds: torch.Tensor,
    attention_mask: torch.Tensor,
    context_length: torch.Tensor,
    words: torch.Tensor,
) -> torch.Tensor:
    """log p(word | input) of every label word, by teacher forcing its tokens: (N, n_labels).

    embeds, attention_mask: (N, T, d), (N, T), the prompted input as the family lays it out;
    context_length: (N,), where a causal LM's continuation starts (text + prompt);
    words: (n, K) token ids padded with -1. Each row runs once per label word (N x n sequences).
    For one-token words this equals the label logits up to a per-row constant, so training and
    evaluation rank words the same way in both paths.
    """
    n_rows, n_words, longest = embeds.shape[0], words.shape[0], words.shape[1]
    valid = words >= 0  # (n, K)
    tokens = words.clamp(min=0)

    def expand(t: torch.Tensor) -> torch.Tensor:
        return t.repeat_interleave(n_words, dim=0)

    word_tokens, word_valid = tokens.repeat(n_rows, 1), valid.repeat(n_rows, 1)  # (N*n, K)
    if family == "seq2seq":
        start = torch.full((n_rows * n_words, 1), backbone.config.decoder_start_token_id, device=embeds.device)
        decoder_ids = torch.cat([start, word_tokens[:, :-1]], dim=1)  # (N*n, K): teacher forcing
        logits = backbone(
            inputs_embeds=expand(embeds), attention_mask=expand(attention_mask), decoder_input_ids=decoder_ids
        ).logits  # (N*n, K, V)
    else:
        # Each word's first K-1 tokens follow the prompt; the positions before them predict them.
        continuation = backbone.get_input_embeddings()(word_tokens[:, :-1])  # (N*n, K-1, d)
        starts = expand(context_length)  # (N*n,)
        inputs, attention = append_after_text(expand(embeds), continuation, starts)
        hidden = backbone.base_model(inputs_embeds=inputs, attention_mask=attention).last_hidden_state
        positions = (starts - 1).unsqueeze(1) + torch.arange(longest, device=embeds.device)  # (N*n, K)
        picked = hidden.gather(1, positions.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
        logits = backbone.get_output_embeddings()(picked)  # (N*n, K, V)
    token_log_probs = logits.float().log_softmax(dim=-1).gather(2, word_tokens.unsqueeze(-1)).squeeze(-1)
    return (token_log_probs * word_valid).sum(dim=1).view(n_rows, n_words)
