"""A task's data from the Hub at a pinned revision, from a user's own files, or from several such sources,
converted to the data contract and written as one folder."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from xlprompt.data.contract import LabelSpace, load_split, write_labels, write_split
from xlprompt.data.hub import ALL, HubDataError, datasets_offline, hub_dataset, read_hub_file
from xlprompt.data.hub_access import HubUnavailable, download_instructions, snapshot
from xlprompt.data.local import LocalSpec, local_splits
from xlprompt.runtime.io import atomic_dir, sha256_file, sha256_tree, write_json
from xlprompt.runtime.settings import FAMILIES

logger = logging.getLogger(__name__)

Frames = dict[tuple[str, str], pd.DataFrame]  # (language, split) -> the split in the data contract
Task = tuple[LabelSpace, Frames, dict[str, Any]]  # a task's labels, splits and where they came from


def hub_splits(name: str, languages: list[str], revision: str | None = None) -> Task:
    """Download (or find in the cache) and convert; nothing is written yet."""
    dataset = hub_dataset(name)
    dataset.check_languages(languages)
    revision_from = (
        f"the revision of data source {name} in the config"
        if revision
        else "pinned in src/xlprompt/data/hub.py (HUB_DATASETS); a data source's revision in the config overrides it"
    )
    revision = revision or dataset.revision
    folder = snapshot(
        dataset.repo_id,
        revision,
        dataset.allow_patterns(languages),
        repo_type="dataset",
        local_files_only=datasets_offline(),
        revision_from=revision_from,
    )
    if languages == [ALL]:
        languages = dataset.languages_in(folder)
        logger.info("%s: all %d languages: %s", name, len(languages), " ".join(languages))
        if not languages:
            raise HubUnavailable(
                f"{dataset.repo_id}: no language files in the snapshot. "
                + download_instructions(dataset.repo_id, revision, dataset.allow_patterns([ALL]), "dataset")
            )
    frames, read = {}, {}
    for lang in languages:
        for split, relative in dataset.files(lang).items():
            path = folder / relative
            if not path.exists():  # offline, a cached snapshot of other languages
                raise HubUnavailable(
                    f"{relative}: missing from the cached snapshot. "
                    + download_instructions(dataset.repo_id, revision, dataset.allow_patterns(languages), "dataset")
                )
            converted = dataset.convert(read_hub_file(path, dataset.file_format), path)
            if dataset.held_out is not None:  # train and validation carved out of the test file
                for carved, frame in dataset.held_out.split(converted, path).items():
                    frames[lang, carved] = frame
            else:
                frames[lang, split] = converted
            read[relative] = sha256_file(path)
    words = list(dataset.label_words)
    space = LabelSpace(dataset.task, list(dataset.label_names), dict.fromkeys(FAMILIES, words))
    source = {"hub": dataset.repo_id, "revision": revision, "files_sha256": read}
    return space, frames, source


def local_dataset(spec: LocalSpec, task: str) -> Task:
    frames = local_splits(spec)
    words = list(spec.words)
    space = LabelSpace(task, list(spec.labels), dict.fromkeys(FAMILIES, words))
    read = {str(spec.file(lang, split)): sha256_file(spec.file(lang, split)) for lang, split in frames}
    return space, frames, {"local": spec.path, "files_sha256": read}


def merged(parts: list[Task]) -> Task:
    """Several sources of one task (XNLI and AmericasNLI): the same labels, different languages."""
    space = parts[0][0]
    frames: Frames = {}
    sources: list[dict[str, Any]] = []
    for other, part_frames, source in parts:
        if other.names != space.names:
            raise HubDataError(
                f"sources of one task must share their labels: {source.get('hub') or source.get('local')} "
                f"has {other.names}, the first source {space.names}"
            )
        twice = sorted({lang for lang, _ in part_frames} & {lang for lang, _ in frames})
        if twice:
            raise HubDataError(f"language(s) {twice} come from two sources of one task")
        frames.update(part_frames)
        sources.append(source)
    return space, frames, {"sources": sources} if len(sources) > 1 else sources[0]


def read_sources(specs: list[dict[str, Any]], task: str) -> Task:
    """Each source: {"hub": name, "languages": [...], "revision": optional} or {"local": {...}},
    either with optional "words_by_language": {lang: [one word per label]} (the label words read
    in that language instead of the English ones)."""
    parts, by_language = [], {}
    for spec in specs:
        if "hub" in spec:
            languages = spec.get("languages", [])
            part = hub_splits(spec["hub"], [ALL] if languages == ALL else list(languages), spec.get("revision"))
        else:
            part = local_dataset(LocalSpec.from_dict(spec["local"]), task)
        parts.append(part)
        languages = {lang for lang, _ in part[1]}
        for lang, words in spec.get("words_by_language", {}).items():
            if lang not in languages:
                raise HubDataError(
                    f"words_by_language: {lang!r} is not a language of this source ({sorted(languages)})"
                )
            if len(words) != len(part[0].names):
                raise HubDataError(
                    f"words_by_language.{lang}: {len(words)} words for {len(part[0].names)} labels {part[0].names}"
                )
            by_language[lang] = {family: list(words) for family in FAMILIES}
    space, frames, source = merged(parts)
    return LabelSpace(task, space.names, space.verbalizers, by_language), frames, source  # the workflow's task name


def read_task(
    task: str,
    hub: str | None = None,
    languages: list[str] | None = None,
    revision: str | None = None,
    local: dict[str, Any] | None = None,
    sources: list[dict[str, Any]] | None = None,
) -> Task:
    """One task's labels, splits and provenance from exactly one of: a Hub data set (``hub``, its ``languages``
    and ``revision``), a user's files (``local``, a :class:`xlprompt.data.local.LocalSpec` as a dict) or several
    ``sources``."""
    if hub:
        return hub_splits(hub, languages or [], revision)
    if local is not None:
        return local_dataset(LocalSpec.from_dict(local), task)
    if sources is None:
        raise ValueError("read_task needs hub, local or sources")
    return read_sources(sources, task)


def write_dataset(space: LabelSpace, frames: Frames, source: dict[str, Any], out: Path) -> None:
    """The whole folder or nothing; each split is checked against the contract as it is written."""
    with atomic_dir(out) as tmp:
        write_labels(tmp, space)
        for (lang, split), frame in frames.items():
            write_split(frame, tmp, lang, split)
            load_split(tmp, lang, split, len(space.names))  # the same checks every later stage makes
            logger.info("%s/%s: %d rows", lang, split, len(frame))
        write_json(tmp / "manifest.json", {"source": source, "files_sha256": sha256_tree(tmp)})
