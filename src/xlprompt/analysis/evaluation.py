"""Scoring trained prompts on a data set's test split, language by language.

:class:`TestSets` reads and tokenises each language once, so that every prompt evaluated in
the same process shares one tokenisation. :func:`score` turns a prompted model's predictions
into one metrics row; with a label map it scores a prompt of another task zero-shot (its
source-label scores mapped onto the target's labels, :func:`mapped_scores`). :func:`score_together` scores
several prompts of one frozen backbone in the same forward passes (benchmarks/bench_evaluation.py
measures what that saves).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from xlprompt.analysis.metrics import accuracy, macro_f1
from xlprompt.data.contract import languages_of, load_labels, load_split
from xlprompt.data.encoding import EncodedSplit, encode_split, restrict_to_choices, run_encoding
from xlprompt.models.compute import compute_of, to_device
from xlprompt.models.predict import predict_scores
from xlprompt.models.prompting import PromptedLM, label_loss, prompted_logits

logger = logging.getLogger(__name__)


class TestSets:
    """One split of a data set in every requested language, encoded once per max length."""

    def __init__(
        self, data_dir: Path, tokenizer, languages: list[str] | None = None, split: str = "test", *, family: str
    ) -> None:
        self.data_dir, self.tokenizer, self.split, self.family = Path(data_dir), tokenizer, split, family
        self.labels = load_labels(data_dir)
        self.languages = languages or languages_of(data_dir)
        # Read (and check) every file before anything computes: a bad file fails in seconds.
        self.frames = {lang: load_split(data_dir, lang, split, len(self.labels.names)) for lang in self.languages}
        self._encoded: dict[tuple[str, int, bool], EncodedSplit] = {}

    def encoded(self, lang: str, config: dict) -> EncodedSplit:
        """One language's split as a run of ``config`` (its meta.json's) reads it; encoded once per layout."""
        length, special_tokens = run_encoding(config, self.family)
        key = (lang, length, special_tokens)
        if key not in self._encoded:
            self._encoded[key] = encode_split(self.tokenizer, self.frames[lang], length, self.family, special_tokens)
        return self._encoded[key]


@dataclass
class Scored:
    """One prompt on one test set: its metrics row, and each example's label scores.

    ``scores``: (N, n_labels) float32 on the CPU, in the data's row order; the prediction is
    their argmax (a label the prompt cannot reach scores -inf).
    """

    row: dict
    scores: torch.Tensor

    @property
    def preds(self) -> list[int]:
        return self.scores.argmax(dim=-1).tolist()


def predictions_frame(data: EncodedSplit, scored: Scored, label_names: list[str]) -> pd.DataFrame:
    """One row per test example: its id, gold and predicted label (names), every label's score."""
    frame = pd.DataFrame(
        {
            "example_id": data.ids if data.ids is not None else [str(i) for i in range(len(data))],
            "gold": [label_names[g] for g in data.labels],
            "pred": [label_names[p] for p in scored.preds],
        }
    )
    for i, name in enumerate(label_names):
        frame[f"score_{name}"] = scored.scores[:, i].numpy()
    return frame


def score(
    model: PromptedLM,
    data: EncodedSplit,
    pad_id: int,
    n_labels: int,
    label_map: list[int] | None = None,
    batch_size: int = 0,
) -> Scored:
    """Mean loss, accuracy and macro-F1 (over ``n_labels`` labels) of ``model`` on ``data``.

    ``label_map[i]``: the target label that the model's label i stands for (zero-shot reuse of
    a prompt of another task, a label space of any size): see :func:`predict_mapped` for how the
    scores, the predictions and the loss are then formed. The row adds ``loss_n``, the examples
    that the loss averages over.
    """
    if label_map is None:
        scores, loss = predict_scores(model, data, pad_id, batch_size)
        return Scored(metrics_row(data, scores, loss, n_labels), scores)
    scores, mapped_loss, counted = predict_mapped(model, data, pad_id, label_map, n_labels, batch_size)
    return Scored({**metrics_row(data, scores, mapped_loss, n_labels), "loss_n": counted}, scores)


def metrics_row(data: EncodedSplit, scores: torch.Tensor, loss: float | None, n_labels: int) -> dict:
    preds = scores.argmax(dim=-1).tolist()
    return {
        "loss": loss,
        "accuracy": accuracy(data.labels, preds),
        "macro_f1": macro_f1(data.labels, preds, n_labels),
        "n": len(data),
    }


def mapped_scores(logits: torch.Tensor, label_map: torch.Tensor, n_labels: int) -> torch.Tensor:
    """Target-label scores (B, n_labels) from a prompt's own label scores (B, n_source).

    ``label_map`` (n_source,): the target label each source label stands for. A target label
    scores the max of its source labels' scores, so the predicted target label is always the
    map of the predicted source label (the max, unlike a logsumexp, lets no two weak source
    labels outvote a strong one); a target label that no source label maps to scores -inf.
    """
    out = logits.new_full((logits.shape[0], n_labels), float("-inf"))
    return out.scatter_reduce(1, label_map.expand(logits.shape[0], -1), logits, reduce="amax")


