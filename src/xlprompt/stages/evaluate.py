"""Evaluate trained prompts of one task on the test split of every language.

Several prompts in one call share one loaded backbone and one tokenisation of the test sets
(full_ft and ltp prompts bring their own weights). Writes one ``metrics.json`` per prompt
(--out lists them in the order of --prompt)::

    {"task": ..., "method": ..., "prompt_length": ..., "seed": ..., "split": "test",
     "rows": [{"lang": "en", "accuracy": ..., "macro_f1": ..., "n": ...}, ...]}

Example:
    python -m xlprompt evaluate --backbone resources/models/tiny-xlmr-demo --data resources/data/demo/topic \
        --prompt results/demo/prompts/tiny-xlmr-demo/topic/spt/L16/seed0 results/demo/prompts/tiny-xlmr-demo/topic/spt/L16/seed1 \
        --out results/demo/metrics/tiny-xlmr-demo/topic/spt/L16/seed0.json results/demo/metrics/tiny-xlmr-demo/topic/spt/L16/seed1.json
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path


from xlprompt.cli import stage_parser, start
from xlprompt.evaluation import TestSets, score
from xlprompt.io import read_json, write_json
from xlprompt.train import load_backbone, load_trained

logger = logging.getLogger(__name__)


def evaluate(prompt_dir: Path, backbone_dir: Path, data_dir: Path, languages: list[str] | None,
             split: str = "test", batch_size: int = 128, shared: tuple | None = None,
             tests: TestSets | None = None) -> dict:
    """Metrics of one prompt on every language; ``shared`` / ``tests`` reuse a loaded backbone
    and tokenised test sets across prompts."""
    meta = read_json(prompt_dir / "meta.json")
    model, tokenizer = load_trained(prompt_dir, backbone_dir, shared=shared)
    tests = tests or TestSets(data_dir, tokenizer, languages, split)
    if tests.labels.task != meta["task"]:
        raise ValueError(f"{prompt_dir}: trained on task {meta['task']!r}, but {data_dir} holds task "
                         f"{tests.labels.task!r}")
    cfg = meta["config"]
    rows = []
    for lang in tests.languages:
        data = tests.encoded(lang, cfg["max_length"])
        rows.append({"lang": lang, **score(model, data, tokenizer.pad_token_id, len(tests.labels.names),
                                           batch_size=batch_size)})
    logger.info("%s: accuracy %s", prompt_dir, " ".join(f"{r['lang']} {r['accuracy']:.3f}" for r in rows))
    return {"model": backbone_dir.name, "task": meta["task"], "method": cfg["method"], "prompt_length": cfg["prompt_length"],
            "seed": cfg["seed"], "source": "none", "train_language": cfg["train_language"], "split": split,
            "chance": 1.0 / len(tests.labels.names), "rows": rows}


def evaluate_many(prompt_dirs: list[Path], outs: list[Path], backbone_dir: Path, data_dir: Path,
                  languages: list[str] | None, split: str = "test", batch_size: int = 128) -> None:
    """Evaluate every prompt with one backbone load and one tokenisation; one file each."""
    if len(prompt_dirs) != len(outs):
        raise ValueError(f"{len(prompt_dirs)} --prompt but {len(outs)} --out: give one output per prompt")
    shared = load_backbone(backbone_dir)
    tests = TestSets(data_dir, shared[1], languages, split)  # reads and checks every file first
    for prompt_dir, out in zip(prompt_dirs, outs):
        write_json(out, evaluate(prompt_dir, backbone_dir, data_dir, languages, split, batch_size, shared, tests))


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("evaluate", __doc__, threads=True)
    parser.add_argument("--prompt", required=True, type=Path, nargs="+", help="trained prompt artifact folder(s)")
    parser.add_argument("--backbone", required=True, type=Path)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path, nargs="+", help="metrics.json to write, one per prompt")
    parser.add_argument("--languages", nargs="*", default=None, help="default: every language of the data set")
    parser.add_argument("--split", default="test")
    parser.add_argument("--batch-size", type=int, default=128)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    start(args)
    evaluate_many(args.prompt, args.out, args.backbone, args.data, args.languages, args.split, args.batch_size)
