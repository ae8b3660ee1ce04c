"""A Hub backbone at a pinned revision, fetched through the Hugging Face cache and copied into a model folder
(safetensors only), with where it came from."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from xlprompt.data.hub import BACKBONE_FILES, HubDataError, backbone_revision
from xlprompt.data.hub_access import snapshot
from xlprompt.runtime.io import atomic_dir, check_safetensors, sha256_tree, write_json


def copy_backbone(folder: Path, out: Path, source: dict) -> None:
    """Check what the snapshot holds, then copy it (the cache's files are links into its blobs)."""
    if not (folder / "config.json").exists():
        raise HubDataError(f"{source['hub']}@{source['revision']}: no config.json in {folder}")
    weights = sorted(folder.glob("model*.safetensors"))
    if not weights:
        raise HubDataError(
            f"{source['hub']}@{source['revision']}: no safetensors weights at this revision (xlprompt "
            "never loads pickled weights); choose a revision that has model.safetensors, e.g. the "
            "Hub's safetensors conversion branch refs/pr/<N> of the model"
        )
    for path in weights:
        check_safetensors(path)
    model_type = json.loads((folder / "config.json").read_text()).get("model_type")
    with atomic_dir(out) as tmp:
        for path in sorted(folder.iterdir()):
            if path.is_file():
                shutil.copyfile(path, tmp / path.name)
        write_json(tmp / "meta.json", {"source": source, "model_type": model_type, "files_sha256": sha256_tree(tmp)})


def download_backbone(hub: str, revision: str | None, out: Path) -> str:
    """Fetch ``hub`` at ``revision`` (default: the pinned one) into ``out``; returns the revision used."""
    revision_from = (
        "backbone.revision in the config"
        if revision
        else "pinned in src/xlprompt/data/hub.py (HUB_BACKBONES); backbone.revision in the config overrides it"
    )
    revision = backbone_revision(hub, revision)
    folder = snapshot(hub, revision, BACKBONE_FILES, repo_type="model", revision_from=revision_from)
    # The snapshot folder is named after the commit the revision resolved to.
    copy_backbone(folder, out, {"hub": hub, "revision": revision, "commit": folder.name})
    return revision
