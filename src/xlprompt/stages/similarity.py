"""Similarity of every source prompt to every target prompt, by several measures.

- SPoT (Vu et al. 2022): ``avg_cos`` and ``tok_cos`` of task embeddings, the prompts saved at
  ``snapshot_step`` (``prompt_snapshot`` in the artifact); ``embedding = snapshot``.
- Su et al. 2022's baselines on the trained prompts: ``flat_cos`` (flattened prompts),
  ``avg_cos``, ``tok_cos``, ``euclidean`` (a distance) and ``euclidean_sim`` (1 / (1 + distance), their
  code's); ``embedding = final``.
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
from pathlib import Path

from xlprompt.analysis.similarity import similarities
from xlprompt.runtime.cli import named_paths, stage_parser, start
from xlprompt.runtime.io import write_csv
from xlprompt.runtime.settings import NeuronSettings

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("similarity", __doc__)
    parser.add_argument("--sources", nargs="+", required=True, metavar="NAME=PATH", help="source prompts, every seed")
    parser.add_argument("--targets", nargs="+", required=True, metavar="NAME=PATH", help="target prompts, every seed")
    parser.add_argument("--activations", type=Path, default=None, help="prompt_activations' safetensors file")
    parser.add_argument(
        "--window", type=int, default=NeuronSettings.window, help="layers per window of the neuron overlap"
    )
    parser.add_argument("--out", required=True, type=Path, help="CSV file to write")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    start(args)
    table = similarities(
        named_paths(args.sources, "--sources"), named_paths(args.targets, "--targets"), args.activations, args.window
    )
    write_csv(table, args.out)
    logger.info("wrote %d similarities to %s", len(table), args.out)
