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

import pandas as pd

from xlprompt.data.contract import LabelSpace, load_split, write_labels, write_split
from xlprompt.data.hub import (ALL, HubDataError, HubUnavailable, datasets_offline, download_instructions, hub_dataset,
                               read_hub_file, snapshot)
from xlprompt.data.local import LocalSpec, local_splits
from xlprompt.data.source_files import SourceDataError
from xlprompt.models.families import FAMILIES
from xlprompt.runtime.cli import stage_parser, start
from xlprompt.runtime.io import atomic_dir, sha256_file, sha256_tree, write_json

logger = logging.getLogger(__name__)


def hub_splits(name: str, languages: list[str], revision: str | None = None
               ) -> tuple[LabelSpace, dict[tuple[str, str], pd.DataFrame], dict]:
    """Download (or find in the cache) and convert; nothing is written yet."""
    dataset = hub_dataset(name)
    dataset.check_languages(languages)
    revision = revision or dataset.revision
    folder = snapshot(dataset.repo_id, revision, dataset.allow_patterns(languages), repo_type="dataset",
                      local_files_only=datasets_offline())
    if languages == [ALL]:
        languages = dataset.languages_in(folder)
        logger.info("%s: all %d languages: %s", name, len(languages), " ".join(languages))
        if not languages:
            raise HubUnavailable(f"{dataset.repo_id}: no language files in the snapshot. " + download_instructions(
                dataset.repo_id, revision, dataset.allow_patterns([ALL]), "dataset"))
    frames, read = {}, {}
    for lang in languages:
        for split, relative in dataset.files(lang).items():
            path = folder / relative
            if not path.exists():  # offline, a cached snapshot of other languages
                raise HubUnavailable(f"{relative}: missing from the cached snapshot. " + download_instructions(
                    dataset.repo_id, revision, dataset.allow_patterns(languages), "dataset"))
            frames[lang, split] = dataset.convert(read_hub_file(path, dataset.file_format), path)
            read[relative] = sha256_file(path)
    words = list(dataset.label_words)
    space = LabelSpace(dataset.task, list(dataset.label_names), {family: words for family in FAMILIES})
    source = {"hub": dataset.repo_id, "revision": revision, "files_sha256": read}
    return space, frames, source


def local_dataset(spec: LocalSpec, task: str) -> tuple[LabelSpace, dict[tuple[str, str], pd.DataFrame], dict]:
    frames = local_splits(spec)
    words = list(spec.words)
    space = LabelSpace(task, list(spec.labels), {family: words for family in FAMILIES})
    read = {str(spec.file(lang, split)): sha256_file(spec.file(lang, split)) for lang, split in frames}
    return space, frames, {"local": spec.path, "files_sha256": read}


def merged(parts: list[tuple[LabelSpace, dict, dict]]) -> tuple[LabelSpace, dict, dict]:
    """Several sources of one task (XNLI and AmericasNLI): the same labels, different languages."""
    space, frames, sources = parts[0][0], {}, []
    for other, part_frames, source in parts:
        if other.names != space.names:
            raise HubDataError(f"sources of one task must share their labels: {source.get('hub') or source.get('local')} "
                               f"has {other.names}, the first source {space.names}")
        twice = sorted({lang for lang, _ in part_frames} & {lang for lang, _ in frames})
        if twice:
            raise HubDataError(f"language(s) {twice} come from two sources of one task")
        frames.update(part_frames)
        sources.append(source)
    return space, frames, {"sources": sources} if len(sources) > 1 else sources[0]


def read_sources(specs: list[dict], task: str) -> tuple[LabelSpace, dict, dict]:
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
                raise HubDataError(f"words_by_language: {lang!r} is not a language of this source "
                                   f"({sorted(languages)})")
            if len(words) != len(part[0].names):
                raise HubDataError(f"words_by_language.{lang}: {len(words)} words for {len(part[0].names)} labels "
                                   f"{part[0].names}")
            by_language[lang] = {family: list(words) for family in FAMILIES}
    space, frames, source = merged(parts)
    return LabelSpace(task, space.names, space.verbalizers, by_language), frames, source  # the workflow's task name


def write_dataset(space: LabelSpace, frames: dict[tuple[str, str], pd.DataFrame], source: dict, out: Path) -> None:
    """The whole folder or nothing; each split is checked against the contract as it is written."""
    with atomic_dir(out) as tmp:
        write_labels(tmp, space)
        for (lang, split), frame in frames.items():
            write_split(frame, tmp, lang, split)
            load_split(tmp, lang, split, len(space.names))  # the same checks every later stage makes
            logger.info("%s/%s: %d rows", lang, split, len(frame))
        write_json(tmp / "manifest.json", {"source": source, "files_sha256": sha256_tree(tmp)})


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("download_dataset", __doc__)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--hub", help="a known Hub data set: xnli, americasnli, pawsx, sib200")
    where.add_argument("--local", help="JSON: path (with {lang} and {split}), languages, labels, column names")
    where.add_argument("--sources", help='JSON list of sources of one task, each {"hub": ..., "languages": [...]} '
                                         'or {"local": {...}} (the workflow\'s data.tasks.<task>)')
    parser.add_argument("--languages", nargs="+", default=[],
                        help="Hub config names, e.g. en de or eng_Latn; `all`: every language the data set has")
    parser.add_argument("--revision", default=None, help="another revision than the pinned one (recorded)")
    parser.add_argument("--task", default=None, help="task name in labels.json (local data; default: folder name)")
    parser.add_argument("--out", required=True, type=Path, help="output folder (replaced atomically)")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    start(args)
    try:
        task = args.task or args.out.name
        if args.hub:
            space, frames, source = hub_splits(args.hub, args.languages, args.revision)
        elif args.local:
            space, frames, source = local_dataset(LocalSpec.from_dict(json.loads(args.local)), task)
        else:
            space, frames, source = read_sources(json.loads(args.sources), task)
    except (SourceDataError, HubUnavailable) as err:
        raise SystemExit(f"xlprompt download_dataset: {err}") from None
    write_dataset(space, frames, source, args.out)
    logger.info("wrote %s: %d files from %s", args.out, len(frames), source.get("hub") or source.get("local"))


if __name__ == "__main__":
    main()
