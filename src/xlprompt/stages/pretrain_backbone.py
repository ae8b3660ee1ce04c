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
import json
import logging
import random
import shutil
import time
from pathlib import Path

import torch

from xlprompt.backbone import BackboneShape, build_model, train_tokenizer
from xlprompt.checkpoint import fingerprint, linear_schedule, load_checkpoint, save_checkpoint
from xlprompt.io import atomic_dir, read_json, sha256_file, write_json
from xlprompt.cli import stage_parser, start
from xlprompt.logs import progress
from xlprompt.meta import run_metadata
from xlprompt.mlm import mask_tokens, masked_positions_loss, pad_batch

logger = logging.getLogger(__name__)


def load_corpus(world: Path, tokenizer, max_length: int) -> tuple[list[list[int]], set[int]]:
    """Tokenise every corpus document once; also return the focus words' token ids."""
    files = sorted((world / "corpus").glob("*.txt"))
    if not files:
        raise FileNotFoundError(f"{world / 'corpus'}: no corpus files (*.txt)")
    docs = [line for f in files for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    encoded = tokenizer(docs, truncation=True, max_length=max_length, add_special_tokens=True)["input_ids"]
    focus: set[int] = set()
    for words in read_json(world / "corpus" / "focus_words.json").values():
        for word in words:
            ids = tokenizer(word, add_special_tokens=False)["input_ids"]
            if len(ids) == 1:
                focus.add(ids[0])
    return encoded, focus


def pretrain(world: Path, out: Path, shape: BackboneShape, steps: int, batch_size: int, lr: float,
             mask_prob: float, focus_mask_prob: float, seed: int, checkpoint_dir: Path | None,
             checkpoint_every: int) -> None:
    started = time.time()
    tokenizer = train_tokenizer(sorted((world / "corpus").glob("*.txt")), shape.vocab_size)
    corpus, focus = load_corpus(world, tokenizer, shape.max_length)
    logger.info("tokenizer: %d tokens; corpus: %d documents, %d tokens", len(tokenizer), len(corpus),
                sum(map(len, corpus)))
    model = build_model(tokenizer, shape, seed)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warmup = max(1, steps // 10)

    config = {"shape": shape.__dict__, "steps": steps, "batch_size": batch_size, "lr": lr,
              "mask_prob": mask_prob, "focus_mask_prob": focus_mask_prob}
    input_checksums = {"world_manifest": sha256_file(world / "manifest.json")}
    stamp = fingerprint(config, seed, input_checksums)
    start_step, log_rows = 0, []
    if checkpoint_dir is not None:
        restored = load_checkpoint(checkpoint_dir, optimizer, stamp)
        if restored is not None:
            tensors, plain = restored
            model.load_state_dict(tensors, strict=False)
            start_step, log_rows = plain["step"], plain["log"]

    special = torch.tensor(sorted(tokenizer.all_special_ids))
    focus_ids = torch.tensor(sorted(focus)) if focus else torch.zeros(0, dtype=torch.long)
    bar = progress(range(start_step, steps), desc="pretrain", unit="step", initial=start_step, total=steps)
    for step in bar:
        # Batches are a pure function of (seed, step): a resumed run sees the same data.
        rng = random.Random(f"{seed}-{step}")
        gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
        ids, attention = pad_batch([corpus[rng.randrange(len(corpus))] for _ in range(batch_size)],
                                   tokenizer.pad_token_id)
        maskable = attention.bool() & ~torch.isin(ids, special)
        prob = torch.where(torch.isin(ids, focus_ids), focus_mask_prob, mask_prob)
        masked, chosen = mask_tokens(ids, maskable, prob, tokenizer.mask_token_id, len(tokenizer), gen)
        for group in optimizer.param_groups:
            group["lr"] = lr * linear_schedule(step, steps, warmup)
        loss = masked_positions_loss(model, masked, attention, ids, chosen)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 50 == 0 or step == steps - 1:
            log_rows.append({"step": step, "loss": round(loss.item(), 4), "lr": optimizer.param_groups[0]["lr"]})
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if checkpoint_dir is not None and (step + 1) % checkpoint_every == 0 and step + 1 < steps:
            save_checkpoint(checkpoint_dir, dict(model.named_parameters()), optimizer,
                            {"fingerprint": stamp, "step": step + 1, "log": log_rows})
    logger.info("pretraining done: final loss %.3f", log_rows[-1]["loss"] if log_rows else float("nan"))

    model.eval()
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        with open(tmp / "pretrain_log.jsonl", "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(row) + "\n" for row in log_rows)
        write_json(tmp / "meta.json", run_metadata(
            config=config, seed=seed, inputs=input_checksums,
            extra={"seconds": round(time.time() - started, 1), "final_loss": log_rows[-1]["loss"] if log_rows else None,
                   "parameters": sum(p.numel() for p in model.parameters())},
        ))
    if checkpoint_dir is not None and checkpoint_dir.exists():
        shutil.rmtree(checkpoint_dir)


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("pretrain_backbone", __doc__, threads=True)
    parser.add_argument("--world", required=True, type=Path, help="world folder (from generate_world)")
    parser.add_argument("--out", required=True, type=Path, help="model folder to write")
    shape = BackboneShape()
    for name, value in shape.__dict__.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--mask-prob", type=float, default=0.15)
    parser.add_argument("--focus-mask-prob", type=float, default=0.4,
                        help="masking probability of the topic names (the world's focus words)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint-dir", type=Path, default=None)
    parser.add_argument("--checkpoint-every", type=int, default=200)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    start(args)
    shape = BackboneShape(**{k: getattr(args, k) for k in BackboneShape().__dict__})
    pretrain(args.world, args.out, shape, args.steps, args.batch_size, args.lr, args.mask_prob,
             args.focus_mask_prob, args.seed, args.checkpoint_dir, args.checkpoint_every)
