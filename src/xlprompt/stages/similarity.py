"""Similarity of every source prompt to every target prompt, by several measures.

- SPoT (Vu et al. 2022): ``avg_cos`` and ``tok_cos`` of task embeddings, the prompts saved at
  ``snapshot_step`` (``prompt_snapshot`` in the artifact); ``embedding = snapshot``.
- Su et al. 2022's baselines on the trained prompts: ``flat_cos`` (flattened prompts),
  ``avg_cos``, ``tok_cos`` and ``euclidean`` (a distance); ``embedding = final``.
- With --activations (prompt_activations' file): the overlap of activated neurons, ``on``
  (cosine of the binary vectors) and ``jaccard``, over all layers and over windows of
  --window consecutive layers; ``embedding = activations``.

Each value is the mean over every pair of the source's and the target's seeds. Targets are
represented by their random-init prompts. Writes one CSV::

    source, target, prompt_length, metric, embedding, layers, value, pairs

Example:
    python -m xlprompt similarity \
        --sources topic=results/demo/prompts/tiny-xlmr-demo/topic/spt/L16/seed0 \
                  topic=results/demo/prompts/tiny-xlmr-demo/topic/spt/L16/seed1 \
        --targets domain=results/demo/transfer/tiny-xlmr-demo/domain/random/L16/seed0 \
        --activations results/demo/activations/tiny-xlmr-demo/L16.safetensors \
        --out results/demo/tables/similarity.csv
"""

from __future__ import annotations

import argparse
import logging
from collections import defaultdict
from pathlib import Path

import pandas as pd
import torch

from xlprompt.analysis.neurons import activation_key
from xlprompt.analysis.spot import SIMILARITIES, SPOT_SIMILARITIES, neuron_similarity_table, similarity_table
from xlprompt.methods.artifacts import artifact_tensors
from xlprompt.runtime.cli import named_paths, stage_parser, start
from xlprompt.runtime.io import load_tensors, write_csv
from xlprompt.runtime.settings import NeuronSettings

logger = logging.getLogger(__name__)


def prompt_tensor(artifact: Path, tensors: dict[str, torch.Tensor], key: str) -> torch.Tensor:
    if key not in tensors:
        hint = "; train it with --snapshot-step" if key == "prompt_snapshot" else ""
        raise ValueError(f"{artifact}: no {key} in prompt.safetensors{hint}")
    return tensors[key]


def group(pairs: list[tuple[str, Path]], loaded: dict[Path, dict[str, torch.Tensor]],
          key: str) -> dict[str, list[torch.Tensor]]:
    grouped: dict[str, list[torch.Tensor]] = defaultdict(list)
    for name, path in pairs:
        grouped[name].append(prompt_tensor(path, loaded[path], key))
    return dict(grouped)


def group_activations(pairs: list[tuple[str, Path]], activations: dict[str, torch.Tensor],
                      where: Path) -> dict[str, list[torch.Tensor]]:
    grouped: dict[str, list[torch.Tensor]] = defaultdict(list)
    for name, path in pairs:
        key = activation_key(name, path)
        if key not in activations:
            raise ValueError(f"{where}: no activations of {key}; it holds {sorted(activations)}")
        grouped[name].append(activations[key])
    return dict(grouped)


def similarities(sources: list[tuple[str, Path]], targets: list[tuple[str, Path]], activations: Path | None,
                 window: int) -> pd.DataFrame:
    loaded = {path: artifact_tensors(path) for _, path in sources + targets}  # each file once
    tables = [similarity_table(group(sources, loaded, "prompt_snapshot"), group(targets, loaded, "prompt_snapshot"),
                               SPOT_SIMILARITIES, "snapshot"),
              similarity_table(group(sources, loaded, "prompt"), group(targets, loaded, "prompt"),
                               tuple(SIMILARITIES), "final")]
    if activations is not None:
        neurons = load_tensors(activations)
        length_of = {path: tensors["prompt"].shape[0] for path, tensors in loaded.items()}
        for length in sorted(set(length_of.values())):
            mine = [[(name, path) for name, path in pairs if length_of[path] == length] for pairs in (sources, targets)]
            if all(mine):
                tables.append(neuron_similarity_table(group_activations(mine[0], neurons, activations),
                                                      group_activations(mine[1], neurons, activations), length, window))
    return pd.concat(tables, ignore_index=True)


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("similarity", __doc__)
    parser.add_argument("--sources", nargs="+", required=True, metavar="NAME=PATH", help="source prompts, every seed")
    parser.add_argument("--targets", nargs="+", required=True, metavar="NAME=PATH", help="target prompts, every seed")
    parser.add_argument("--activations", type=Path, default=None, help="prompt_activations' safetensors file")
    parser.add_argument("--window", type=int, default=NeuronSettings.window, help="layers per window of the neuron overlap")
    parser.add_argument("--out", required=True, type=Path, help="CSV file to write")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    start(args)
    table = similarities(named_paths(args.sources, "--sources"), named_paths(args.targets, "--targets"),
                         args.activations, args.window)
    write_csv(table, args.out)
    logger.info("wrote %d similarities to %s", len(table), args.out)
