"""Generate the offline multilingual world: labelled tasks in every language plus a corpus.

Reads nothing; writes (under --out)::

    languages.json                        every language's knobs and distance from English
    {task}/labels.json                    label names and verbalizer words
    {task}/{lang}/{train,validation,test}.parquet
    corpus/{lang}.txt                     unlabeled documents, one per line
    corpus/focus_words.json               per language, the topic names (masked more often)
    manifest.json                         sha256 of every file written

Example:
    python -m xlprompt generate_world --spec '{"seed": 0, "languages": [{"code": "en"}]}' \
        --out resources/data/demo
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from xlprompt.config.loading import world_config_from_dict
from xlprompt.data.generated import generate_world
from xlprompt.runtime.cli import stage_parser, start
from xlprompt.runtime.io import atomic_dir

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("generate_world", __doc__)
    parser.add_argument("--spec", required=True, help="the config's `world` section as JSON")
    parser.add_argument("--out", required=True, type=Path, help="output folder (replaced atomically)")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    start(args)
    cfg = world_config_from_dict(json.loads(args.spec))
    with atomic_dir(args.out) as tmp:
        generate_world(cfg, tmp)
    logger.info("wrote world to %s", args.out)
