"""A prompted model's predictions over an encoded split: label scores, predicted labels, loss and accuracy."""

from __future__ import annotations

import torch

from xlprompt.data.encoding import EncodedSplit, restrict_to_choices
from xlprompt.models.compute import compute_of, to_device
from xlprompt.models.prompting import PromptedLM, label_loss


def predict(model: PromptedLM, data: EncodedSplit, pad_id: int, batch_size: int = 0) -> tuple[list[int], float]:
    """Predicted label ids and mean cross-entropy over ``data``."""
    scores, loss = predict_scores(model, data, pad_id, batch_size)
    return scores.argmax(dim=-1).tolist(), loss


@torch.no_grad()
def predict_scores(
    model: PromptedLM, data: EncodedSplit, pad_id: int, batch_size: int = 0
) -> tuple[torch.Tensor, float]:
    """Every row's label scores (N, n_labels; float32, on the CPU) and the mean cross-entropy."""
    model.eval()
    compute = compute_of(model)
    scores: torch.Tensor | None = None
    loss_sum = 0.0
    for rows, batch in data.inference_batches(batch_size or compute.scoring_batch, pad_id):
        batch = to_device(batch, compute)
        with compute.autocast():
            logits = model.score_batch(batch)
        logits = restrict_to_choices(logits.float(), batch)
        loss_sum += label_loss(logits, batch["labels"], model.loss, reduction="sum").item()
        if scores is None:
            scores = torch.empty(len(data), logits.shape[-1])
        scores[rows] = logits.cpu()
    if scores is None:
        raise ValueError("predict_scores: no examples to score")
    return scores, loss_sum / len(data)


def evaluate_split(model: PromptedLM, data: EncodedSplit, pad_id: int) -> tuple[float, float]:
    """Mean loss and accuracy over ``data``."""
    preds, loss = predict(model, data, pad_id)
    return loss, sum(p == g for p, g in zip(preds, data.labels)) / len(data)
