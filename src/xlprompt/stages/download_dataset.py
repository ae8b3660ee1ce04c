"""Fetch a Hub data set at its pinned revision (or read a user's own files) into the data contract.

Reads: the Hub (XNLI, PAWS-X, SIB-200, AmericasNLI; only the files of the languages asked
for, fetched into the Hugging Face cache and read through datasets' parquet or csv builder) or
local files described by a JSON spec. Writes (under --out)::

    labels.json                   label names, and label words for every model family
    {lang}/{split}.parquet        id, text, text_pair, label (a language without train: evaluation only)
    manifest.json                 where it came from (repository@revision or the local path), the
                                  sha256 of every file read and of every file written

With HF_HUB_OFFLINE=1 or HF_DATASETS_OFFLINE=1 and nothing cached, it stops before writing
anything and says what to download and how.

Examples:
    python -m xlprompt download_dataset --hub xnli --languages en de sw --out resources/downloads/xnli/nli
    python -m xlprompt download_dataset --out resources/downloads/xnli/nli --sources \
        '[{"hub": "xnli", "languages": ["en", "de"]}, {"hub": "americasnli", "languages": ["aym", "quy"]}]'
    python -m xlprompt download_dataset --out resources/data/mine/mldoc \\
        --local '{"path": "/data/mldoc/{lang}/{split}.tsv", "languages": ["en", "de"],
                  "labels": ["CCAT", "ECAT", "GCAT", "MCAT"], "text": "text", "label": "label"}'
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from xlprompt.data.download import read_task, write_dataset
from xlprompt.data.hub_access import HubUnavailable
from xlprompt.data.source_files import SourceDataError
from xlprompt.runtime.cli import stage_parser, start

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("download_dataset", __doc__)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--hub", help="a known Hub data set: xnli, americasnli, pawsx, sib200")
    where.add_argument("--local", help="JSON: path (with {lang} and {split}), languages, labels, column names")
    where.add_argument(
        "--sources",
        help='JSON list of sources of one task, each {"hub": ..., "languages": [...]} '
        'or {"local": {...}} (the workflow\'s data.tasks.<task>)',
    )
    parser.add_argument(
        "--languages",
        nargs="+",
        default=[],
        help="Hub config names, e.g. en de or eng_Latn; `all`: every language the data set has",
    )
    parser.add_argument("--revision", default=None, help="another revision than the pinned one (recorded)")
    parser.add_argument("--task", default=None, help="task name in labels.json (local data; default: folder name)")
    parser.add_argument("--out", required=True, type=Path, help="output folder (replaced atomically)")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    start(args)
    try:
        space, frames, source = read_task(
            args.task or args.out.name,
            args.hub,
            args.languages,
            args.revision,
            json.loads(args.local) if args.local else None,
            json.loads(args.sources) if args.sources else None,
        )
    except (SourceDataError, HubUnavailable) as err:
        raise SystemExit(f"xlprompt download_dataset: {err}") from None
    write_dataset(space, frames, source, args.out)
    logger.info("wrote %s: %d files from %s", args.out, len(frames), source.get("hub") or source.get("local"))


if __name__ == "__main__":
    main()
