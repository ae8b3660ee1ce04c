"""Gradient checkpointing of a backbone's layers (``training.gradient_checkpointing``), in either train mode.

A layer that checkpoints keeps only its input for the backward pass and runs its forward again there, instead
of keeping every activation inside it: long inputs (512 tokens and more) on a frozen backbone then train in a
fraction of the memory, for about one more forward pass per step. The gradients are the same: torch's
checkpoint replays the forward with the random state it first ran with, so dropout draws the same masks.

Why not transformers' own switch (``activation_checkpointing_enable``): it checkpoints a layer only while the
layer is in train mode, so a frozen backbone run in eval mode (``training.dropout: never``) would not
checkpoint at all, and putting the layers in train mode would turn on the dropout that XGLM and BLOOM apply
inside the layer's own forward. Here each outermost ``GradientCheckpointingLayer`` gets an instance-level
``forward`` that checkpoints whenever gradients are on, whatever the mode, and passes no key/value cache
into the layer (a replay would write it twice, as transformers also avoids): xlprompt reads one forward pass
and never generates.

The replay runs with the forward pre-hooks the layer's modules had in the forward pass. deep_prompt's
prefixes enter through such hooks (xlprompt.methods.deep_prompt), registered for one forward pass and gone
by the time the backward pass replays the layer; a replay without them would compute another layer (PEFT
issue 869 is the same clash of prefix tuning and checkpointing, there through the cache).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.checkpoint import checkpoint
from transformers.modeling_layers import GradientCheckpointingLayer

_CHECKPOINTED = "_xlprompt_checkpointed"  # set on a backbone while its layers checkpoint

# The names transformers' layers take a key/value cache under (transformers.modeling_layers does the same).
CACHE_ARGUMENTS = ("cache", "past_key_value", "past_key_values", "layer_past")


PreHook = tuple[torch.nn.Module, Any, bool]  # a module, one of its forward pre-hooks, whether it takes kwargs


def _pre_hooks(layer: torch.nn.Module) -> list[PreHook]:
    """The forward pre-hooks registered on ``layer``'s modules now."""
    return [
        (module, hook, hook_id in module._forward_pre_hooks_with_kwargs)
        for module in layer.modules()
        for hook_id, hook in module._forward_pre_hooks.items()
    ]


@contextlib.contextmanager
def _restored(hooks: list[PreHook]) -> Iterator[None]:
    """The pre-hooks of the forward pass again, for the replay, where they are gone by then."""
    handles = [
        module.register_forward_pre_hook(hook, with_kwargs=with_kwargs)
        for module, hook, with_kwargs in hooks
        if not any(present is hook for present in module._forward_pre_hooks.values())
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _checkpointed(layer: torch.nn.Module, *args: Any, **kwargs: Any) -> Any:
    forward = type(layer).forward
    if not torch.is_grad_enabled():
        return forward(layer, *args, **kwargs)
    for name in CACHE_ARGUMENTS:
        if kwargs.get(name) is not None:
            kwargs[name] = None
    if kwargs.get("use_cache"):
        kwargs["use_cache"] = False
    hooks = _pre_hooks(layer)
    return checkpoint(
        forward,
        layer,
        *args,
        use_reentrant=False,
        context_fn=lambda: (contextlib.nullcontext(), _restored(hooks)),
        **kwargs,
    )


def checkpointing_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The outermost transformers layers of ``model`` (a checkpointed block holds no checkpointed sublayer)."""
    layers: list[tuple[str, torch.nn.Module]] = []
    for name, module in model.named_modules():
        if isinstance(module, GradientCheckpointingLayer) and not any(
            name.startswith(f"{outer}.") for outer, _ in layers
        ):
            layers.append((name, module))
    return [module for _, module in layers]


def enable_gradient_checkpointing(backbone: torch.nn.Module) -> None:
    """Checkpoint every layer of ``backbone`` from now on, in train and in eval mode."""
    layers = checkpointing_layers(backbone)
    if not layers:
        raise ValueError(
            f"training.gradient_checkpointing: {type(backbone).__name__} has no layers transformers marks as "
            "checkpointable (GradientCheckpointingLayer)"
        )
    for layer in layers:
        layer.forward = functools.partial(_checkpointed, layer)
    vars(backbone)[_CHECKPOINTED] = True


def set_gradient_checkpointing(backbone: torch.nn.Module, on: bool) -> None:
    """Checkpointing on or off, as a run asks (runs sharing one backbone in a job may differ). Asked every
    step: it walks the layers only when the state changes."""
    if bool(vars(backbone).get(_CHECKPOINTED, False)) == on:
        return
    if on:
        enable_gradient_checkpointing(backbone)
    else:
        disable_gradient_checkpointing(backbone)


def disable_gradient_checkpointing(backbone: torch.nn.Module) -> None:
    """Undo :func:`enable_gradient_checkpointing`: each layer's own forward again."""
    for layer in checkpointing_layers(backbone):
        vars(layer).pop("forward", None)
    vars(backbone).pop(_CHECKPOINTED, None)


def is_checkpointing(layer: torch.nn.Module) -> bool:
    return isinstance(vars(layer).get("forward"), functools.partial)
