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
import json
import logging
import shutil
from pathlib import Path

from xlprompt.data.hub import BACKBONE_FILES, HubDataError, HubUnavailable, backbone_revision, snapshot
from xlprompt.runtime.cli import stage_parser, start
from xlprompt.runtime.io import atomic_dir, check_safetensors, sha256_tree, write_json

logger = logging.getLogger(__name__)


def copy_backbone(folder: Path, out: Path, source: dict) -> None:
    """Check what the snapshot holds, then copy it (the cache's files are links into its blobs)."""
    if not (folder / "config.json").exists():
        raise HubDataError(f"{source['hub']}@{source['revision']}: no config.json in {folder}")
    weights = sorted(folder.glob("model*.safetensors"))
    if not weights:
        raise HubDataError(f"{source['hub']}@{source['revision']}: no safetensors weights at this revision (xlprompt "
                           "never loads pickled weights); choose a revision that has model.safetensors, e.g. the "
                           "Hub's safetensors conversion branch refs/pr/<N> of the model")
    for path in weights:
        check_safetensors(path)
    model_type = json.loads((folder / "config.json").read_text()).get("model_type")
    with atomic_dir(out) as tmp:
        for path in sorted(folder.iterdir()):
            if path.is_file():
                shutil.copyfile(path, tmp / path.name)
        write_json(tmp / "meta.json", {"source": source, "model_type": model_type, "files_sha256": sha256_tree(tmp)})


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
        revision = backbone_revision(args.hub, args.revision)
        folder = snapshot(args.hub, revision, BACKBONE_FILES, repo_type="model")
        # The snapshot folder is named after the commit the revision resolved to.
        copy_backbone(folder, args.out, {"hub": args.hub, "revision": revision, "commit": folder.name})
    except (HubDataError, HubUnavailable) as err:
        raise SystemExit(f"xlprompt download_backbone: {err}") from None
    logger.info("wrote %s from %s@%s", args.out, args.hub, revision)


if __name__ == "__main__":
    main()