@torch.no_grad()
def predict_mapped(
    model: PromptedLM, data: EncodedSplit, pad_id: int, label_map: list[int], n_labels: int, batch_size: int = 0
) -> tuple[torch.Tensor, float | None, int]:
    """Target-label scores (N, n_labels), mean cross-entropy and its count, through a zero-shot label map.

    The scores are :func:`mapped_scores`; a prediction is their argmax, so a target label that
    no source label maps to is never predicted, and its examples count as wrong. The loss is
    the cross-entropy of the softmax over the target scores (an unmapped label has probability
    0), averaged over the examples whose gold label some source label maps to; the others
    would have an infinite loss and are left out of it (``count`` says how many remain; the
    loss is None when none does).
    """
    n_source = model.verbalizer_ids.shape[0]
    if len(label_map) != n_source or not all(0 <= t < n_labels for t in label_map):
        raise ValueError(
            f"label map {label_map}: needs one target label in [0, {n_labels}) for each of the "
            f"prompt's {n_source} labels"
        )
    model.eval()
    compute = compute_of(model)
    targets = torch.tensor(label_map, device=compute.device)
    reachable = torch.zeros(n_labels, dtype=torch.bool, device=compute.device)
    reachable[targets] = True
    all_scores, loss_sum, counted = torch.empty(len(data), n_labels), 0.0, 0
    for rows, batch in data.inference_batches(batch_size or compute.scoring_batch, pad_id):
        batch = to_device(batch, compute)
        with compute.autocast():
            logits = model.score_batch(batch)  # (B, n_source)
        # A row's choices (a multi-task data set) are target labels: they apply to the mapped scores.
        scores = restrict_to_choices(mapped_scores(logits.float(), targets, n_labels), batch)  # (B, n_labels)
        kept = reachable[batch["labels"]]
        if kept.any():
            loss_sum += label_loss(scores[kept], batch["labels"][kept], model.loss, reduction="sum").item()
            counted += int(kept.sum())
        all_scores[rows] = scores.cpu()
    return all_scores, (loss_sum / counted if counted else None), counted


def batchable(models: list[PromptedLM]) -> bool:
    """Whether ``models`` can run as one batch: one backbone object, one verbalizer, one prompt length
    and position."""
    first = models[0]
    return all(
        m.backbone is first.backbone
        and torch.equal(m.verbalizer_ids, first.verbalizer_ids)
        and m.position == first.position
        and m.loss == first.loss
        and m.prompt is not None
        and first.prompt is not None
        and m.prompt.length == first.prompt.length
        for m in models
    )


@torch.no_grad()
def score_together(
    models: list[PromptedLM], data: EncodedSplit, pad_id: int, n_labels: int, batch_size: int = 0
) -> list[Scored]:
    """:func:`score` of each model, all prompts run in the same forward passes.

    The models must be :func:`batchable`. ``batch_size`` counts sequences per pass (prompts x
    examples), so memory stays that of one :func:`score` call whatever the number of prompts
    (0: the device's, :attr:`xlprompt.models.compute.Compute.scoring_batch`).
    """
    if not batchable(models):
        raise ValueError("score_together needs prompts of one length on one shared backbone and verbalizer")
    first = models[0]
    first.eval()
    prompts = torch.stack([m.prompt_vectors() for m in models])  # (P, L, d)
    compute = compute_of(first.backbone)
    per_pass = max(1, (batch_size or compute.scoring_batch) // len(models))
    scores = torch.empty(len(models), len(data), len(first.verbalizer_ids))
    loss_sums = torch.zeros(len(models), dtype=torch.float64)
    for rows, batch in data.inference_batches(per_pass, pad_id):
        batch = to_device(batch, compute)
        with compute.autocast():
            logits = prompted_logits(
                first.backbone,
                prompts,
                first.verbalizer_ids,
                batch["input_ids"],
                batch["attention_mask"],
                batch["mask_index"],
                batch.get("token_type_ids"),
                first.position,
                first.loss == "vocabulary",
            )  # (P, B, n_labels)
        logits = restrict_to_choices(logits.float(), batch)  # the (B, n_labels) mask broadcasts over prompts
        labels = batch["labels"].expand(len(models), -1)
        loss_sums += label_loss(logits.transpose(1, 2), labels, first.loss, reduction="none").sum(dim=1).double().cpu()
        scores[:, rows] = logits.cpu()
    return [
        Scored(metrics_row(data, s, (loss_sum / len(data)).item(), n_labels), s)
        for s, loss_sum in zip(scores, loss_sums)
    ]
