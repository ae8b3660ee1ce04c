"""Map a prompt of one backbone into another with a trained projector (cross-model transfer).

Reads a projector artifact (train_projector), a prompt of the projector's source backbone
and the target backbone; writes a prompt artifact of the target backbone
(``prompt.safetensors``, ``meta.json``), to evaluate zero-shot or to start tuning from.

Example:
    python -m xlprompt project_prompt \
        --projector results/xm/projectors/tiny-xlmr-demo/tiny-xlmr-small/topic/L16/seed0 \
        --source results/xm/transfer/tiny-xlmr-demo/domain/random/L16/seed0 \
        --backbone resources/models/tiny-xlmr-small \
        --out results/xm/projected/tiny-xlmr-small/domain/L16/seed0
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from xlprompt.methods.projector import project_prompt
from xlprompt.runtime.cli import stage_parser, start

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("project_prompt", __doc__)
    parser.add_argument("--projector", required=True, type=Path, help="a train_projector artifact")
    parser.add_argument("--source", required=True, type=Path, help="a prompt of the projector's source backbone")
    parser.add_argument("--backbone", required=True, type=Path, help="the projector's target backbone")
    parser.add_argument("--out", required=True, type=Path, help="artifact folder to write")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    start(args)
    project_prompt(args.projector, args.source, args.backbone, args.out)
    logger.info("wrote %s", args.out)
