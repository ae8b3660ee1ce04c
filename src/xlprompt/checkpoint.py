"""Periodic training checkpoints that survive a killed job, written without pickle.

A checkpoint is a folder with ``tensors.safetensors`` (model/prompt tensors, optimizer
state, RNG state) and ``state.json`` (step, best score, anything else plain). It is written
to a temporary folder and renamed, so a job killed while writing leaves the previous
checkpoint intact.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from xlprompt.io import atomic_dir, read_json, write_json

logger = logging.getLogger(__name__)


def _flatten_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors = {}
    for index, slots in state["state"].items():
        for key, value in slots.items():
            tensors[f"optim.{index}.{key}"] = torch.as_tensor(value).clone()
    return tensors, {"param_groups": state["param_groups"]}


def _unflatten_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], plain: dict) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": plain["param_groups"]})


def save_checkpoint(folder: Path, tensors: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer,
                    plain: dict[str, Any]) -> None:
    """``plain`` must hold a ``fingerprint`` (see :func:`fingerprint`) and the ``step``."""
    optim_tensors, optim_plain = _flatten_optimizer(optimizer)
    all_tensors = {f"state.{k}": v.detach().contiguous().clone() for k, v in tensors.items()}
    all_tensors.update(optim_tensors)
    all_tensors["rng.torch"] = torch.get_rng_state()
    with atomic_dir(folder) as tmp:
        save_file(all_tensors, tmp / "tensors.safetensors")
        write_json(tmp / "state.json", {**plain, "optimizer": optim_plain})


def fingerprint(*parts: Any) -> str:
    """A digest of everything a checkpoint depends on (config, input checksums)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def load_checkpoint(folder: Path, optimizer: torch.optim.Optimizer,
                    expected_fingerprint: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """Restore optimizer and RNG state; return (tensors, plain state), or None if absent.

    A checkpoint written by a different config or from different inputs is not resumed
    from (it would give a model that no config describes); it is set aside and training
    starts over.
    """
    if not (folder / "state.json").exists():
        return None
    plain = read_json(folder / "state.json")
    if plain.get("fingerprint") != expected_fingerprint:
        logger.warning("checkpoint %s was written by another config or other inputs; starting over", folder)
        shutil.rmtree(folder)
        return None
    all_tensors = load_file(folder / "tensors.safetensors")
    _unflatten_optimizer(optimizer, all_tensors, plain.pop("optimizer"))
    torch.set_rng_state(all_tensors["rng.torch"])
    tensors = {k[len("state."):]: v for k, v in all_tensors.items() if k.startswith("state.")}
    logger.info("resumed from checkpoint %s at step %s", folder, plain.get("step"))
    return tensors, plain


def linear_schedule(step: int, total: int, warmup: int) -> float:
    """Learning-rate factor: linear warm-up to 1, then linear decay to 0 at ``total``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))
