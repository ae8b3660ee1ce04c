"""Activated neurons of trained prompts (Su et al. 2022), all prompts in one batched pass.

For each prompt: every layer's FFN activation after the non-linearity of the frozen backbone,
with the prompt fed alone, no task text, laid out as ``--layout`` says (xlprompt: as xlprompt
trains prompts, ``[P] <s> <mask> </s>``, read at <mask>; su2022: Su et al.'s ``[<mask>, P_2..P_L] <s>``
with zero position embeddings for the prompt, read at position 0; xlprompt.analysis.neurons), or
with ``--mode task`` averaged over the first ``--examples`` validation examples of the prompt's
(first) task in its training language. Writes one safetensors file: a tensor (n_layers, ffn) per
prompt, named ``<NAME>/L<length>/seed<seed>``, with the mode and layout in its metadata.

Example:
    python -m xlprompt prompt_activations --backbone resources/models/tiny-xlmr-demo \
        --prompts topic=results/demo/prompts/tiny-xlmr-demo/topic/spt/L16/seed0 \
                  domain=results/demo/transfer/tiny-xlmr-demo/domain/random/L16/seed0 \
        --out results/demo/activations/tiny-xlmr-demo/L16.safetensors
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from safetensors.torch import save

from xlprompt.analysis.activations import collect
from xlprompt.models.compute import choose_compute
from xlprompt.runtime.cli import named_paths, stage_parser, start
from xlprompt.runtime.io import atomic_file
from xlprompt.runtime.settings import NEURON_LAYOUTS, NeuronSettings

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("prompt_activations", __doc__, threads=True, dtype=True)
    parser.add_argument("--backbone", required=True, type=Path)
    parser.add_argument("--prompts", nargs="+", required=True, metavar="NAME=PATH", help="prompt artifacts, every seed")
    parser.add_argument("--mode", choices=("alone", "task"), default=NeuronSettings.mode)
    parser.add_argument("--data-root", type=Path, default=None, help="--mode task: folder holding <task>/ data sets")
    parser.add_argument(
        "--examples", type=int, default=NeuronSettings.examples, help="--mode task: validation examples to average over"
    )
    parser.add_argument(
        "--layout",
        choices=NEURON_LAYOUTS,
        default=NeuronSettings.layout,
        help="--mode alone: the prompt's input and read position (su2022: Su et al.'s; XLM-R and RoBERTa)",
    )
    parser.add_argument("--out", required=True, type=Path, help="safetensors file to write")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    start(args)
    activations = collect(
        args.backbone,
        named_paths(args.prompts, "--prompts"),
        args.mode,
        args.data_root,
        args.examples,
        compute=choose_compute(args.device, args.dtype),
        layout=args.layout,
    )
    with atomic_file(args.out, "wb") as handle:
        handle.write(save(activations, metadata={"mode": args.mode, "layout": args.layout}))
    logger.info("activations of %d prompts (%s, %s) -> %s", len(activations), args.mode, args.layout, args.out)
