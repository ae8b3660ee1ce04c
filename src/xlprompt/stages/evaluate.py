"""Evaluate one trained prompt on the test split of every language of its task.

Reads a prompt artifact, the backbone and the data set; writes ``metrics.json``::

    {"task": ..., "method": ..., "prompt_length": ..., "seed": ..., "split": "test",
     "rows": [{"lang": "en", "accuracy": ..., "macro_f1": ..., "n": ...}, ...]}

Example:
    python -m xlprompt evaluate --prompt results/demo/prompts/tiny-xlmr-demo/topic/spt/L16/seed0 \
        --backbone resources/models/tiny-xlmr-demo --data resources/data/demo/topic \
        --out results/demo/metrics/tiny-xlmr-demo/topic/spt/L16/seed0.json
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path


from xlprompt.cli import stage_parser, start
from xlprompt.evaluation import TestSets, score
from xlprompt.io import read_json, write_json
from xlprompt.train import load_trained

logger = logging.getLogger(__name__)


def evaluate(prompt_dir: Path, backbone_dir: Path, data_dir: Path, languages: list[str] | None,
             split: str = "test", batch_size: int = 128) -> dict:
    meta = read_json(prompt_dir / "meta.json")
    model, tokenizer = load_trained(prompt_dir, backbone_dir)
    tests = TestSets(data_dir, tokenizer, languages, split)
    if tests.labels.task != meta["task"]:
        raise ValueError(f"{prompt_dir}: trained on task {meta['task']!r}, but {data_dir} holds task "
                         f"{tests.labels.task!r}")
    cfg = meta["config"]
    rows = []
    for lang in tests.languages:
        data = tests.encoded(lang, cfg["max_length"])
        rows.append({"lang": lang, **score(model, data, tokenizer.pad_token_id, len(tests.labels.names),
                                           batch_size=batch_size)})
        logger.info("%s: accuracy %.3f, macro-F1 %.3f (n=%d)", lang, rows[-1]["accuracy"], rows[-1]["macro_f1"], len(data))
    return {"model": backbone_dir.name, "task": meta["task"], "method": cfg["method"], "prompt_length": cfg["prompt_length"],
            "seed": cfg["seed"], "source": "none", "train_language": cfg["train_language"], "split": split,
            "chance": 1.0 / len(tests.labels.names), "rows": rows}


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("evaluate", __doc__, threads=True)
    parser.add_argument("--prompt", required=True, type=Path, help="trained prompt artifact folder")
    parser.add_argument("--backbone", required=True, type=Path)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path, help="metrics.json to write")
    parser.add_argument("--languages", nargs="*", default=None, help="default: every language of the data set")
    parser.add_argument("--split", default="test")
    parser.add_argument("--batch-size", type=int, default=128)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    start(args)
    write_json(args.out, evaluate(args.prompt, args.backbone, args.data, args.languages, args.split, args.batch_size))
