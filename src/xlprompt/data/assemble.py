"""One real-path data folder from the downloaded tasks, laid out as a generated world is (the data contract)."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from xlprompt.data.contract import load_labels, load_split, split_path
from xlprompt.runtime.io import atomic_dir, sha256_tree, write_json

logger = logging.getLogger(__name__)


def link_tree(source: Path, target: Path) -> None:
    """A copy of ``source`` at ``target`` made of hard links (a plain copy across file systems)."""
    for path in sorted(source.rglob("*")):
        destination = target / path.relative_to(source)
        if path.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, destination)
        except OSError:
            shutil.copyfile(path, destination)


def assemble(tasks: dict[str, Path], out: Path) -> None:
    with atomic_dir(out) as tmp:
        texts: dict[str, dict[str, None]] = {}  # language -> texts in first-seen order, each once
        languages: dict[str, dict[str, Any]] = {}
        for task, folder in sorted(tasks.items()):
            labels = load_labels(folder)
            link_tree(folder, tmp / task)
            for lang_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
                lang = lang_dir.name
                entry = languages.setdefault(
                    lang, {"lang": lang, "tasks": [], "evaluation_only": True, "distance": None}
                )
                entry["tasks"].append(task)
                if split_path(folder, lang, "train").exists():
                    entry["evaluation_only"] = False
                    frame = load_split(folder, lang, "train", len(labels.names))
                    bucket = texts.setdefault(lang, {})
                    for column in ("text", "text_pair"):
                        bucket.update(dict.fromkeys(t.replace("\n", " ") for t in frame[column].dropna()))
        (tmp / "corpus").mkdir()
        for lang, bucket in sorted(texts.items()):
            (tmp / "corpus" / f"{lang}.txt").write_text("\n".join(bucket) + "\n", encoding="utf-8")
        write_json(tmp / "languages.json", [languages[lang] for lang in sorted(languages)])
        write_json(tmp / "manifest.json", sha256_tree(tmp))
    logger.info("assembled %d task(s), %d language(s), corpora for %s", len(tasks), len(languages), sorted(texts))
