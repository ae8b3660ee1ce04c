"""Periodic training checkpoints that survive a killed job, written without pickle.

A job's checkpoint folder holds one ``step-<N>/`` folder per kept checkpoint, each with
``tensors.safetensors`` (model/prompt tensors, optimizer state, RNG state) and
``state.json`` (step, best score, anything else plain), and ``latest.json`` naming the
newest complete one. A checkpoint is written under a temporary name and renamed, then
``latest.json`` is replaced (one atomic rename), then older steps are deleted: a job killed
at any moment leaves ``latest.json`` pointing at a complete checkpoint, or no checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from xlprompt.runtime.io import atomic_dir, load_tensors, read_json, write_json

logger = logging.getLogger(__name__)


def _flatten_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors = {}
    for index, slots in state["state"].items():
        for key, value in slots.items():
            tensors[f"optim.{index}.{key}"] = torch.as_tensor(value).clone()
    return tensors, {"param_groups": state["param_groups"]}


def _unflatten_optimizer(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], plain: dict[str, Any]
) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": plain["param_groups"]})


def save_checkpoint(
    folder: Path, tensors: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer, plain: dict[str, Any]
) -> None:
    """``plain`` must hold a ``fingerprint`` (see :func:`fingerprint`) and the ``step``."""
    optim_tensors, optim_plain = _flatten_optimizer(optimizer)
    all_tensors = {f"state.{k}": v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    all_tensors.update(optim_tensors)
    all_tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # dropout on a GPU draws from its generator
        all_tensors["rng.cuda"] = torch.cuda.get_rng_state()
    name = f"step-{plain['step']:08d}"
    with atomic_dir(folder / name) as tmp:
        save_file(all_tensors, tmp / "tensors.safetensors")
        write_json(tmp / "state.json", {**plain, "optimizer": optim_plain})
    write_json(folder / "latest.json", {"folder": name, "step": plain["step"]})
    for old in folder.glob("step-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)


def fingerprint(*parts: Any) -> str:
    """A digest of everything a checkpoint depends on (config, input checksums)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def load_checkpoint(
    folder: Path, optimizer: torch.optim.Optimizer, expected_fingerprint: str
) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """Restore optimizer and RNG state; return (tensors, plain state), or None if absent.

    A checkpoint written by a different config or from different inputs is not resumed
    from (it would give a model that no config describes); it is set aside and training
    starts over.
    """
    for stale in folder.glob(".step-*.partial-*"):  # a checkpoint whose writer was killed
        shutil.rmtree(stale, ignore_errors=True)
    if not (folder / "latest.json").exists():
        return None
    latest = folder / read_json(folder / "latest.json")["folder"]
    try:
        plain = read_json(latest / "state.json")
        all_tensors = load_tensors(latest / "tensors.safetensors")
    except (OSError, ValueError) as err:
        logger.warning("checkpoint %s cannot be read (%s); starting over", latest, err)
        shutil.rmtree(folder)
        return None
    if plain.get("fingerprint") != expected_fingerprint:
        logger.warning("checkpoint %s was written by another config or other inputs; starting over", folder)
        shutil.rmtree(folder)
        return None
    _unflatten_optimizer(optimizer, all_tensors, plain.pop("optimizer"))
    torch.set_rng_state(all_tensors["rng.torch"])
    if "rng.cuda" in all_tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(all_tensors["rng.cuda"])
    tensors = {k[len("state.") :]: v for k, v in all_tensors.items() if k.startswith("state.")}
    logger.info("resumed from checkpoint %s at step %s", latest, plain.get("step"))
    return tensors, plain
