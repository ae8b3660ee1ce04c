"""The classification metrics of every table: scikit-learn's, over a fixed label set.

Macro-F1 averages over all ``n_labels`` classes of the task, so a class that is neither gold
nor predicted in a test set counts as 0 (``zero_division=0``) instead of being left out.
"""

from __future__ import annotations

from collections.abc import Sequence

from sklearn.metrics import accuracy_score, f1_score


def _check(gold: Sequence, pred: Sequence, name: str) -> None:
    if len(gold) != len(pred) or not len(gold):
        raise ValueError(f"{name} needs equally long, non-empty lists (got {len(gold)} and {len(pred)})")


def accuracy(gold: Sequence[int], pred: Sequence[int]) -> float:
    _check(gold, pred, "accuracy")
    return float(accuracy_score(gold, pred))


def macro_f1(gold: Sequence, pred: Sequence, n_labels: int | None = None, labels: Sequence | None = None) -> float:
    """Mean F1 over the labels ``range(n_labels)`` (or the given ``labels``: names, say)."""
    _check(gold, pred, "macro_f1")
    if labels is None and n_labels is None:
        raise ValueError("macro_f1 needs n_labels or labels")
    labels = list(range(n_labels)) if labels is None and n_labels is not None else list(labels or [])
    return float(f1_score(gold, pred, labels=labels, average="macro", zero_division=0))
