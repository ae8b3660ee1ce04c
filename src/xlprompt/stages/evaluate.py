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


from xlprompt.data import languages_of, load_split
from xlprompt.encoding import encode_split
from xlprompt.io import read_json, write_json
from xlprompt.cli import stage_parser, start
from xlprompt.metrics import accuracy, macro_f1
from xlprompt.train import load_trained, predict

logger = logging.getLogger(__name__)


def evaluate(prompt_dir: Path, backbone_dir: Path, data_dir: Path, languages: list[str] | None,
             split: str = "test", batch_size: int = 128) -> dict:
    model, tokenizer = load_trained(prompt_dir, backbone_dir, data_dir)
    meta = read_json(prompt_dir / "meta.json")
    n_labels = len(model.verbalizer_ids)
    max_length = meta["config"]["max_length"]
    rows = []
    for lang in languages or languages_of(data_dir):
        frame = load_split(data_dir, lang, split, n_labels)
        data = encode_split(tokenizer, frame, max_length)
        preds, loss = predict(model, data, tokenizer.pad_token_id, batch_size)
        rows.append({"lang": lang, "accuracy": accuracy(data.labels, preds),
                     "macro_f1": macro_f1(data.labels, preds, n_labels), "loss": loss, "n": len(data)})
        logger.info("%s: accuracy %.3f, macro-F1 %.3f (n=%d)", lang, rows[-1]["accuracy"], rows[-1]["macro_f1"], len(data))
    cfg = meta["config"]
    return {"model": backbone_dir.name, "task": meta["task"], "method": cfg["method"], "prompt_length": cfg["prompt_length"],
            "seed": cfg["seed"], "source": meta.get("source", "none"), "train_language": cfg["train_language"], "split": split,
            "chance": 1.0 / n_labels, "rows": rows}


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
