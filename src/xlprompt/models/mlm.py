"""Language-model training on unlabeled text: the loop shared by pretraining (``pretrain_backbone``,
masked LM) and LTP's fine-tuning (``finetune_mlm``), with each family's own objective
(:func:`lm_objective`):

- ``masked_lm`` (XLM-R, RoBERTa, BERT: a model with a mask token): BERT masking (80% mask, 10%
  random, 10% kept) and the cross-entropy on the masked positions only;
- ``causal_lm`` (XGLM, BLOOM): next-token cross-entropy on every real token after the first
  (the tokenizer's own template: XGLM's leading ``</s>`` predicts the first word, BLOOM adds none);
- ``span_corruption`` (mT5, T5, no mask token): T5's pretraining objective (Raffel et al. 2020):
  ``mask_prob`` of the tokens (T5: 15%) in spans of mean length ``mean_span_length`` (T5: 3) are
  each replaced by one sentinel ``<extra_id_k>`` in the encoder input; the decoder predicts
  ``<extra_id_0> span_0 <extra_id_1> span_1 ... </s>``.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import torch
import torch.nn.functional as F

from xlprompt.data.encoding import pad_batch
from xlprompt.models.compute import CPU, Compute, linear_schedule, place
from xlprompt.models.families import family_of, lm_head_of
from xlprompt.runtime.checkpoint import load_checkpoint, save_checkpoint
from xlprompt.runtime.io import read_utf8
from xlprompt.runtime.logs import progress
from xlprompt.runtime.settings import MLMSettings

if TYPE_CHECKING:  # transformers for the hints only: importing it costs a second
    pass

logger = logging.getLogger(__name__)


def read_documents(files: list[Path]) -> list[str]:
    """Unlabeled documents: ``.txt`` (one per non-empty line) or ``.parquet`` (its text column)."""
    docs = []
    for path in files:
        if path.suffix == ".parquet":
            docs += [t for t in pd.read_parquet(path, columns=["text"])["text"] if isinstance(t, str) and t.strip()]
        elif path.suffix == ".txt":
            docs += [line for line in read_utf8(path).splitlines() if line.strip()]
        else:
            raise ValueError(f"{path}: unlabeled text must be .txt (one document per line) or .parquet (a text column)")
    if not docs:
        raise ValueError(f"no text in {[str(f) for f in files]}")
    return docs


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


def masked_positions_loss(
    model, inputs: torch.Tensor, attention_mask: torch.Tensor, targets: torch.Tensor, chosen: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy of the LM head on the masked positions only.

    The output layer (hidden x vocab) runs on about 15% of the positions instead of all of
    them: the same loss as the standard head, at a fraction of its cost.
    """
    hidden = model.base_model(input_ids=inputs, attention_mask=attention_mask).last_hidden_state  # (B, S, d)
    picked = hidden[chosen]  # (n_masked, d)
    return F.cross_entropy(lm_head_of(model)(picked), targets[chosen])


OBJECTIVES = ("masked_lm", "causal_lm", "span_corruption")


def sentinel_ids(tokenizer) -> list[int]:
    """Ids of T5's sentinels ``<extra_id_0>``, ``<extra_id_1>``, ... that the tokenizer has, in order."""
    vocab = tokenizer.get_vocab()
    ids: list[int] = []
    while f"<extra_id_{len(ids)}>" in vocab:
        ids.append(vocab[f"<extra_id_{len(ids)}>"])
    return ids


def lm_objective(model: torch.nn.Module, tokenizer) -> str:
    """The fine-tuning objective of a backbone (one of :data:`OBJECTIVES`): the one it was pretrained with.

    Masked LMs: the masked-LM loss (they have a mask token); causal LMs: the next-token loss;
    encoder-decoders, which have no mask token: T5's span corruption, with the tokenizer's sentinels.
    """
    family = family_of(model)
    if family == "masked_lm":
        if tokenizer.mask_token_id is None:
            raise ValueError(
                f"{type(model).__name__} is a masked LM, but its tokenizer ({type(tokenizer).__name__}) "
                "has no mask token to fine-tune it with"
            )
        return "masked_lm"
    if family == "causal_lm":
        return "causal_lm"
    if not sentinel_ids(tokenizer):
        raise ValueError(
            f"{type(model).__name__}: span corruption needs the sentinel tokens <extra_id_0>, ... "
            f"that T5 and mT5 tokenizers have; {type(tokenizer).__name__} has none"
        )
    return "span_corruption"


