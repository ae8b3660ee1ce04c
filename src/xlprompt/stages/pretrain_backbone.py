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
import dataclasses
import json
import logging
import shutil
import time
from pathlib import Path

from xlprompt.models.compute import CPU, Compute, choose_compute
from xlprompt.models.mlm import MLMSettings, read_documents, train_masked_lm
from xlprompt.models.tiny import BackboneShape, build_model, train_tokenizer
from xlprompt.runtime.checkpoint import fingerprint
from xlprompt.runtime.cli import add_dataclass_flags, dataclass_from_args, stage_parser, start
from xlprompt.runtime.io import atomic_dir, read_json, sha256_file, write_json
from xlprompt.runtime.logs import timed
from xlprompt.runtime.meta import run_metadata

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


def pretrain(world: Path, out: Path, shape: BackboneShape, settings: MLMSettings,
             checkpoint_dir: Path | None = None, compute: Compute = CPU) -> None:
    """Tokenizer and backbone from ``world``'s corpus, trained on ``compute`` (xlprompt.models.compute)
    and written to ``out`` from the CPU."""
    started = time.time()
    corpus_files = sorted((world / "corpus").glob("*.txt"))
    with timed("training the tokenizer"):
        tokenizer = train_tokenizer(corpus_files, shape.vocab_size)
    with timed("tokenising"):
        corpus = tokenizer(read_documents(corpus_files), truncation=True, max_length=shape.max_length)["input_ids"]
    focus = single_token_ids(tokenizer, read_json(world / "corpus" / "focus_words.json"))
    logger.info("tokenizer: %d tokens; corpus: %d documents, %d tokens", len(tokenizer), len(corpus),
                sum(map(len, corpus)))
    model = build_model(tokenizer, shape, settings.seed)

    config = {"shape": dataclasses.asdict(shape), **dataclasses.asdict(settings)}
    input_checksums = {"world_manifest": sha256_file(world / "manifest.json")}
    stamp = fingerprint(config, input_checksums)
    log_rows = train_masked_lm(model, tokenizer, corpus, settings, focus, checkpoint_dir, stamp, desc="pretrain",
                               compute=compute)
    model.cpu()  # saved from CPU tensors, as on a machine without a GPU

    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        with open(tmp / "pretrain_log.jsonl", "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(row) + "\n" for row in log_rows)
        write_json(tmp / "meta.json", run_metadata(
            config=config, seed=settings.seed, inputs=input_checksums,
            extra={"seconds": round(time.time() - started, 1), "final_loss": log_rows[-1]["loss"] if log_rows else None,
                   "parameters": sum(p.numel() for p in model.parameters())},
        ))
    if checkpoint_dir is not None and checkpoint_dir.exists():
        shutil.rmtree(checkpoint_dir)


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
    pretrain(args.world, args.out, dataclass_from_args(BackboneShape, args), dataclass_from_args(MLMSettings, args),
             args.checkpoint_dir, compute=choose_compute(args.device))
