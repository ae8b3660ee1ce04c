"""Deep prompt tuning (P-tuning v2, Liu et al. 2022; prefix tuning, Li & Liang 2021): learned key/value
prefixes in the self-attention of every layer (or of the configured ones), the backbone frozen.

What trains is PEFT's own ``PrefixEncoder`` (``PrefixTuningConfig``): a (L, n x 2 x w) tensor, n the
prefixed layers and w = heads x head dim, N(0, 1) at the start (``nn.Embedding``), or with
``reparameterization`` PEFT's MLP over an (L, w) embedding. The layout is PEFT's: for the j-th
prefixed layer, columns [2j w, (2j+1) w) hold its L keys and [(2j+1) w, (2j+2) w) its L values, each
heads x head dim.

How the prefixes enter is xlprompt's own injection, one code path for every family, active only
inside :class:`DeepPromptedLM`'s forward (forward pre-hooks, removed afterwards, so a backbone shared
with other prompts stays as it is). In each prefixed layer's self-attention:

- keys and values become [prefix; the layer's own] (the module's cache argument, :class:`PrefixKV`);
- the attention mask gains L columns in front that every position attends to;
- the text sits where a prefix of L tokens puts it, as PEFT's ``past_key_values`` place it: absolute
  positions (XLM-R, BERT, XGLM) start L later (explicit ``position_ids``); BLOOM's ALiBi is built over
  the L + S keys; T5's relative bias sees the queries L positions after the first prefix key.

An encoder-decoder (mT5) takes prefixes in its encoder's and its decoder's self-attention (Li & Liang
2021); its layers are numbered as ltp tickets number them, the encoder's blocks first.

Why not PEFT's forward (``PeftModel`` with ``past_key_values``) for training: in transformers 5.24 it
reaches XLM-R, BERT, XGLM and BLOOM, but it drops ``token_type_ids`` (BERT reads a pair's second text
as the first), reaches only the decoder of an encoder-decoder (the T5 stack passes no cache to its
encoder), knows no layer subsets, computes the LM head at every position (B x S x V logits, 2 GB a
batch for XLM-R's vocabulary where xlprompt reads one position), and passes ``past_key_values``,
which transformers deprecates (removal announced for 5.40). Where it does reproduce xlprompt's model
(XLM-R, XGLM, BLOOM, BERT without token types; every layer) the prefixes are saved in PEFT's format
(:func:`xlprompt.methods.peft_export.export_prefix_tuning`) and tests check PEFT's forward against this one.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from xlprompt.models.families import PREFIX_ATTENTION
from xlprompt.models.prompting import PromptedLM
from xlprompt.runtime.settings import DeepPromptSettings

if TYPE_CHECKING:  # transformers for the hints only: importing it costs a second
    from transformers import PreTrainedModel

PREFIX_KEY = "prefix"  # prompt.safetensors: the stored (L, n x 2 x w) prefixes where PEFT's format does not hold them


@dataclass(frozen=True)
class Site:
    """One self-attention module that can take a prefix, with its head shape.

    ``first``: T5's relative position bias lives in the first block of each stack; a prefixed layer
    after an unprefixed first block computes the prefix's bias with it. ``window``: a sliding-window
    layer sees the keys of its last ``window`` positions only, prefix keys included (as with a real cache).
    """

    module: nn.Module
    heads: int
    head_dim: int
    first: nn.Module | None = None
    window: int | None = None  # a sliding-window layer's window (Gemma 2 and 3): how far back a query sees


def prefix_kind(backbone: PreTrainedModel) -> str:
    """How ``backbone``'s attention takes a prefix (xlprompt.models.families.PREFIX_ATTENTION); an error naming why
    not."""
    model_type = backbone.config.model_type
    if model_type not in PREFIX_ATTENTION:
        raise ValueError(
            f"method deep_prompt: {model_type}'s attention takes no key/value prefix in xlprompt (known: "
            f"{sorted(PREFIX_ATTENTION)}); use spt, lora or full_ft with this backbone"
        )
    return PREFIX_ATTENTION[model_type]


def attention_sites(backbone: PreTrainedModel) -> list[Site]:
    """Every self-attention of ``backbone`` in layer order (mT5: the encoder's, then the decoder's)."""
    kind = prefix_kind(backbone)
    model: Any = backbone  # each architecture's own submodules: what torch cannot type
    if kind == "bert":
        return [
            Site(
                layer.attention.self, layer.attention.self.num_attention_heads, layer.attention.self.attention_head_size
            )
            for layer in model.base_model.encoder.layer
        ]
    if kind == "xglm":
        return [
            Site(layer.self_attn, layer.self_attn.num_heads, layer.self_attn.head_dim)
            for layer in model.base_model.layers
        ]
    if kind == "bloom":
        return [
            Site(block.self_attention, block.self_attention.num_heads, block.self_attention.head_dim)
            for block in model.base_model.h
        ]
    if kind == "decoder_llm":  # grouped-query attention: the cache holds num_key_value_heads heads
        config = model.config
        return [
            Site(
                layer.self_attn,
                config.num_key_value_heads,
                layer.self_attn.head_dim,
                # Gemma and Qwen keep the window on the module (None in full-attention layers), Mistral on its config
                window=(
                    layer.self_attn.sliding_window
                    if hasattr(layer.self_attn, "sliding_window")
                    else getattr(config, "sliding_window", None)
                ),
            )
            for layer in model.base_model.layers
        ]
    sites = []
    for stack in (model.encoder, model.decoder):
        first = stack.block[0].layer[0].SelfAttention
        sites += [
            Site(
                block.layer[0].SelfAttention,
                block.layer[0].SelfAttention.n_heads,
                block.layer[0].SelfAttention.key_value_proj_dim,
                first,
            )
            for block in stack.block
        ]
    return sites


def prefix_layers(backbone: PreTrainedModel, settings: DeepPromptSettings) -> list[int]:
    """The layers that take a prefix: ``settings.layers``, checked against the backbone, or all of them."""
    n_layers = len(attention_sites(backbone))
    if not settings.layers:
        return list(range(n_layers))
    outside = [i for i in settings.layers if i >= n_layers]
    if outside:
        stacks = " (the encoder's blocks, then the decoder's)" if prefix_kind(backbone) == "t5" else ""
        raise ValueError(
            f"deep_prompt.layers: {outside} outside the backbone's {n_layers} layers{stacks}; "
            f"allowed: 0..{n_layers - 1}, or all"
        )
    return list(settings.layers)


class PrefixKV:
    """What a self-attention needs of its cache argument to read [prefix; own] keys and values.

    keys, values: (B, H, L, head_dim). Nothing is stored: each call gets the prefix in front of
    the keys and values it computed.
    """

    def __init__(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        self.keys, self.values = keys, values

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *_args, **_kwargs
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return (
            torch.cat([self.keys.to(key_states.dtype), key_states], dim=-2),
            torch.cat([self.values.to(value_states.dtype), value_states], dim=-2),
        )

    def get_seq_length(self, *_args, **_kwargs) -> int:
        return self.keys.shape[-2]


def extend_mask(mask: torch.Tensor | None, length: int, window: int | None = None) -> torch.Tensor | None:
    """A 4-D attention mask (..., Q, K) with ``length`` key columns in front (additive or boolean): attended
    by every query, or with a sliding ``window`` by the queries less than ``window`` positions after them
    (query i sits at position ``length + i``, prefix key j at j)."""
    if mask is None:
        return None
    shape = (*mask.shape[:-1], length)
    if window is None:
        front = mask.new_ones(shape) if mask.dtype == torch.bool else mask.new_zeros(shape)
    else:
        queries = torch.arange(mask.shape[-2], device=mask.device).unsqueeze(1)
        keys = torch.arange(length, device=mask.device).unsqueeze(0)
        seen = (length + queries - keys < window).expand(shape)
        front = (
            seen
            if mask.dtype == torch.bool
            else torch.zeros(shape, dtype=mask.dtype, device=mask.device).masked_fill(
                ~seen, torch.finfo(mask.dtype).min
            )
        )
    return torch.cat([front, mask], dim=-1)


def causal_prefix_mask(
    queries: int, length: int, window: int | None, device: torch.device, additive: torch.dtype | None
) -> torch.Tensor:
    """The (1, 1, Q, L + Q) mask of Q text queries over [L prefix keys; their own keys] where transformers passes
    none (SDPA without padding: it would run ``is_causal`` over a Q x (L + Q) grid, aligned top-left, and
    hide the text's own keys): query i sits at position L + i and sees every prefix key, and its own keys up to
    itself, within ``window`` where the layer has one. Boolean, or additive in ``additive``'s dtype (eager)."""
    query = torch.arange(queries, device=device).unsqueeze(1) + length
    key = torch.arange(length + queries, device=device).unsqueeze(0)
    seen = key <= query
    if window is not None:
        seen &= query - key < window
    if additive is None:
        return seen[None, None]
    return torch.zeros(seen.shape, dtype=additive, device=device).masked_fill(~seen, torch.finfo(additive).min)[
        None, None
    ]


def _hidden(args: tuple, kwargs: dict) -> torch.Tensor:
    return args[0] if args else kwargs["hidden_states"]


def _inject(
    kind: str,
    keys: torch.Tensor,
    values: torch.Tensor,
    site: Site,
    state: dict,
    module: nn.Module,
    args: tuple,
    kwargs: dict,
) -> tuple[tuple, dict]:
    """Forward pre-hook of a prefixed self-attention: its cache, mask (and ALiBi or relative bias)."""
    hidden = _hidden(args, kwargs)
    batch, queries, length = hidden.shape[0], hidden.shape[1], keys.shape[1]
    # fp32 prefixes (the master copy that trains) enter a half-precision backbone in its own dtype.
    keys, values = keys.to(hidden.dtype), values.to(hidden.dtype)
    cache = PrefixKV(keys.unsqueeze(0).expand(batch, -1, -1, -1), values.unsqueeze(0).expand(batch, -1, -1, -1))
    kwargs = {k: v for k, v in kwargs.items() if k != "past_key_values"}
    if kind == "bloom":
        from transformers.models.bloom.modeling_bloom import build_alibi_tensor

        kwargs["layer_past"] = cache
        kwargs["attention_mask"] = extend_mask(kwargs.get("attention_mask"), length)
        # ALiBi over the keys [prefix; text], from the extended 2-D mask as BLOOM builds it for a cache.
        kwargs["alibi"] = build_alibi_tensor(state["mask"], site.heads, dtype=kwargs["alibi"].dtype)
    elif kind == "t5":
        kwargs["cache"] = cache
        kwargs["mask"] = extend_mask(kwargs.get("mask"), length)
        bias = kwargs.get("position_bias")
        if bias is not None and bias.shape[-1] == queries:  # from an unprefixed first block: add the prefix's keys
            first: Any = site.first  # T5's first self-attention, which owns the relative bias
            kwargs["position_bias"] = first.compute_bias(
                queries, length + queries, device=hidden.device, past_seen_tokens=length
            )
    else:
        kwargs["cache"] = cache
        mask = kwargs.get("attention_mask")
        if mask is None and kind == "decoder_llm":  # no padding under SDPA: transformers leaves causality to is_causal
            eager = getattr(getattr(module, "config", None), "_attn_implementation", "eager") == "eager"
            kwargs["attention_mask"] = causal_prefix_mask(
                queries, length, site.window, hidden.device, hidden.dtype if eager else None
            )
        else:
            kwargs["attention_mask"] = extend_mask(mask, length, site.window)
    return args, kwargs


def _trim_bias(_module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Forward pre-hook of an unprefixed T5 self-attention after a prefixed one: the bias of its own keys only."""
    queries = _hidden(args, kwargs).shape[1]
    bias = kwargs.get("position_bias")
    if bias is not None and bias.shape[-1] > queries:  # (1, H, Q, L + Q): the last Q keys are the text's
        kwargs = {**kwargs, "position_bias": bias[..., -queries:]}
    return args, kwargs


def _place_text(
    kind: str, length: int, offset: int, state: dict, _module: nn.Module, args: tuple, kwargs: dict
) -> tuple[tuple, dict]:
    """Forward pre-hook of the transformer stack: the text after the L prefix positions."""
    inputs = kwargs.get("input_ids", args[0] if args else None)
    if inputs is None:
        inputs = kwargs["inputs_embeds"]
    batch, seq = inputs.shape[:2]
    mask = kwargs.get("attention_mask")
    if kind == "bloom":  # positions are ALiBi's: built per layer from the extended mask
        mask = mask if mask is not None else torch.ones(batch, seq, dtype=torch.long, device=inputs.device)
        state["mask"] = torch.cat([mask.new_ones(batch, length), mask], dim=1)
    elif kwargs.get("position_ids") is None:
        # XLM-R counts from padding_idx + 1 (the offset); right padding, so every row's text starts at 0.
        positions = torch.arange(length, length + seq, device=inputs.device) + offset
        kwargs = {**kwargs, "position_ids": positions.unsqueeze(0).expand(batch, -1)}
    return args, kwargs


class DeepPrompt(nn.Module):
    """L key/value prefixes for each prefixed layer of one backbone (PEFT's PrefixEncoder), and their injection.

    ``stored``: prefixes as an artifact keeps them, (L, n x 2 x w) after any reparameterization; then
    the encoder holds them as they are (PEFT's inference form, no MLP).
    """

    def __init__(
        self,
        backbone: PreTrainedModel,
        length: int,
        settings: DeepPromptSettings = DeepPromptSettings(),
        stored: torch.Tensor | None = None,
    ) -> None:
        from peft import PrefixEncoder, PrefixTuningConfig

        super().__init__()
        sites = attention_sites(backbone)
        self.kind = prefix_kind(backbone)
        self.layers = prefix_layers(backbone, settings)
        self.length = length
        chosen = [sites[i] for i in self.layers]
        shapes = {(site.heads, site.head_dim) for site in chosen}
        if len(shapes) != 1:
            raise ValueError(f"deep_prompt: the prefixed layers' attention shapes differ ({sorted(shapes)})")
        self.heads, self.head_dim = shapes.pop()
        self.width = self.heads * self.head_dim
        self.config = PrefixTuningConfig(
            num_virtual_tokens=length,
            token_dim=self.width,
            num_layers=len(self.layers),
            num_attention_heads=self.heads,
            encoder_hidden_size=settings.reparam_hidden,
            prefix_projection=settings.reparameterization and stored is None,
            inference_mode=stored is not None,
        )
        self.encoder = PrefixEncoder(self.config)
        if stored is not None:
            expected = (length, len(self.layers) * 2 * self.width)
            if tuple(stored.shape) != expected:
                raise ValueError(
                    f"stored prefixes are {tuple(stored.shape)}, the backbone's layers {self.layers} "
                    f"take {expected} (L, layers x 2 x width): another backbone or length?"
                )
            with torch.no_grad():
                self.encoder.embedding.weight.copy_(stored)
        # Plain lists, not submodules: the backbone's modules belong to the backbone.
        self._sites = chosen
        self._unprefixed = [site for i, site in enumerate(sites) if i not in self.layers]
        object.__setattr__(self, "_stack", backbone.base_model if self.kind != "t5" else None)
        offset = 0
        if backbone.config.model_type in ("xlm-roberta", "roberta"):
            embeddings: Any = backbone.base_model.embeddings  # RoBERTa's, with its padding_idx
            offset = embeddings.padding_idx + 1
        self._offset = offset

    @property
    def every_layer(self) -> bool:
        return not self._unprefixed

    def prefixes(self) -> torch.Tensor:
        """(L, n x 2 x w): what the layers read (after the MLP where there is one), computed once per forward."""
        tokens = torch.arange(self.length, device=self.encoder.embedding.weight.device).unsqueeze(0)
        return self.encoder(tokens)[0]

    def per_layer(self, prefixes: torch.Tensor | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each prefixed layer's (keys, values), each (H, L, head_dim)."""
        prefixes = self.prefixes() if prefixes is None else prefixes
        grid = prefixes.view(self.length, len(self.layers), 2, self.heads, self.head_dim)
        return [(grid[:, j, 0].transpose(0, 1), grid[:, j, 1].transpose(0, 1)) for j in range(len(self.layers))]

    @contextlib.contextmanager
    def injected(self):
        """While inside, the backbone's prefixed layers read the prefixes (every call, any batch size)."""
        handles, state = [], {}
        try:
            for site, (keys, values) in zip(self._sites, self.per_layer()):
                hook = functools.partial(_inject, self.kind, keys, values, site, state)
                handles.append(site.module.register_forward_pre_hook(hook, with_kwargs=True))
            if self.kind == "t5":
                handles += [
                    site.module.register_forward_pre_hook(_trim_bias, with_kwargs=True) for site in self._unprefixed
                ]
            else:
                hook = functools.partial(_place_text, self.kind, self.length, self._offset, state)
                handles.append(self._stack.register_forward_pre_hook(hook, with_kwargs=True))
            yield
        finally:
            for handle in handles:
                handle.remove()


class DeepPromptedLM(PromptedLM):
    """A frozen backbone with key/value prefixes in its layers, read like every prompted model: the same
    layout without an input prompt, the same label words at the same position (:class:`PromptedLM`)."""

    def __init__(
        self,
        backbone: PreTrainedModel,
        deep: DeepPrompt,
        verbalizer_ids: list[list[int]] | list[int],
        loss: str = "label_words",
    ) -> None:
        super().__init__(backbone, None, verbalizer_ids, "prefix", loss)  # the prefixes precede the text
        self.deep = deep

    @property
    def prompt_positions(self) -> int:
        return self.deep.length

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        mask_index: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        with self.deep.injected():
            return super().forward(input_ids, attention_mask, mask_index, token_type_ids)
