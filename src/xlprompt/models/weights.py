"""A model folder's weights: one ``model.safetensors``, or shards listed by ``model.safetensors.index.json``.

Hub checkpoints of 8B models come in shards (Llama-3.1-8B: four; gemma-2-2b: three); the stages that read
weights directly (the ticket's |theta_MLM - theta_0|) or record what they were made from (each artifact's
``inputs_sha256``) take either layout through these functions. Only safetensors: a pickled checkpoint is
refused with how to convert it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from xlprompt.runtime.io import check_safetensors, load_tensors, sha256_file

if TYPE_CHECKING:  # torch for the hints only
    import torch

SINGLE = "model.safetensors"
INDEX = "model.safetensors.index.json"


def weight_files(folder: str | Path) -> list[Path]:
    """The safetensors files holding ``folder``'s weights, each checked complete, in the index's order."""
    folder = Path(folder)
    if (folder / SINGLE).exists():
        files = [folder / SINGLE]
    elif (folder / INDEX).exists():
        weight_map = json.loads((folder / INDEX).read_text(encoding="utf-8")).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise ValueError(f"{folder / INDEX}: no weight_map naming the shards of each tensor")
        files = [folder / name for name in sorted(set(weight_map.values()))]
    else:
        pickled = sorted(p.name for p in folder.glob("*.bin")) + sorted(p.name for p in folder.glob("*.pt*"))
        raise ValueError(
            f"{folder}: no {SINGLE} (nor {INDEX} with its shards)"
            + (f"; only {pickled}" if pickled else "")
            + "; xlprompt loads weights from safetensors only (pickle files can run code when loaded). "
            "Convert them once in a trusted environment: model.save_pretrained(folder)"
        )
    for path in files:
        check_safetensors(path)
    return files


def weights_sha256(folder: str | Path) -> str:
    """What an artifact records its backbone by: the sha256 of ``model.safetensors``, or of a sharded
    checkpoint's shards (the sha256 of their sha256 hex digests, one per line, in the index's order)."""
    files = weight_files(folder)
    if len(files) == 1 and files[0].name == SINGLE:
        return sha256_file(files[0])
    return hashlib.sha256("".join(f"{sha256_file(path)}\n" for path in files).encode()).hexdigest()


def weights_bytes(folder: str | Path) -> int:
    """The size of a full checkpoint of ``folder``'s weights, every shard together."""
    return sum(path.stat().st_size for path in weight_files(folder))


def load_weights(folder: str | Path) -> dict[str, torch.Tensor]:
    """Every tensor of ``folder``'s checkpoint by its stored name (shards merged)."""
    tensors: dict[str, torch.Tensor] = {}
    for path in weight_files(folder):
        tensors.update(load_tensors(path))
    return tensors
