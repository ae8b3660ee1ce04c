"""Pretraining the tiny offline backbone (:mod:`xlprompt.models.tiny`) on the generated world's corpus."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from pathlib import Path

from xlprompt.models.compute import CPU, Compute
from xlprompt.models.mlm import read_documents, train_masked_lm
from xlprompt.models.tiny import build_model, train_tokenizer
from xlprompt.runtime.checkpoint import fingerprint
from xlprompt.runtime.io import atomic_dir, read_json, sha256_file, write_json
from xlprompt.runtime.logs import timed
from xlprompt.runtime.meta import run_metadata
from xlprompt.runtime.settings import BackboneShape, MLMSettings

logger = logging.getLogger(__name__)


def single_token_ids(tokenizer, words_by_language: dict[str, list[str]]) -> set[int]:
    """Token ids of the words that are one token (multi-token words are masked as usual)."""
    ids = set()
    for words in words_by_language.values():
        for word in words:
            pieces = tokenizer(word, add_special_tokens=False)["input_ids"]
            if len(pieces) == 1:
                ids.add(pieces[0])
    return ids


def pretrain(
    world: Path,
    out: Path,
    shape: BackboneShape,
    settings: MLMSettings,
    checkpoint_dir: Path | None = None,
    compute: Compute = CPU,
) -> None:
    """Tokenizer and backbone from ``world``'s corpus, trained on ``compute`` (xlprompt.models.compute)
    and written to ``out`` from the CPU."""
    started = time.time()
    corpus_files = sorted((world / "corpus").glob("*.txt"))
    with timed("training the tokenizer"):
        tokenizer = train_tokenizer(corpus_files, shape.vocab_size)
    with timed("tokenising"):
        corpus = tokenizer(read_documents(corpus_files), truncation=True, max_length=shape.max_length)["input_ids"]
    focus = single_token_ids(tokenizer, read_json(world / "corpus" / "focus_words.json"))
    logger.info(
        "tokenizer: %d tokens; corpus: %d documents, %d tokens", len(tokenizer), len(corpus), sum(map(len, corpus))
    )
    model = build_model(tokenizer, shape, settings.seed)

    config = {"shape": dataclasses.asdict(shape), **dataclasses.asdict(settings)}
    input_checksums = {"world_manifest": sha256_file(world / "manifest.json")}
    stamp = fingerprint(config, input_checksums)
    log_rows = train_masked_lm(
        model, tokenizer, corpus, settings, focus, checkpoint_dir, stamp, desc="pretrain", compute=compute
    )
    model.cpu()  # saved from CPU tensors, as on a machine without a GPU

    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        with open(tmp / "pretrain_log.jsonl", "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(row) + "\n" for row in log_rows)
        write_json(
            tmp / "meta.json",
            run_metadata(
                config=config,
                seed=settings.seed,
                inputs=input_checksums,
                extra={
                    "seconds": round(time.time() - started, 1),
                    "final_loss": log_rows[-1]["loss"] if log_rows else None,
                    "parameters": sum(p.numel() for p in model.parameters()),
                },
            ),
        )
    if checkpoint_dir is not None and checkpoint_dir.exists():
        shutil.rmtree(checkpoint_dir)
