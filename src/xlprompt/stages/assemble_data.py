"""Put an experiment's downloaded tasks into one data folder, laid out as a generated world is.

Reads: one folder per task from download_dataset. Writes (under --out)::

    {task}/...                 each task's files (hard links where the file system allows)
    corpus/{lang}.txt          unlabeled text for LTP's masked-LM fine-tuning: every training
                               text (and text_pair) of every task in that language, once each
    languages.json             every language: the tasks it has, whether it is evaluation only,
                               distance null (real languages have no generated distance)
    manifest.json              sha256 of every file

Example:
    python -m xlprompt assemble_data --task nli=resources/downloads/xnli/nli --out resources/data/xnli
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from xlprompt.data.assemble import assemble
from xlprompt.runtime.cli import stage_parser, start

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("assemble_data", __doc__)
    parser.add_argument(
        "--task",
        action="append",
        required=True,
        metavar="NAME=FOLDER",
        help="a task and its download_dataset folder (repeat for each task)",
    )
    parser.add_argument("--out", required=True, type=Path, help="output folder (replaced atomically)")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    start(args)
    tasks = {}
    for item in args.task:
        name, sep, folder = item.partition("=")
        if not sep:
            raise SystemExit(f"xlprompt assemble_data: --task {item!r} must be NAME=FOLDER")
        tasks[name] = Path(folder)
    assemble(tasks, args.out)


if __name__ == "__main__":
    main()
