"""LTP step 1: a backbone fine-tuned on unlabeled text with its family's own objective (theta_MLM)."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from pathlib import Path

import torch

from xlprompt.models.backbone import load_backbone
from xlprompt.models.compute import CPU, Compute
from xlprompt.models.limits import position_limit
from xlprompt.models.mlm import lm_objective, read_documents, train_lm
from xlprompt.models.weights import weights_sha256
from xlprompt.runtime.checkpoint import fingerprint
from xlprompt.runtime.io import atomic_dir, sha256_file, write_json
from xlprompt.runtime.logs import timed
from xlprompt.runtime.meta import run_metadata
from xlprompt.runtime.settings import MLMSettings

logger = logging.getLogger(__name__)


def finetune_mlm(
    backbone_dir: Path,
    text_files: list[Path],
    out: Path,
    settings: MLMSettings,
    max_length: int,
    checkpoint_dir: Path | None = None,
    compute: Compute = CPU,
) -> None:
    started = time.time()
    model, tokenizer = load_backbone(backbone_dir)
    objective = lm_objective(model, tokenizer)
    limit = position_limit(model)
    if limit is not None and max_length > limit:  # no prompt here: the whole table is the text's
        logger.info(
            "texts cut at %d tokens, the %s backbone's position table, instead of %d",
            limit,
            model.config.model_type,
            max_length,
        )
        max_length = limit
    docs = read_documents(text_files)
    with timed("tokenising"):
        corpus = tokenizer(docs, truncation=True, max_length=max_length)["input_ids"]
    logger.info("fine-tuning (%s) on %d documents from %d file(s)", objective, len(corpus), len(text_files))
    inputs = {
        "backbone": weights_sha256(backbone_dir),
        **{f.name: sha256_file(f) for f in text_files},
    }
    config = {**dataclasses.asdict(settings), "max_length": max_length, "objective": objective}
    torch.manual_seed(settings.seed)  # dropout draws from torch's global generator
    log_rows = train_lm(
        model,
        tokenizer,
        corpus,
        settings,
        objective,
        checkpoint_dir=checkpoint_dir,
        stamp=fingerprint(config, inputs),
        desc="finetune_mlm",
        compute=compute,
    )
    model.cpu()
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        with open(tmp / "finetune_log.jsonl", "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(row) + "\n" for row in log_rows)
        write_json(
            tmp / "meta.json", run_metadata(config, settings.seed, inputs, {"seconds": round(time.time() - started, 1)})
        )
    if checkpoint_dir is not None and checkpoint_dir.exists():
        shutil.rmtree(checkpoint_dir)
