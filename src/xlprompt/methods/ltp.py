"""Lottery Ticket Prompt-learning (Li & Luo 2024): choosing the winning ticket and training it.

1. Fine-tune the backbone on unlabeled text with its family's own objective (``finetune_mlm``:
   masked LM, causal LM or T5 span corruption, :func:`xlprompt.models.mlm.lm_objective`).
2. Delta = |theta_FT - theta_0| over the maskable weights.
3. Keep the top p of the entries (the ticket) as a boolean mask (``select_ticket``).
4. From the ORIGINAL weights, train the prompt plus the ticket's entries only.

Choices the paper leaves open, each an option here (defaults in :class:`TicketConfig`):
maskable = the transformer layers' attention and FFN weights and biases (embeddings, LM head and
LayerNorms excluded by default, each an option); one global threshold over all maskable entries, or one per layer; an
optional layer range; "p" is a share of the maskable entries. Ties at the threshold are
broken deterministically: earlier parameters (in the model's order) and earlier positions win.

The groups in each family's parameter names (:func:`module_kind`, :func:`layer_numbers`):

================  =========================  ================================  ==============================
family            layer ``i``                attention                         FFN
================  =========================  ================================  ==============================
XLM-R, RoBERTa,   ``<model>.encoder.layer.i``  ``attention.self.{query,key,     ``intermediate.dense``,
BERT                                           value}``, ``attention.output.    ``output.dense``
                                               dense``
XGLM              ``model.layers.i``         ``self_attn.{q,k,v,out}_proj``    ``fc1``, ``fc2``
BLOOM             ``transformer.h.i``        ``self_attention.query_key_value``, ``mlp.dense_h_to_4h``,
                                             ``self_attention.dense``          ``mlp.dense_4h_to_h``
mT5, T5           ``encoder.block.i``: i;    ``SelfAttention.{q,k,v,o}``, in   ``DenseReluDense.{wi_0,wi_1,wo}``
                  ``decoder.block.j``:       the decoder also                  (T5: ``wi``, ``wo``)
                  n_encoder + j              ``EncDecAttention.{q,k,v,o}``
Llama, Mistral,   ``model.layers.i``         ``self_attn.{q,k,v,o}_proj``       ``mlp.{gate,up,down}_proj``
Qwen, Gemma                                  (Qwen2: q, k, v biases)
================  =========================  ================================  ==============================

An encoder-decoder's layers are numbered along the data path: the encoder's blocks first, then
the decoder's (mt5-base: encoder blocks 0-11 are layers 0-11, decoder blocks 0-11 layers 12-23),
so a layer range can take the encoder only (``last_layer: n_encoder - 1``), the decoder only, or
a middle band across both. The decoder's blocks are maskable: the label word is read from the
decoder, and its cross-attention (EncDecAttention) is where the prompt reaches it.
Embeddings: word, position and token-type embeddings, mT5's ``shared`` table and its relative
position buckets (``relative_attention_bias``, an embedding table in block 0), BLOOM's
``word_embeddings_layernorm`` (as BERT's ``embeddings.LayerNorm``). The final LayerNorms after the
last layer (XGLM ``model.layer_norm``, BLOOM ``ln_f``, mT5 ``encoder/decoder.final_layer_norm``)
and a pooler are in no layer and never maskable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import torch

from xlprompt.runtime.io import load_tensors

if TYPE_CHECKING:  # transformers for the hints only: importing it costs a second
    from transformers import PreTrainedModel

# A transformer layer in a parameter name: BERT/XLM-R ``encoder.layer.<i>.``, XGLM ``layers.<i>.``,
# BLOOM ``h.<i>.``, T5 ``encoder.block.<i>.`` / ``decoder.block.<i>.`` (whose ``layer.<k>`` inside
# a block is a sub-layer, not a layer: the block, leftmost, is matched first).
_LAYER = re.compile(r"(?:^|\.)(?:(?P<stack>encoder|decoder)\.block|layers?|h)\.(?P<index>\d+)\.")
_EMBEDDINGS = ("embeddings", "embed_tokens", "relative_attention_bias")
_LAYER_NORM = ("LayerNorm", "layer_norm", "layernorm")
_ATTENTION = (".attention.", ".self_attn.", ".self_attention.", ".SelfAttention.", ".EncDecAttention.")
_FFN = (".intermediate.", ".output.", ".fc1.", ".fc2.", ".mlp.", ".DenseReluDense.")
SCOPES = ("global", "per_layer")


@dataclass(frozen=True)
class TicketConfig:
    sparsity: float = 0.2  # share p of the maskable entries kept in the ticket, in (0, 1]
    scope: str = "global"  # global: one threshold over all maskable entries; per_layer: top p of each layer
    first_layer: int = 0  # only layers first_layer..last_layer (inclusive) are maskable (mT5: encoder, then decoder)
    last_layer: int = -1  # -1: the last layer
    attention: bool = True  # attention projections (query, key, value, output; mT5's cross-attention too)
    ffn: bool = True  # feed-forward projections (up and down) are maskable
    biases: bool = True  # biases are maskable too (mT5 has none)
    layer_norm: bool = False  # the layers' own LayerNorms
    embeddings: bool = False  # word, position and type embeddings (about 70% of XLM-R base)
    lm_head: bool = False  # the LM head's own weights (masked LMs' transform; untied output matrices)

    def __post_init__(self) -> None:
        if not 0.0 < self.sparsity <= 1.0:
            raise ValueError(f"ticket sparsity must be in (0, 1], got {self.sparsity}")
        if self.scope not in SCOPES:
            raise ValueError(f"ticket scope must be one of {SCOPES}, got {self.scope!r}")
        if not (self.attention or self.ffn or self.layer_norm or self.embeddings or self.lm_head):
            raise ValueError(
                "a ticket needs at least one maskable group (attention, ffn, layer_norm, embeddings, lm_head)"
            )


def module_kind(name: str) -> str:
    """The group a parameter belongs to: attention, ffn, layer_norm, embeddings, lm_head or other."""
    if any(part in name for part in _EMBEDDINGS) or name.startswith("shared."):
        return "embeddings"
    if name.startswith(("lm_head.", "cls.")):
        return "lm_head"
    if _LAYER.search(name) is None:
        return "other"  # e.g. a pooler, a final LayerNorm
    if any(part in name for part in _LAYER_NORM) or any(part.endswith("norm") for part in name.split(".")):
        return "layer_norm"  # LayerNorm and RMSNorm: input_layernorm, Qwen3's q_norm and k_norm
    if any(part in name for part in _ATTENTION):
        return "attention"
    if any(part in name for part in _FFN):
        return "ffn"
    return "other"


def layer_numbers(names: Iterable[str]) -> dict[str, int]:
    """The layer index of every name inside a layer; a decoder's blocks count on after the encoder's.

    ``names``: all of a model's parameter names (the decoder's offset is the encoder's depth).
    """
    parsed = {name: (m.group("stack"), int(m.group("index"))) for name in names if (m := _LAYER.search(name))}
    n_encoder = 1 + max((index for stack, index in parsed.values() if stack == "encoder"), default=-1)
    return {name: index + (n_encoder if stack == "decoder" else 0) for name, (stack, index) in parsed.items()}


def layer_layout(names: Iterable[str]) -> str:
    """What the layer indices of a model are, in words (for ticket.json)."""
    names = list(names)
    layers = layer_numbers(names)
    n_layers = len(set(layers.values()))
    decoder = sorted({layers[n] for n in layers if ".decoder.block." in f".{n}"})
    if not decoder:
        return f"{n_layers} layers (0..{n_layers - 1})"
    return (
        f"{n_layers} layers: encoder blocks 0..{decoder[0] - 1} are layers 0..{decoder[0] - 1}, "
        f"decoder blocks 0..{len(decoder) - 1} are layers {decoder[0]}..{decoder[-1]}"
    )


def maskable_names(named_shapes: dict[str, torch.Size], cfg: TicketConfig) -> dict[str, tuple[int, str]]:
    """Maskable parameters in model order -> (layer index, group).

    ``named_shapes``: all of the model's parameters. The layer range restricts the layers
    (:func:`layer_numbers`); embeddings (layer -1) and LM head (layer n_layers), when enabled,
    are maskable whatever the range.
    """
    numbers = layer_numbers(named_shapes)
    n_layers = len(set(numbers.values()))
    last = cfg.last_layer if cfg.last_layer >= 0 else n_layers - 1
    if cfg.first_layer >= n_layers or last >= n_layers:
        raise ValueError(
            f"ticket layer range {cfg.first_layer}..{cfg.last_layer} is outside the backbone's "
            f"{layer_layout(named_shapes)}"
        )
    enabled = {kind for kind in ("attention", "ffn", "layer_norm", "embeddings", "lm_head") if getattr(cfg, kind)}
    out = {}
    for name in named_shapes:
        kind = module_kind(name)
        if kind not in enabled or (name.endswith(".bias") and kind != "layer_norm" and not cfg.biases):
            continue
        if kind in ("embeddings", "lm_head"):
            out[name] = (-1 if kind == "embeddings" else n_layers, kind)
        elif cfg.first_layer <= numbers[name] <= last:
            out[name] = (numbers[name], kind)
    if not out:
        raise ValueError(
            f"no maskable parameters for {cfg} (layers {cfg.first_layer}..{last} of the backbone's "
            f"{layer_layout(named_shapes)})"
        )
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


def without_tied_copies(theta0: dict[str, torch.Tensor], theta_mlm: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """theta_0 without the second copy of a tied matrix that theta_MLM stores once.

    transformers writes a tied matrix (XLM-R's word embeddings and LM-head decoder) under one
    name; a checkpoint from elsewhere may hold both. A name theta_MLM lacks whose tensor equals
    one theta_MLM has is that copy: left out, so the matrix is one candidate, counted once.
    """
    kept = {name: tensor for name, tensor in theta0.items() if name in theta_mlm}
    for name, tensor in theta0.items():
        if name not in theta_mlm and not any(
            other.shape == tensor.shape and torch.equal(other, tensor) for other in kept.values()
        ):
            kept[name] = tensor  # not a copy: select_ticket says it is missing
    return {name: tensor for name, tensor in theta0.items() if name in kept}


def select_ticket(
    theta0: dict[str, torch.Tensor], theta_mlm: dict[str, torch.Tensor], cfg: TicketConfig
) -> dict[str, torch.Tensor]:
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


def ticket_share(masks: dict[str, torch.Tensor], maskable: dict[str, tuple[int, str]] | None = None) -> pd.DataFrame:
    """The ticket's share per layer and module kind: layer, module, entries, selected, share.

    ``maskable``: :func:`maskable_names` of the whole model, for its layer numbers (an mT5
    ticket of decoder blocks only cannot tell from its own names that the encoder's come first);
    default: numbered from the masks' names.
    """
    if maskable is None:
        numbers = layer_numbers(masks)
        n_layers = len(set(numbers.values()))
        maskable = {
            name: (
                numbers[name] if name in numbers else -1 if module_kind(name) == "embeddings" else n_layers,
                module_kind(name),
            )
            for name in masks
        }
    rows: dict[tuple[int, str], list[int]] = {}
    for name, mask in masks.items():
        entry = rows.setdefault(maskable[name], [0, 0])
        entry[0] += mask.numel()
        entry[1] += int(mask.sum())
    frame = pd.DataFrame(
        [
            {"layer": layer, "module": kind, "entries": n, "selected": k}
            for (layer, kind), (n, k) in sorted(rows.items())
        ]
    )
    frame["share"] = frame["selected"] / frame["entries"]
    return frame


def parameters_by_name(backbone: PreTrainedModel) -> dict[str, torch.nn.Parameter]:
    """Every name a parameter answers to, tied aliases included.

    ``named_parameters()`` lists a tied matrix once, under whichever name it meets first: XLM-R's
    word embeddings are ``lm_head.decoder.weight`` there in transformers 5, while its checkpoint
    (and so a ticket selected from it) names them ``roberta.embeddings.word_embeddings.weight``.
    """
    return dict(backbone.named_parameters(remove_duplicate=False))


def load_ticket(path: Path | None, backbone: PreTrainedModel) -> dict[str, torch.Tensor]:
    """The ticket's boolean masks, checked against the backbone's parameters.

    Two masks on one tied matrix (a checkpoint that stores it under both names) become one, the
    union of the two, under the first name: one gradient hook per parameter.
    """
    if path is None:
        raise ValueError("method ltp needs a ticket (--ticket mask.safetensors from select_ticket)")
    params = parameters_by_name(backbone)
    masks: dict[str, torch.Tensor] = {}
    first_name: dict[int, str] = {}
    for name, mask in load_tensors(path).items():
        if name not in params or params[name].shape != mask.shape or mask.dtype != torch.bool:
            raise ValueError(f"{path}: mask {name!r} does not fit the backbone (a ticket of another model?)")
        canonical = first_name.setdefault(id(params[name]), name)
        masks[canonical] = masks[canonical] | mask if canonical in masks else mask
    return masks


def ticket_parameters(backbone: PreTrainedModel, masks: dict[str, torch.Tensor]) -> list[torch.nn.Parameter]:
    """Make the ticket's parameters trainable, with gradients zeroed outside the ticket.

    With zero gradient and no weight decay (the ticket group has none), AdamW's update of an
    entry outside the ticket is exactly 0, so those entries stay bit-identical to theta_0.
    """
    params = parameters_by_name(backbone)
    trainable = []
    for name, mask in masks.items():
        param = params[name]
        param.requires_grad_(True)
        keep = mask.to(param.dtype)
        param.register_hook(lambda grad, keep=keep: grad * keep)
        trainable.append(param)
    return trainable


def ticket_entries(backbone: PreTrainedModel, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The trained values at the ticket's positions: ``ticket.<name>.index`` / ``.value``."""
    params = parameters_by_name(backbone)
    out = {}
    for name, mask in masks.items():
        index = torch.nonzero(mask.flatten()).flatten()
        out[f"ticket.{name}.index"] = index.cpu().to(torch.int32 if mask.numel() < 2**31 else torch.int64)
        out[f"ticket.{name}.value"] = params[name].detach().flatten()[index].cpu().contiguous()
    return out


def apply_ticket_entries(backbone: PreTrainedModel, tensors: dict[str, torch.Tensor]) -> None:
    params = parameters_by_name(backbone)
    with torch.no_grad():
        for key, index in tensors.items():
            if key.startswith("ticket.") and key.endswith(".index"):
                name = key[len("ticket.") : -len(".index")]
                params[name].view(-1)[index.long()] = tensors[f"ticket.{name}.value"]
