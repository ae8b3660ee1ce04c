"""Train a tokenizer and pretrain a tiny XLM-R-architecture encoder with the masked-LM loss.

Reads the world's corpus (``{world}/corpus/{lang}.txt`` and ``focus_words.json``); writes a
Hugging Face model folder (config, model.safetensors, tokenizer) plus ``pretrain_log.jsonl``
and ``meta.json``. Checkpoints every --checkpoint-every steps into --checkpoint-dir and
resumes from there when restarted.

Example:
    python -m xlprompt pretrain_backbone --world resources/data/demo \
        --out resources/models/tiny-xlmr-demo --steps 1000 --batch-size 128
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from xlprompt.models.compute import choose_compute
from xlprompt.models.pretrain import pretrain
from xlprompt.runtime.cli import add_dataclass_flags, dataclass_from_args, stage_parser, start
from xlprompt.runtime.settings import BackboneShape, MLMSettings

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("pretrain_backbone", __doc__, threads=True)
    parser.add_argument("--world", required=True, type=Path, help="world folder (from generate_world)")
    parser.add_argument("--out", required=True, type=Path, help="model folder to write")
    parser.add_argument("--checkpoint-dir", type=Path, default=None)
    add_dataclass_flags(parser, BackboneShape)
    add_dataclass_flags(parser, MLMSettings)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    start(args)
    pretrain(
        args.world,
        args.out,
        dataclass_from_args(BackboneShape, args),
        dataclass_from_args(MLMSettings, args),
        args.checkpoint_dir,
        compute=choose_compute(args.device),
    )
