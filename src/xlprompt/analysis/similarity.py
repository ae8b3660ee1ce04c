"""Similarity of every source prompt to every target prompt, by SPoT's measures, the baselines and neuron overlap."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pandas as pd
import torch

from xlprompt.analysis.neurons import activation_key
from xlprompt.analysis.spot import SIMILARITIES, SPOT_SIMILARITIES, neuron_similarity_table, similarity_table
from xlprompt.methods.artifacts import artifact_tensors
from xlprompt.runtime.io import load_tensors


def prompt_tensor(artifact: Path, tensors: dict[str, torch.Tensor], key: str) -> torch.Tensor:
    if key not in tensors:
        hint = "; train it with --snapshot-step" if key == "prompt_snapshot" else ""
        raise ValueError(f"{artifact}: no {key} in prompt.safetensors{hint}")
    return tensors[key]


def group(
    pairs: list[tuple[str, Path]], loaded: dict[Path, dict[str, torch.Tensor]], key: str
) -> dict[str, list[torch.Tensor]]:
    grouped: dict[str, list[torch.Tensor]] = defaultdict(list)
    for name, path in pairs:
        grouped[name].append(prompt_tensor(path, loaded[path], key))
    return dict(grouped)


def group_activations(
    pairs: list[tuple[str, Path]], activations: dict[str, torch.Tensor], where: Path
) -> dict[str, list[torch.Tensor]]:
    grouped: dict[str, list[torch.Tensor]] = defaultdict(list)
    for name, path in pairs:
        key = activation_key(name, path)
        if key not in activations:
            raise ValueError(f"{where}: no activations of {key}; it holds {sorted(activations)}")
        grouped[name].append(activations[key])
    return dict(grouped)


def similarities(
    sources: list[tuple[str, Path]], targets: list[tuple[str, Path]], activations: Path | None, window: int
) -> pd.DataFrame:
    loaded = {path: artifact_tensors(path) for _, path in sources + targets}  # each file once
    tables = [
        similarity_table(
            group(sources, loaded, "prompt_snapshot"),
            group(targets, loaded, "prompt_snapshot"),
            SPOT_SIMILARITIES,
            "snapshot",
        ),
        similarity_table(
            group(sources, loaded, "prompt"), group(targets, loaded, "prompt"), tuple(SIMILARITIES), "final"
        ),
    ]
    if activations is not None:
        neurons = load_tensors(activations)
        length_of = {path: tensors["prompt"].shape[0] for path, tensors in loaded.items()}
        for length in sorted(set(length_of.values())):
            mine = [[(name, path) for name, path in pairs if length_of[path] == length] for pairs in (sources, targets)]
            if all(mine):
                tables.append(
                    neuron_similarity_table(
                        group_activations(mine[0], neurons, activations),
                        group_activations(mine[1], neurons, activations),
                        length,
                        window,
                    )
                )
    return pd.concat(tables, ignore_index=True)