def causal_lm_loss(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy of a causal LM over every real token after the first.

    input_ids, attention_mask: (batch, seq), right-padded. As :func:`masked_positions_loss`,
    the output layer runs on the predicted positions only (no padding): the same loss as the
    model's own with pads ignored.
    """
    hidden = model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, S, d)
    follows = attention_mask[:, 1:].bool()  # (B, S - 1): position t predicts token t + 1 where that one is real
    picked = hidden[:, :-1][follows]  # (n_predicted, d)
    return F.cross_entropy(model.get_output_embeddings()(picked), input_ids[:, 1:][follows])


def random_segmentation(n_items: int, n_segments: int, generator: torch.Generator) -> list[int]:
    """``n_items`` split into ``n_segments`` non-empty runs, each split equally likely (T5's)."""
    cuts = sorted((torch.randperm(n_items - 1, generator=generator)[: n_segments - 1] + 1).tolist())
    bounds = [0, *cuts, n_items]
    return [end - begin for begin, end in itertools.pairwise(bounds)]


def random_spans_noise_mask(
    length: int, density: float, mean_span_length: float, max_spans: int, generator: torch.Generator
) -> list[bool]:
    """T5's noise mask: round(density * length) tokens in about that / mean_span_length spans,
    alternating kept and corrupted runs, kept first (at most ``max_spans`` spans: one sentinel each)."""
    if length < 2:
        return [True] * length  # nothing to keep beside a corrupted token: the whole text is the span
    n_noise = min(max(round(length * density), 1), length - 1)
    n_spans = min(max(round(n_noise / mean_span_length), 1), max_spans, n_noise, length - n_noise)
    mask = []
    for keep, noise in zip(
        random_segmentation(length - n_noise, n_spans, generator), random_segmentation(n_noise, n_spans, generator)
    ):
        mask += [False] * keep + [True] * noise
    return mask


def span_corrupt(
    tokens: list[int],
    density: float,
    mean_span_length: float,
    sentinels: list[int],
    eos_id: int,
    generator: torch.Generator,
) -> tuple[list[int], list[int]]:
    """One document -> (encoder input, decoder target) of T5's span corruption, both ending in ``</s>``.

    ``the cat sat on the mat </s>`` -> ``the <extra_id_0> on the <extra_id_1> </s>`` and
    ``<extra_id_0> cat sat <extra_id_1> mat </s>``.
    """
    body = tokens[:-1] if tokens and tokens[-1] == eos_id else tokens
    noise = random_spans_noise_mask(len(body), density, mean_span_length, len(sentinels), generator)
    inputs, targets, span = [], [], -1
    for i, (token, noisy) in enumerate(zip(body, noise)):
        if not noisy:
            inputs.append(token)
            continue
        if i == 0 or not noise[i - 1]:  # a span starts: one sentinel stands for all of it
            span += 1
            inputs.append(sentinels[span])
            targets.append(sentinels[span])
        targets.append(token)
    return [*inputs, eos_id], [*targets, eos_id]


def seq2seq_loss(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of an encoder-decoder on ``labels`` (batch, target_len; -100 = padding), teacher-forced."""
    decoder_inputs = model.prepare_decoder_input_ids_from_labels(labels=labels)  # shifted right, from the start token
    logits = model(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_inputs).logits
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)  # logits: (B, T, vocab)


def objective_batch(
    objective: str,
    docs: list[list[int]],
    tokenizer,
    settings: MLMSettings,
    generator: torch.Generator,
    special: torch.Tensor,
    focus: torch.Tensor,
    sentinels: list[int],
) -> dict[str, torch.Tensor]:
    """The tensors of one training batch of ``objective`` from token-id documents (CPU draws only)."""
    s = settings
    if objective == "masked_lm":
        ids, attention = pad_batch(docs, tokenizer.pad_token_id)
        maskable = attention.bool() & ~torch.isin(ids, special)
        prob = torch.where(torch.isin(ids, focus), s.focus_mask_prob, s.mask_prob)
        masked, chosen = mask_tokens(ids, maskable, prob, tokenizer.mask_token_id, len(tokenizer), generator)
        return {"inputs": masked, "attention_mask": attention, "targets": ids, "chosen": chosen}
    if objective == "causal_lm":
        ids, attention = pad_batch(docs, tokenizer.pad_token_id)
        return {"input_ids": ids, "attention_mask": attention}
    if objective == "span_corruption":
        pairs = [
            span_corrupt(doc, s.mask_prob, s.mean_span_length, sentinels, tokenizer.eos_token_id, generator)
            for doc in docs
        ]
        ids, attention = pad_batch([inputs for inputs, _ in pairs], tokenizer.pad_token_id)
        labels, real = pad_batch([targets for _, targets in pairs], tokenizer.pad_token_id)
        return {"input_ids": ids, "attention_mask": attention, "labels": labels.masked_fill(real == 0, -100)}
    raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")


def objective_loss(model, objective: str, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    if objective == "masked_lm":
        return masked_positions_loss(model, batch["inputs"], batch["attention_mask"], batch["targets"], batch["chosen"])
    if objective == "causal_lm":
        return causal_lm_loss(model, batch["input_ids"], batch["attention_mask"])
    return seq2seq_loss(model, batch["input_ids"], batch["attention_mask"], batch["labels"])


def train_masked_lm(
    model: torch.nn.Module,
    tokenizer,
    corpus: list[list[int]],
    settings: MLMSettings,
    focus_ids: AbstractSet[int] = frozenset(),
    checkpoint_dir: Path | None = None,
    stamp: str = "",
    desc: str = "masked LM",
    compute: Compute = CPU,
) -> list[dict]:
    """:func:`train_lm` with the masked-LM objective (pretraining)."""
    return train_lm(model, tokenizer, corpus, settings, "masked_lm", focus_ids, checkpoint_dir, stamp, desc, compute)


def train_lm(
    model: torch.nn.Module,
    tokenizer,
    corpus: list[list[int]],
    settings: MLMSettings,
    objective: str = "masked_lm",
    focus_ids: AbstractSet[int] = frozenset(),
    checkpoint_dir: Path | None = None,
    stamp: str = "",
    desc: str = "masked LM",
    compute: Compute = CPU,
) -> list[dict]:
    """Train ``model`` in place on token-id documents with ``objective``; return the loss log.

    Batches are a pure function of (seed, step), and a checkpoint holds parameters, optimizer
    and RNG state, so a run resumed from ``checkpoint_dir`` ends bit-identical to one that
    never stopped. Dropout draws from torch's global generator: callers seed it first
    (``build_model`` does for pretraining, ``finetune_mlm`` before fine-tuning). On a GPU
    (``compute``) masking and span corruption still draw on the CPU, so batches stay the same.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    s = settings
    place(model, compute)
    model.train()
    optimizer = compute.optimizer([{"params": list(model.parameters()), "lr": s.lr}], s.weight_decay)
    warmup = max(1, s.steps // 10)
    start_step, log_rows = 0, []
    if checkpoint_dir is not None:
        restored = load_checkpoint(checkpoint_dir, optimizer, stamp)
        if restored is not None:
            tensors, plain = restored
            model.load_state_dict(tensors, strict=False)
            start_step, log_rows = plain["step"], plain["log"]

    special = torch.tensor(sorted(tokenizer.all_special_ids))
    focus = torch.tensor(sorted(focus_ids), dtype=torch.long)
    sentinels = sentinel_ids(tokenizer) if objective == "span_corruption" else []
    bar = progress(range(start_step, s.steps), desc=desc, unit="step", initial=start_step, total=s.steps)
    for step in bar:
        rng = random.Random(f"{s.seed}-{step}")
        gen = torch.Generator().manual_seed(s.seed * 1_000_003 + step)
        docs = [corpus[rng.randrange(len(corpus))] for _ in range(s.batch_size)]
        batch = objective_batch(objective, docs, tokenizer, s, gen, special, focus, sentinels)
        for group in optimizer.param_groups:
            group["lr"] = s.lr * linear_schedule(step, s.steps, warmup)
        batch = {key: value.to(compute.device) for key, value in batch.items()}
        with compute.autocast():
            loss = objective_loss(model, objective, batch).float()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 50 == 0 or step == s.steps - 1:
            log_rows.append({"step": step, "loss": round(loss.item(), 4), "lr": optimizer.param_groups[0]["lr"]})
            bar.set_postfix(loss=f"{loss.item():.3f}")
        done = step + 1
        if checkpoint_dir is not None and done % s.checkpoint_every == 0 and done < s.steps:
            save_checkpoint(
                checkpoint_dir,
                dict(model.named_parameters()),
                optimizer,
                {"fingerprint": stamp, "step": done, "log": log_rows},
            )
    model.eval()
    logger.info("%s done: final loss %.3f", desc, log_rows[-1]["loss"] if log_rows else float("nan"))
    return log_rows
