"""Prompt similarity as task similarity (SPoT): avg_cos and tok_cos of task embeddings.

A task embedding is the prompt saved at ``snapshot_step`` (``prompt_snapshot`` in the
artifact); a source's similarity to a target is the mean over every pair of their seeds.
Targets are represented by their random-init prompts. Writes one CSV::

    source, target, metric, layers, value, pairs

Example:
    python -m xlprompt similarity \
        --sources topic=results/demo/prompts/tiny-xlmr-demo/topic/spt/L16/seed0 \
                  topic=results/demo/prompts/tiny-xlmr-demo/topic/spt/L16/seed1 \
        --targets domain=results/demo/transfer/tiny-xlmr-demo/domain/random/L16/seed0 \
        --out results/demo/tables/similarity.csv
"""

from __future__ import annotations

import argparse
import logging
from collections import defaultdict
from pathlib import Path

import torch
from safetensors.torch import load_file

from xlprompt.cli import stage_parser, start
from xlprompt.io import write_csv
from xlprompt.spot import similarity_table
from xlprompt.stages.evaluate_transfer import named_paths

logger = logging.getLogger(__name__)


def task_embedding(artifact: Path) -> torch.Tensor:
    """The prompt at the snapshot step, (L, d)."""
    tensors = load_file(artifact / "prompt.safetensors")
    if "prompt_snapshot" not in tensors:
        raise ValueError(f"{artifact}: no task embedding (prompt_snapshot); train it with --snapshot-step")
    return tensors["prompt_snapshot"]


def group(pairs: list[tuple[str, Path]]) -> dict[str, list[torch.Tensor]]:
    grouped: dict[str, list[torch.Tensor]] = defaultdict(list)
    for name, path in pairs:
        grouped[name].append(task_embedding(path))
    return dict(grouped)


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("similarity", __doc__)
    parser.add_argument("--sources", nargs="+", required=True, metavar="NAME=PATH", help="source prompts, every seed")
    parser.add_argument("--targets", nargs="+", required=True, metavar="NAME=PATH", help="target prompts, every seed")
    parser.add_argument("--out", required=True, type=Path, help="CSV file to write")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    start(args)
    table = similarity_table(group(named_paths(args.sources, "--sources")), group(named_paths(args.targets, "--targets")))
    write_csv(table, args.out)
    logger.info("wrote %d similarities to %s", len(table), args.out)
