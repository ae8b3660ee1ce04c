"""LTP step 1: fine-tune a backbone on unlabeled text with its family's own objective.

The objective (xlprompt.models.mlm.lm_objective, recorded in meta.json's config): masked LMs (XLM-R,
BERT) the masked-LM loss; causal LMs (XGLM, BLOOM) the next-token loss; mT5 (no mask token)
T5's span corruption (--mask-prob of the tokens in spans of mean --mean-span-length).

Reads a backbone folder and text files (``.txt``: one document per line; ``.parquet``: the
``text`` column of a data-set split); writes the fine-tuned model folder (theta_MLM) with
``finetune_log.jsonl`` and ``meta.json``. Checkpoints into --checkpoint-dir and resumes.

Example:
    python -m xlprompt finetune_mlm --backbone resources/models/tiny-xlmr-demo \
        --text resources/data/demo/corpus/en.txt --out results/demo/mlm/tiny-xlmr-demo --steps 200
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from xlprompt.methods.finetune import finetune_mlm
from xlprompt.models.compute import choose_compute
from xlprompt.models.limits import FINETUNE_MAX_LENGTH
from xlprompt.runtime.cli import add_dataclass_flags, dataclass_from_args, stage_parser, start
from xlprompt.runtime.settings import LTP_FINETUNE, MLMSettings

logger = logging.getLogger(__name__)


def build_parser():
    parser = stage_parser("finetune_mlm", __doc__, threads=True)
    parser.add_argument("--backbone", required=True, type=Path, help="model folder (theta_0)")
    parser.add_argument("--text", required=True, nargs="+", type=Path, help=".txt or .parquet files")
    parser.add_argument("--out", required=True, type=Path, help="fine-tuned model folder to write")
    parser.add_argument("--max-length", type=int, default=FINETUNE_MAX_LENGTH)
    parser.add_argument("--checkpoint-dir", type=Path, default=None)
    add_dataclass_flags(parser, MLMSettings)
    parser.set_defaults(**dataclasses.asdict(LTP_FINETUNE))  # a fine-tuning's defaults, not a pretraining's
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    start(args)
    finetune_mlm(
        args.backbone,
        args.text,
        args.out,
        dataclass_from_args(MLMSettings, args),
        args.max_length,
        args.checkpoint_dir,
        compute=choose_compute(args.device),
    )
