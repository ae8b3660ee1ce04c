"""Train one soft prompt on one task (or a mixture): spt (frozen backbone), full_ft, or a control.

Reads a backbone folder and a data set folder (``labels.json``, ``{lang}/{split}.parquet``),
or several for a multi-task prompt, and with --init source the prompt to start from;
writes the prompt artifact: ``prompt.safetensors``, ``meta.json``, ``train_log.jsonl``, plus
``backbone/`` for full_ft and a PEFT export ``peft/`` for spt. Checkpoints go to
--checkpoint-dir (kept only while training; a restarted job resumes from them).

Example:
    python -m xlprompt train_prompt --backbone resources/models/tiny-xlmr-demo \
        --data resources/data/demo/topic --out results/demo/prompts/tiny-xlmr-demo/topic/spt/L16/seed0 \
        --method spt --prompt-length 16 --seed 0

    # a multi-task source prompt (SPoT), trained in another language
    python -m xlprompt train_prompt --backbone resources/models/tiny-xlmr-demo \
        --data resources/data/demo/topic resources/data/demo/nli --train-language sh50 \
        --out results/demo/sources/tiny-xlmr-demo/mix/L16/seed0 --method spt --prompt-length 16
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path


from xlprompt.compute import choose_compute
from xlprompt.cli import add_dataclass_flags, dataclass_from_args, stage_parser, start
from xlprompt.limits import check_folder_positions
from xlprompt.train import TrainConfig, train_prompt

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("train_prompt", __doc__, threads=True)
    parser.add_argument("--backbone", required=True, type=Path, help="Hugging Face model folder")
    parser.add_argument("--data", required=True, type=Path, nargs="+",
                        help="data set folder of the task (several: one prompt trains on their mixture)")
    parser.add_argument("--out", required=True, type=Path, help="artifact folder to write")
    parser.add_argument("--checkpoint-dir", type=Path, default=None)
    parser.add_argument("--name", default=None, help="the method's name in tables (a config variant's), default --method")
    parser.add_argument("--ticket", type=Path, default=None, help="ltp: the ticket's mask.safetensors")
    parser.add_argument("--source", type=Path, default=None,
                        help="with --init source: the trained prompt artifact to start from (SPoT)")
    add_dataclass_flags(parser, TrainConfig)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    start(args)
    cfg = dataclass_from_args(TrainConfig, args)
    check_folder_positions(args.backbone, cfg.max_length, cfg.prompt_length)  # before data and weights load
    train_prompt(args.backbone, args.data, cfg, args.out, args.checkpoint_dir,
                 args.ticket, args.source, compute=choose_compute(args.device), name=args.name)
