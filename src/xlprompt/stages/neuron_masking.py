"""How much does a prompt's task depend on its most activated neurons? (Su et al. 2022)

For each prompt: switch off (set to 0, in every layer and position) the --share most
activated FFN neurons of its prompt-alone activations, and, as a control, the same number of
neurons drawn at random (seeded); evaluate each condition on the prompt's own task. Writes::

    name, task, seed, lang, condition (all_on | top_off | random_off), share, neurons_off, accuracy

Example:
    python -m xlprompt neuron_masking --backbone resources/models/tiny-xlmr-demo \
        --data-root resources/data/demo \
        --prompts topic=results/demo/prompts/tiny-xlmr-demo/topic/spt/L16/seed0 \
        --activations results/demo/activations/tiny-xlmr-demo/activations.safetensors \
        --out results/demo/tables/neuron_masking.csv
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from xlprompt.analysis.masking import masking
from xlprompt.models.compute import choose_compute
from xlprompt.runtime.cli import named_paths, stage_parser, start
from xlprompt.runtime.io import load_tensors, write_csv
from xlprompt.runtime.settings import NeuronSettings

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("neuron_masking", __doc__, threads=True, dtype=True)
    parser.add_argument("--backbone", required=True, type=Path)
    parser.add_argument("--data-root", required=True, type=Path, help="folder holding <task>/ data sets")
    parser.add_argument("--prompts", nargs="+", required=True, metavar="NAME=PATH")
    parser.add_argument("--activations", required=True, type=Path, help="prompt_activations' file")
    parser.add_argument(
        "--share", type=float, default=NeuronSettings.mask_share, help="share of the neurons to switch off"
    )
    parser.add_argument("--languages", nargs="*", default=None, help="default: every language of the data set")
    parser.add_argument("--out", required=True, type=Path, help="CSV file to write")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    start(args)
    if not 0 < args.share < 1:
        raise ValueError(f"--share must be in (0, 1), got {args.share}")
    table = masking(
        args.backbone,
        args.data_root,
        named_paths(args.prompts, "--prompts"),
        load_tensors(args.activations),
        args.share,
        args.languages,
        compute=choose_compute(args.device, args.dtype),
    )
    write_csv(table, args.out)
