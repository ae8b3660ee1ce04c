"""Train a cross-model projector (Su et al. 2022) from one backbone's prompt into another.

Reads a trained prompt of the source backbone, the target backbone and the prompt's task
data; writes a projector artifact: ``projector.safetensors`` (the projector's weights),
``prompt.safetensors`` (the projected prompt, a prompt of the target backbone), ``meta.json``
and ``train_log.jsonl``. ``evaluate`` and ``train_prompt --init source`` read it like any
prompt of the target backbone.

Example:
    python -m xlprompt train_projector --source results/xm/prompts/tiny-xlmr-demo/topic/spt/L16/seed0 \
        --backbone resources/models/tiny-xlmr-small --data resources/data/demo/topic \
        --out results/xm/projectors/tiny-xlmr-demo/tiny-xlmr-small/topic/L16/seed0 --steps 200
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from xlprompt.methods.projector import ProjectorConfig, train_projector
from xlprompt.models.compute import choose_compute
from xlprompt.models.limits import check_folder_positions
from xlprompt.runtime.cli import add_dataclass_flags, dataclass_from_args, stage_parser, start
from xlprompt.runtime.io import read_json

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("train_projector", __doc__, threads=True, dtype=True)
    parser.add_argument("--source", required=True, type=Path, help="a trained prompt of the source backbone")
    parser.add_argument("--backbone", required=True, type=Path, help="the target backbone's folder")
    parser.add_argument("--data", required=True, type=Path, nargs="+", help="the source prompt's task data folder(s)")
    parser.add_argument("--out", required=True, type=Path, help="artifact folder to write")
    add_dataclass_flags(parser, ProjectorConfig)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    start(args)
    cfg = dataclass_from_args(ProjectorConfig, args)
    # The projected prompt has the source prompt's length, in the target backbone's positions.
    check_folder_positions(
        args.backbone, cfg.max_length, read_json(args.source / "meta.json")["config"]["prompt_length"]
    )
    train_projector(
        args.source, args.backbone, args.data, cfg, args.out, compute=choose_compute(args.device, args.dtype)
    )
