"""Train soft prompts: spt (frozen backbone), full_ft, ltp, lora, bitfit, deep_prompt, or a control; one per job, or
several together.

Reads a backbone folder and a data set folder (``labels.json``, ``{lang}/{split}.parquet``),
or several for a multi-task prompt, and with --init source the prompt to start from;
writes the prompt artifact: ``prompt.safetensors``, ``meta.json``, ``train_log.jsonl``, plus
``backbone/`` for full_ft, PEFT's LoRA adapter ``lora/`` for lora (bitfit's biases go into
``prompt.safetensors``), deep_prompt's prefixes as PEFT prefix tuning ``prefix/`` (or in
``prompt.safetensors`` where PEFT's forward cannot reproduce them) and a PEFT export ``peft/`` for spt.
Checkpoints go to --checkpoint-dir (kept only while training; a restarted job resumes from them).

With --run (repeated), one job trains several prompts on one frozen backbone together
(xlprompt.methods.training.train_prompts: each step stacks every prompt's own batch into one backbone
pass); each --run holds one prompt's flags, those of the one-prompt form below.

Example:
    python -m xlprompt train_prompt --backbone resources/models/tiny-xlmr-demo \
        --data resources/data/demo/topic --out results/demo/prompts/tiny-xlmr-demo/topic/spt/L16/seed0 \
        --method spt --prompt-length 16 --seed 0

    # a multi-task source prompt (SPoT), trained in another language
    python -m xlprompt train_prompt --backbone resources/models/tiny-xlmr-demo \
        --data resources/data/demo/topic resources/data/demo/nli --train-language sh50 \
        --out results/demo/sources/tiny-xlmr-demo/mix/L16/seed0 --method spt --prompt-length 16

    # LoRA (rank 4 on the query and value projections) without a prompt
    python -m xlprompt train_prompt --backbone resources/models/tiny-xlmr-demo \
        --data resources/data/demo/topic --out results/demo/prompts/tiny-xlmr-demo/topic/lora/L0/seed0 \
        --method lora --prompt-length 0 --lora-rank 4 --lora-target-modules query value --backbone-lr 1e-3

    # deep prompt tuning: 16 key/value prefixes in every layer, through PEFT's MLP while training
    python -m xlprompt train_prompt --backbone resources/models/tiny-xlmr-demo \
        --data resources/data/demo/topic --out results/demo/prompts/tiny-xlmr-demo/topic/deep_prompt/L16/seed0 \
        --method deep_prompt --prompt-length 16 --lr 0.01 --deep-prompt-reparameterization --deep-prompt-layers all

    # two seeds in one job
    python -m xlprompt train_prompt --backbone resources/models/tiny-xlmr-demo \
        --run "--data resources/data/demo/topic --out out/seed0 --seed 0" \
        --run "--data resources/data/demo/topic --out out/seed1 --seed 1"
"""

from __future__ import annotations

import argparse
import logging
import shlex
from pathlib import Path

from xlprompt.data.encoding import text_length
from xlprompt.methods.training import PromptRun, train_prompts
from xlprompt.models.compute import choose_compute
from xlprompt.models.limits import check_folder_positions
from xlprompt.runtime.cli import add_dataclass_flags, dataclass_from_args, stage_parser, start
from xlprompt.runtime.settings import TrainConfig

logger = logging.getLogger(__name__)


def add_run_flags(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """The flags of one prompt run: its data, artifact folder, and TrainConfig."""
    parser.add_argument(
        "--data",
        required=required,
        type=Path,
        nargs="+",
        help="data set folder of the task (several: one prompt trains on their mixture)",
    )
    parser.add_argument("--out", required=required, type=Path, help="artifact folder to write")
    parser.add_argument("--checkpoint-dir", type=Path, default=None)
    parser.add_argument(
        "--name", default=None, help="the method's name in tables (a config variant's), default --method"
    )
    parser.add_argument("--ticket", type=Path, default=None, help="ltp: the ticket's mask.safetensors")
    parser.add_argument(
        "--source", type=Path, default=None, help="with --init source: the trained prompt artifact to start from (SPoT)"
    )
    add_dataclass_flags(parser, TrainConfig)


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("train_prompt", __doc__, threads=True, dtype=True)
    parser.add_argument("--backbone", required=True, type=Path, help="Hugging Face model folder")
    parser.add_argument(
        "--run",
        action="append",
        default=[],
        metavar="FLAGS",
        help="one prompt's flags (--data ... --out ... --seed ...), repeated: train them together",
    )
    add_run_flags(parser, required=False)
    return parser


def run_of(args: argparse.Namespace) -> PromptRun:
    data = args.data[0] if len(args.data) == 1 else tuple(args.data)
    return PromptRun(
        data, dataclass_from_args(TrainConfig, args), args.out, args.checkpoint_dir, args.ticket, args.source, args.name
    )


def parse_runs(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[PromptRun]:
    """The runs of the command line: each --run's flags, or the one run its own flags describe."""
    if not args.run:
        if args.data is None or args.out is None:
            parser.error("the following arguments are required: --data, --out (or --run, repeated)")
        return [run_of(args)]
    if args.data is not None or args.out is not None:
        parser.error("with --run, every prompt's flags go inside its --run")
    run_parser = argparse.ArgumentParser(prog="--run", add_help=False)
    add_run_flags(run_parser)
    return [run_of(run_parser.parse_args(shlex.split(flags))) for flags in args.run]


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    runs = parse_runs(parser, args)
    start(args)
    for run in runs:  # before data and weights load; the family is not known yet, so the widest text budget
        cfg = run.cfg
        text = text_length(cfg.max_length, cfg.length_budget, cfg.prompt_positions, "masked_lm")
        check_folder_positions(args.backbone, text, cfg.prompt_positions)
    train_prompts(args.backbone, runs, compute=choose_compute(args.device, args.dtype))
