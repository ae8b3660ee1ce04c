"""Classification metrics, computed by hand so that their definitions are plain to see."""

from __future__ import annotations

from collections.abc import Sequence


def accuracy(gold: Sequence[int], pred: Sequence[int]) -> float:
    if len(gold) != len(pred) or not gold:
        raise ValueError(f"accuracy needs equally long, non-empty lists (got {len(gold)} and {len(pred)})")
    return sum(g == p for g, p in zip(gold, pred)) / len(gold)


def macro_f1(gold: Sequence[int], pred: Sequence[int], n_labels: int) -> float:
    """Mean over all ``n_labels`` classes of F1; a class never gold nor predicted scores 0."""
    if len(gold) != len(pred) or not gold:
        raise ValueError(f"macro_f1 needs equally long, non-empty lists (got {len(gold)} and {len(pred)})")
    total = 0.0
    for label in range(n_labels):
        tp = sum(g == label and p == label for g, p in zip(gold, pred))
        fp = sum(g != label and p == label for g, p in zip(gold, pred))
        fn = sum(g == label and p != label for g, p in zip(gold, pred))
        total += 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return total / n_labels
