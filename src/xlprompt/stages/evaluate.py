"""Evaluate trained prompts of one task on the test split of every language.

Several prompts in one call share one loaded backbone and one tokenisation of the test sets,
and prompts of one length on the frozen backbone (spt, untrained) run in the same forward
passes (full_ft, ltp, lora and bitfit prompts bring their own weights and run one by one; ``--one-by-one``
runs every prompt alone, as benchmarks/bench_evaluation.py compares). Writes one ``metrics.json`` per prompt
(--out lists them in the order of --prompt)::

    {"task": ..., "method": ..., "prompt_length": ..., "seed": ..., "split": "test",
     "rows": [{"lang": "en", "accuracy": ..., "macro_f1": ..., "n": ...}, ...]}

and with --predictions, one parquet file per prompt of every test example's prediction:
model, task, method, prompt_length, source, seed, lang, example_id, gold, pred (label names)
and ``score_<label>`` for every label (the label words' scores; the prediction is the highest).

Example:
    python -m xlprompt evaluate --backbone resources/models/tiny-xlmr-demo --data resources/data/demo/topic \
        --prompt results/demo/prompts/tiny-xlmr-demo/topic/spt/L16/seed0 \
                 results/demo/prompts/tiny-xlmr-demo/topic/spt/L16/seed1 \
        --out results/demo/metrics/tiny-xlmr-demo/topic/spt/L16/seed0.json \
              results/demo/metrics/tiny-xlmr-demo/topic/spt/L16/seed1.json
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from xlprompt.analysis.prompt_metrics import evaluate_prompts
from xlprompt.models.compute import choose_compute
from xlprompt.runtime.cli import stage_parser, start
from xlprompt.runtime.io import write_json, write_parquet

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("evaluate", __doc__, threads=True, dtype=True)
    parser.add_argument("--prompt", required=True, type=Path, nargs="+", help="trained prompt artifact folder(s)")
    parser.add_argument("--backbone", required=True, type=Path)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path, nargs="+", help="metrics.json to write, one per prompt")
    parser.add_argument(
        "--predictions",
        type=Path,
        nargs="+",
        default=None,
        help="predictions parquet to write, one per prompt (optional)",
    )
    parser.add_argument("--languages", nargs="*", default=None, help="default: every language of the data set")
    parser.add_argument("--split", default="test")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=0,
        help="sequences (prompts x examples) per forward pass; 0: the device's (128 CPU, 1,024 GPU)",
    )
    parser.add_argument(
        "--one-by-one",
        action="store_true",
        help="evaluate prompts one after another instead of in shared forward passes",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    start(args)
    for flag, outputs in (("--out", args.out), ("--predictions", args.predictions or args.prompt)):
        if len(args.prompt) != len(outputs):
            raise SystemExit(
                f"evaluate: {len(args.prompt)} --prompt but {len(outputs)} {flag}; give one output per prompt"
            )
    documents, predictions = evaluate_prompts(
        args.prompt,
        args.backbone,
        args.data,
        args.languages,
        args.split,
        args.batch_size,
        batch_prompts=not args.one_by_one,
        compute=choose_compute(args.device, args.dtype),
        with_predictions=True,
    )
    for out, document in zip(args.out, documents):
        write_json(out, document)
    for out, frame in zip(args.predictions or [], predictions):
        write_parquet(frame, out)
