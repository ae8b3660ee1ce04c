"""Lottery Ticket Prompt-learning (Li & Luo 2024): choosing the winning ticket and training it.

1. Fine-tune the backbone with the masked-LM loss (``finetune_mlm``).
2. Delta = |theta_MLM - theta_0| over the maskable weights.
3. Keep the top p of the entries (the ticket) as a boolean mask (``select_ticket``).
4. From the ORIGINAL weights, train the prompt plus the ticket's entries only.

Choices the paper leaves open, each an option here (defaults in :class:`TicketConfig`):
maskable = the encoder layers' attention and FFN weights and biases (embeddings, LM head and
LayerNorms excluded by default, each an option); one global threshold over all maskable entries, or one per layer; an
optional layer range; "p" is a share of the maskable entries. Ties at the threshold are
broken deterministically: earlier parameters (in the model's order) and earlier positions win.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd
import torch

_LAYER = re.compile(r"\.layers?\.(\d+)\.")
SCOPES = ("global", "per_layer")


@dataclass(frozen=True)
class TicketConfig:
    sparsity: float = 0.2  # share p of the maskable entries kept in the ticket, in (0, 1]
    scope: str = "global"  # global: one threshold over all maskable entries; per_layer: top p of each layer
    first_layer: int = 0  # only layers first_layer..last_layer (inclusive) are maskable
    last_layer: int = -1  # -1: the last layer
    attention: bool = True  # attention projections (query, key, value, output) are maskable
    ffn: bool = True  # feed-forward projections (intermediate, output) are maskable
    biases: bool = True  # biases are maskable too
    layer_norm: bool = False  # the encoder layers' LayerNorms
    embeddings: bool = False  # word, position and type embeddings (about 70% of XLM-R base)
    lm_head: bool = False  # the masked-LM head's own weights (its decoder is tied to the embeddings)

    def __post_init__(self) -> None:
        if not 0.0 < self.sparsity <= 1.0:
            raise ValueError(f"ticket sparsity must be in (0, 1], got {self.sparsity}")
        if self.scope not in SCOPES:
            raise ValueError(f"ticket scope must be one of {SCOPES}, got {self.scope!r}")
        if not (self.attention or self.ffn or self.layer_norm or self.embeddings or self.lm_head):
            raise ValueError("a ticket needs at least one maskable group (attention, ffn, layer_norm, embeddings, lm_head)")


def module_kind(name: str) -> str:
    """The group a parameter belongs to: attention, ffn, layer_norm, embeddings, lm_head or other."""
    if "embeddings" in name:
        return "embeddings"
    if name.startswith(("lm_head.", "cls.")):
        return "lm_head"
    if _LAYER.search(name) is None:
        return "other"  # e.g. a pooler
    if "LayerNorm" in name or "layer_norm" in name:
        return "layer_norm"
    if ".attention." in name:
        return "attention"
    if ".intermediate." in name or ".output." in name:
        return "ffn"
    return "other"


def layer_of(name: str, n_layers: int) -> int:
    """Encoder layer index; -1 for embeddings, n_layers for the LM head (as in the share table)."""
    match = _LAYER.search(name)
    if match:
        return int(match.group(1))
    return -1 if module_kind(name) == "embeddings" else n_layers


def maskable_names(named_shapes: dict[str, torch.Size], cfg: TicketConfig) -> dict[str, tuple[int, str]]:
    """Maskable parameters in model order -> (layer index, group).

    The layer range restricts the encoder layers; embeddings and LM head, when enabled, are
    maskable whatever the range.
    """
    layers = sorted({int(m.group(1)) for name in named_shapes if (m := _LAYER.search(name))})
    n_layers = len(layers)
    last = cfg.last_layer if cfg.last_layer >= 0 else n_layers - 1
    enabled = {kind for kind in ("attention", "ffn", "layer_norm", "embeddings", "lm_head") if getattr(cfg, kind)}
    out = {}
    for name in named_shapes:
        kind = module_kind(name)
        if kind not in enabled or (name.endswith(".bias") and kind != "layer_norm" and not cfg.biases):
            continue
        layer = layer_of(name, n_layers)
        if kind in ("embeddings", "lm_head") or cfg.first_layer <= layer <= last:
            out[name] = (layer, kind)
    if not out:
        raise ValueError(f"no maskable parameters for {cfg} (layers {cfg.first_layer}..{last} of {layers})")
    return out


def top_k_mask(values: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean mask of the k largest entries of a 1-D tensor; ties go to the lowest indices."""
    n = values.numel()
    if k <= 0:
        return torch.zeros(n, dtype=torch.bool)
    if k >= n:
        return torch.ones(n, dtype=torch.bool)
    threshold = torch.kthvalue(values, n - k + 1).values  # the k-th largest value
    mask = values > threshold
    missing = k - int(mask.sum())
    ties = torch.nonzero(values == threshold).flatten()[:missing]
    mask[ties] = True
    return mask


def select_ticket(theta0: dict[str, torch.Tensor], theta_mlm: dict[str, torch.Tensor],
                  cfg: TicketConfig) -> dict[str, torch.Tensor]:
    """The winning ticket: a boolean mask per maskable parameter (same shape as the weight)."""
    names = maskable_names({n: t.shape for n, t in theta0.items()}, cfg)
    for name in names:
        if name not in theta_mlm or theta_mlm[name].shape != theta0[name].shape:
            raise ValueError(f"parameter {name} is missing from the fine-tuned model or has another shape")
    groups: dict[object, list[str]] = {}
    for name, (layer, _) in names.items():
        groups.setdefault("all" if cfg.scope == "global" else layer, []).append(name)
    masks = {}
    for members in groups.values():
        # Flatten the group in model order, so that ties resolve to earlier parameters.
        delta = torch.cat([(theta_mlm[n].float() - theta0[n].float()).abs().flatten() for n in members])
        flat = top_k_mask(delta, round(cfg.sparsity * delta.numel()))
        for name, part in zip(members, flat.split([theta0[n].numel() for n in members])):
            masks[name] = part.view(theta0[name].shape)
    return {name: masks[name] for name in names}


def ticket_share(masks: dict[str, torch.Tensor]) -> pd.DataFrame:
    """The ticket's share per layer and module kind: layer, module, entries, selected, share."""
    n_layers = len({int(m.group(1)) for name in masks if (m := _LAYER.search(name))})
    rows: dict[tuple[int, str], list[int]] = {}
    for name, mask in masks.items():
        key = (layer_of(name, n_layers), module_kind(name))
        entry = rows.setdefault(key, [0, 0])
        entry[0] += mask.numel()
        entry[1] += int(mask.sum())
    frame = pd.DataFrame([{"layer": layer, "module": kind, "entries": n, "selected": k}
                          for (layer, kind), (n, k) in sorted(rows.items())])
    frame["share"] = frame["selected"] / frame["entries"]
    return frame
