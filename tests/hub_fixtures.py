"""Files in each Hub data set's exact schema, in a Hugging Face cache laid out as snapshot_download
leaves it (datasets--<org>--<name>/snapshots/<commit>/...): what a user's machine holds after
downloading, written by the tests themselves."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from xlprompt.data.hub import HUB_DATASETS

NLI_FEATURES = {
    "premise": {"dtype": "string", "_type": "Value"},
    "hypothesis": {"dtype": "string", "_type": "Value"},
    "label": {"names": ["entailment", "neutral", "contradiction"], "_type": "ClassLabel"},
}
PAWSX_FEATURES = {
    "id": {"dtype": "int32", "_type": "Value"},
    "sentence1": {"dtype": "string", "_type": "Value"},
    "sentence2": {"dtype": "string", "_type": "Value"},
    "label": {"names": ["0", "1"], "_type": "ClassLabel"},
}


def write_hub_parquet(path: Path, columns: dict[str, pa.Array], features: dict) -> None:
    """A parquet file as the Hub's parquet conversion writes it (features in the schema metadata)."""
    table = pa.table(columns)
    table = table.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features}})})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def nli_file(path: Path, rows: int, offset: int = 0, labels: list[int] | None = None) -> list[int]:
    labels = labels if labels is not None else [(offset + i) % 3 for i in range(rows)]
    write_hub_parquet(
        path,
        {
            "premise": pa.array([f"premise {offset + i}, with a comma" for i in range(rows)], pa.string()),
            "hypothesis": pa.array([f"hypothesis {offset + i}" for i in range(rows)], pa.string()),
            "label": pa.array(labels, pa.int64()),
        },
        NLI_FEATURES,
    )
    return labels


def pawsx_file(path: Path, rows: int, labels: list[int]) -> None:
    write_hub_parquet(
        path,
        {
            "id": pa.array(range(1, rows + 1), pa.int32()),
            "sentence1": pa.array([f"s1 {i}" for i in range(rows)], pa.string()),
            "sentence2": pa.array([f"s2 {i}" for i in range(rows)], pa.string()),
            "label": pa.array(labels, pa.int64()),
        },
        PAWSX_FEATURES,
    )


def sib_file(path: Path, categories: list[str], start_id: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["index_id\tcategory\ttext"]
    lines += [
        f'{start_id + i}\t{cat}\tA "quoted" sentence about {cat}, number {i}.' for i, cat in enumerate(categories)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def belebele_file(path: Path, passages: int, answers: list[str] | None = None) -> None:
    """One language's Belebele JSONL in the Hub's schema: two questions per passage, answers "1".."4"."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(passages):
        for number in (1, 2):
            row = len(rows)
            rows.append(
                {
                    "link": f"https://en.wikibooks.org/wiki/Passage_{i}",
                    "question_number": number,
                    "flores_passage": f"Passage {i} says that the {row}th thing happened.",
                    "question": f"What happened in question {number}?",
                    **{f"mc_answer{k}": f"answer {k} of {row}" for k in range(1, 5)},
                    "correct_answer_num": answers[row] if answers else str(row % 4 + 1),
                    "dialect": path.stem,
                    "ds": "2023-05-03",
                }
            )
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def snapshot_folder(cache: Path, name: str) -> Path:
    dataset = HUB_DATASETS[name]
    return cache / f"datasets--{dataset.repo_id.replace('/', '--')}" / "snapshots" / dataset.revision


def model_snapshot(cache: Path, repo_id: str, commit: str, source: Path, ref: str | None = None) -> Path:
    """A model folder placed in the cache at ``commit`` (and a branch ``ref`` resolving to it)."""
    storage = cache / f"models--{repo_id.replace('/', '--')}"
    folder = storage / "snapshots" / commit
    folder.mkdir(parents=True)
    for path in source.iterdir():
        if path.is_file() and path.name != "meta.json":
            (folder / path.name).write_bytes(path.read_bytes())
    if ref is not None:  # e.g. refs/pr/4, resolved to its commit through the cache's refs folder
        (storage / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
        (storage / "refs" / ref).write_text(commit)
    return folder


WORDS = [
    "the",
    "cat",
    "dog",
    "bird",
    "sees",
    "finds",
    "likes",
    "big",
    "small",
    "red",
    "old",
    "new",
    "house",
    "tree",
    "river",
    "town",
    "near",
    "far",
    "a",
    "man",
    "woman",
    "child",
    "runs",
    "walks",
    "sleeps",
    "eats",
    "green",
    "blue",
    "happy",
    "sad",
]


def sentences(rng: random.Random, n: int) -> list[str]:
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 9))) for _ in range(n)]


def nli_sentence_file(path: Path, rows: int, seed: int) -> None:
    """An NLI file in the Hub schema whose texts a tiny tokenizer trained on WORDS can read."""
    rng = random.Random(seed)
    write_hub_parquet(
        path,
        {
            "premise": pa.array(sentences(rng, rows), pa.string()),
            "hypothesis": pa.array(sentences(rng, rows), pa.string()),
            "label": pa.array([i % 3 for i in range(rows)], pa.int64()),
        },
        NLI_FEATURES,
    )


def sib_sentence_file(path: Path, rows: int, seed: int) -> None:
    """A SIB-200 TSV (index_id, category, text) whose texts a tiny tokenizer trained on WORDS can read."""
    from xlprompt.data.hub import SIB_NAMES

    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["index_id\tcategory\ttext"]
    lines += [f"{i + 1}\t{SIB_NAMES[i % len(SIB_NAMES)]}\t{text}" for i, text in enumerate(sentences(rng, rows))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
