"""Fetch a Hub backbone (weights in safetensors, config, tokenizer) at a pinned revision.

Reads: the Hub through the Hugging Face cache (only config, safetensors weights and tokenizer
files; never pickles or ONNX/TF/Flax copies). Writes (under --out)::

    config.json, model.safetensors, tokenizer files     a folder every stage loads as is
    meta.json                                          repository, revision asked for, the commit it
                                                       resolved to, sha256 of every file

With HF_HUB_OFFLINE=1 and nothing cached, it stops before writing anything and says what to
download and how.

Example:
    python -m xlprompt download_backbone --hub FacebookAI/xlm-roberta-base --out resources/models/xlm-roberta-base
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from xlprompt.data.hub import HubDataError
from xlprompt.data.hub_access import HubUnavailable
from xlprompt.models.download import download_backbone
from xlprompt.runtime.cli import stage_parser, start

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("download_backbone", __doc__)
    parser.add_argument("--hub", required=True, help="model id, e.g. FacebookAI/xlm-roberta-base")
    parser.add_argument("--revision", default=None, help="commit (default: the one pinned for known backbones)")
    parser.add_argument("--out", required=True, type=Path, help="output folder (replaced atomically)")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    start(args)
    try:
        revision = download_backbone(args.hub, args.revision, args.out)
    except (HubDataError, HubUnavailable) as err:
        raise SystemExit(f"xlprompt download_backbone: {err}") from None
    logger.info("wrote %s from %s@%s", args.out, args.hub, revision)


if __name__ == "__main__":
    main()
