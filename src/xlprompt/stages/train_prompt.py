"""Train one soft prompt on one task: spt (frozen backbone), full_ft, or a control.

Reads a backbone folder and a data set folder (``labels.json``, ``{lang}/{split}.parquet``);
writes the prompt artifact: ``prompt.safetensors``, ``meta.json``, ``train_log.jsonl``, plus
``backbone/`` for full_ft and a PEFT export ``peft/`` for spt. Checkpoints go to
--checkpoint-dir (kept only while training; a restarted job resumes from them).

Example:
    python -m xlprompt train_prompt --backbone resources/models/tiny-xlmr-demo \
        --data resources/data/demo/topic --out results/demo/prompts/tiny-xlmr-demo/topic/spt/L16/seed0 \
        --method spt --prompt-length 16 --seed 0
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

import torch

from xlprompt.logs import setup_logging
from xlprompt.train import TrainConfig, train_prompt

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m xlprompt train_prompt", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", required=True, type=Path, help="Hugging Face model folder")
    parser.add_argument("--data", required=True, type=Path, help="data set folder of the task")
    parser.add_argument("--out", required=True, type=Path, help="artifact folder to write")
    parser.add_argument("--checkpoint-dir", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    for field in dataclasses.fields(TrainConfig):
        flag = f"--{field.name.replace('_', '-')}"
        if field.type in ("bool", bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default)
        else:
            kind = {"int": int, "float": float, "str": str}[field.type if isinstance(field.type, str) else field.type.__name__]
            parser.add_argument(flag, type=kind, default=field.default)
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})
    train_prompt(args.backbone, args.data, cfg, args.out, args.checkpoint_dir)
