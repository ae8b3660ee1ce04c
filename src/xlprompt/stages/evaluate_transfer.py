"""Evaluate every prompt of one SPoT target task, and the sources zero-shot, in one process.

One backbone and one tokenisation of the test sets serve all prompts. Reads the target
prompts (``--runs NAME=PATH``, NAME = random, label_words, the source it started from, or
for cross-model transfer projector (tuned from a projected prompt) and projector_zero_shot
(the projected prompt as it is; ``--source-model`` names the backbone it came from)),
the source prompts (``--sources NAME=PATH``, one per seed) and the zero-shot label maps;
writes one JSON::

    {"model", "target", "prompt_length", "split", "chance",
     "runs": [{"init": random|label_words|transfer|zero_shot|projector|projector_zero_shot, "source", "source_tasks",
               "source_language", "seed", "applicable", "rows": [{"lang", "accuracy", ...}]}]}

A source is scored zero-shot on the target when exactly one of its tasks has a label map to
the target (``spot.zero_shot``); otherwise its zero-shot run is recorded as not applicable.
A map may be of any shape (several source labels onto one target label, target labels that no
source label reaches: xlprompt.analysis.evaluation.predict_mapped); every map is checked against both
tasks' labels before anything computes. Zero-shot rows add ``loss_n``, the examples their
loss averages over.

With --predictions, also one parquet file of every test example's prediction by every run:
model, task (the target), prompt_length, init, source, arm (what transfer_tables compares:
the init, or the source's name for a transfer, ``zero_shot:<source>`` for a zero-shot run),
seed, lang, example_id, gold, pred and ``score_<label>`` per target label.

Example:
    python -m xlprompt evaluate_transfer --backbone resources/models/tiny-xlmr-demo \
        --data resources/data/demo/domain \
        --runs random=results/demo/transfer/tiny-xlmr-demo/domain/random/L16/seed0 \
               topic=results/demo/transfer/tiny-xlmr-demo/domain/topic/L16/seed0 \
        --sources topic=results/demo/prompts/tiny-xlmr-demo/topic/spt/L16/seed0 \
        --label-maps '{"topic": {"domain": {"sports": "sports+health", ...}}}' \
        --out results/demo/transfer_metrics/tiny-xlmr-demo/domain/L16.json \
        --predictions results/demo/transfer_predictions/tiny-xlmr-demo/domain/L16.parquet
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from xlprompt.analysis.transfer_metrics import evaluate_transfer
from xlprompt.models.compute import choose_compute
from xlprompt.runtime.cli import named_paths, stage_parser, start
from xlprompt.runtime.io import write_json, write_parquet

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("evaluate_transfer", __doc__, threads=True, dtype=True)
    parser.add_argument("--backbone", required=True, type=Path)
    parser.add_argument("--data", required=True, type=Path, help="the target task's data set folder")
    parser.add_argument("--runs", nargs="+", required=True, metavar="NAME=PATH", help="target prompts")
    parser.add_argument("--sources", nargs="*", default=[], metavar="NAME=PATH", help="source prompts (every seed)")
    parser.add_argument("--label-maps", default="{}", help="spot.zero_shot as JSON")
    parser.add_argument("--languages", nargs="*", default=None, help="default: every language of the data set")
    parser.add_argument("--split", default="test")
    parser.add_argument("--source-model", default="", help="cross-model runs: the backbone their prompts came from")
    parser.add_argument("--out", required=True, type=Path, help="JSON file to write")
    parser.add_argument("--predictions", type=Path, default=None, help="predictions parquet to write (optional)")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    start(args)
    result = evaluate_transfer(
        args.backbone,
        args.data,
        named_paths(args.runs, "--runs"),
        named_paths(args.sources, "--sources"),
        json.loads(args.label_maps),
        args.languages,
        args.split,
        args.source_model,
        compute=choose_compute(args.device, args.dtype),
        with_predictions=args.predictions is not None,
    )
    if args.predictions is not None:
        result, predictions = result
        write_parquet(predictions, args.predictions)
    write_json(args.out, result)
