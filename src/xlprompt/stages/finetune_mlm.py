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
import json
import logging
import shutil
import time
from pathlib import Path

import torch

from xlprompt.models.backbone import load_backbone
from xlprompt.models.compute import CPU, Compute, choose_compute
from xlprompt.models.limits import FINETUNE_MAX_LENGTH, position_limit
from xlprompt.models.mlm import lm_objective, read_documents, train_lm
from xlprompt.runtime.checkpoint import fingerprint
from xlprompt.runtime.cli import add_dataclass_flags, dataclass_from_args, stage_parser, start
from xlprompt.runtime.io import atomic_dir, sha256_file, write_json
from xlprompt.runtime.logs import timed
from xlprompt.runtime.meta import run_metadata
from xlprompt.runtime.settings import LTP_FINETUNE, MLMSettings

logger = logging.getLogger(__name__)


def finetune_mlm(backbone_dir: Path, text_files: list[Path], out: Path, settings: MLMSettings, max_length: int,
                 checkpoint_dir: Path | None = None, compute: Compute = CPU) -> None:
    started = time.time()
    model, tokenizer = load_backbone(backbone_dir)
    objective = lm_objective(model, tokenizer)
    limit = position_limit(model)
    if limit is not None and max_length > limit:  # no prompt here: the whole table is the text's
        logger.info("texts cut at %d tokens, the %s backbone's position table, instead of %d", limit,
                    model.config.model_type, max_length)
        max_length = limit
    docs = read_documents(text_files)
    with timed("tokenising"):
        corpus = tokenizer(docs, truncation=True, max_length=max_length)["input_ids"]
    logger.info("fine-tuning (%s) on %d documents from %d file(s)", objective, len(corpus), len(text_files))
    inputs = {"backbone": sha256_file(backbone_dir / "model.safetensors"),
              **{f.name: sha256_file(f) for f in text_files}}
    config = {**dataclasses.asdict(settings), "max_length": max_length, "objective": objective}
    torch.manual_seed(settings.seed)  # dropout draws from torch's global generator
    log_rows = train_lm(model, tokenizer, corpus, settings, objective, checkpoint_dir=checkpoint_dir,
                        stamp=fingerprint(config, inputs), desc="finetune_mlm", compute=compute)
    model.cpu()
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        with open(tmp / "finetune_log.jsonl", "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(row) + "\n" for row in log_rows)
        write_json(tmp / "meta.json", run_metadata(config, settings.seed, inputs,
                                                   {"seconds": round(time.time() - started, 1)}))
    if checkpoint_dir is not None and checkpoint_dir.exists():
        shutil.rmtree(checkpoint_dir)


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
    finetune_mlm(args.backbone, args.text, args.out, dataclass_from_args(MLMSettings, args), args.max_length,
                 args.checkpoint_dir, compute=choose_compute(args.device))
