"""Trained prompts of one task on the test split of every language: metrics documents and predictions,
with one backbone load and one tokenisation for all of them."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import pandas as pd

from xlprompt.analysis.evaluation import TestSets, predictions_frame, score, score_together
from xlprompt.data.encoding import run_encoding
from xlprompt.methods.artifacts import load_trained
from xlprompt.models.backbone import load_backbone
from xlprompt.models.compute import CPU, Compute, place
from xlprompt.models.families import family_of
from xlprompt.models.limits import check_positions
from xlprompt.models.prompting import PromptedLM, verbalizer_tensor
from xlprompt.models.tasks import word_ids
from xlprompt.runtime.io import read_json

logger = logging.getLogger(__name__)


def evaluate(
    prompt_dir: Path,
    backbone_dir: Path,
    data_dir: Path,
    languages: list[str] | None,
    split: str = "test",
    batch_size: int = 0,
) -> dict:
    """The metrics document of one prompt on every language."""
    return evaluate_prompts([prompt_dir], backbone_dir, data_dir, languages, split, batch_size)[0]


def evaluate_prompts(
    prompt_dirs: list[Path],
    backbone_dir: Path,
    data_dir: Path,
    languages: list[str] | None,
    split: str = "test",
    batch_size: int = 0,
    batch_prompts: bool = True,
    compute: Compute = CPU,
    with_predictions: bool = False,
):
    """Metrics documents of every prompt, with one backbone load and one tokenisation.

    Prompts that leave the backbone as it is (spt, untrained) and share a length run in the
    same forward passes (``batch_prompts``); full_ft, ltp, lora and bitfit prompts bring their own weights
    and run one by one, and so do deep_prompt's (the shared backbone, with prefixes in its layers).
    """
    shared = load_backbone(backbone_dir, compute.dtype)
    place(shared[0], compute)
    tests = TestSets(data_dir, shared[1], languages, split, family=family_of(shared[0]))  # reads, checks every file
    metas = [read_json(prompt_dir / "meta.json") for prompt_dir in prompt_dirs]
    for prompt_dir, meta in zip(prompt_dirs, metas):
        if meta["task"] != tests.labels.task:
            raise ValueError(
                f"{prompt_dir}: trained on task {meta['task']!r}, but {data_dir} holds task {tests.labels.task!r}"
            )
    groups: dict[tuple, list[int]] = {}
    models: dict[int, PromptedLM] = {}  # by position in prompt_dirs, while their group is being scored
    for i, prompt_dir in enumerate(prompt_dirs):
        model, _ = load_trained(prompt_dir, backbone_dir, shared=shared, dtype=compute.dtype)
        encoding = run_encoding(metas[i]["config"], tests.family)
        check_positions(model.backbone, encoding[0], model.prompt_positions)
        models[i] = place(model, compute)
        together = batch_prompts and model.backbone is shared[0] and model.prompt is not None
        key = ("shared", model.prompt_positions, encoding) if together else ("alone", i)
        groups.setdefault(key, []).append(i)
    rows: list[list[dict]] = [[] for _ in prompt_dirs]
    frames: list[list[pd.DataFrame]] = [[] for _ in prompt_dirs]
    pad_id, n_labels = shared[1].pad_token_id, len(tests.labels.names)
    for members in groups.values():
        for lang in tests.languages:
            data = tests.encoded(lang, metas[members[0]]["config"])
            with language_words([models[i] for i in members], tests, lang):
                if len(members) > 1:
                    scores = score_together([models[i] for i in members], data, pad_id, n_labels, batch_size)
                else:
                    scores = [score(models[members[0]], data, pad_id, n_labels, batch_size=batch_size)]
            for i, scored in zip(members, scores):
                rows[i].append({"lang": lang, **scored.row})
                frames[i].append(predictions_frame(data, scored, tests.labels.names).assign(lang=lang))
        for i in members:
            # The next group's models may hold their own backbone copies: let these go first.
            del models[i]
    for prompt_dir, prompt_rows in zip(prompt_dirs, rows):
        logger.info("%s: accuracy %s", prompt_dir, " ".join(f"{r['lang']} {r['accuracy']:.3f}" for r in prompt_rows))
    documents = [
        metrics_document(meta, backbone_dir, tests, split, prompt_rows) for meta, prompt_rows in zip(metas, rows)
    ]
    if not with_predictions:
        return documents
    return documents, [predictions_table(document, parts) for document, parts in zip(documents, frames)]


def predictions_table(document: dict, parts: list[pd.DataFrame]) -> pd.DataFrame:
    """One prompt's predictions in every language, with the keys of its metrics rows in front."""
    keys = {key: document[key] for key in ("model", "task", "method", "prompt_length", "source", "seed")}
    frame = pd.concat(parts, ignore_index=True).assign(**keys)
    front = [*keys, "lang", "example_id", "gold", "pred"]
    return frame[front + [c for c in frame.columns if c not in front]]


@contextlib.contextmanager
def language_words(models: list, tests: TestSets, lang: str):
    """Read ``lang``'s own label words where labels.json gives them (``verbalizers_by_language``)."""
    if lang not in tests.labels.by_language:
        yield
        return
    family = family_of(models[0].backbone)
    ids = verbalizer_tensor(
        word_ids(tests.tokenizer, tests.labels.verbalizer(family, lang), tests.data_dir / "labels.json", family)
    )
    kept = [model.verbalizer_ids for model in models]
    for model in models:
        model.verbalizer_ids = ids.to(model.verbalizer_ids.device)
    try:
        yield
    finally:
        for model, old in zip(models, kept):
            model.verbalizer_ids = old


def metrics_document(meta: dict, backbone_dir: Path, tests: TestSets, split: str, rows: list[dict]) -> dict:
    cfg = meta["config"]
    method = meta.get("method_name", cfg["method"])  # a config variant's name, e.g. spt_reparam
    return {
        "model": backbone_dir.name,
        "task": meta["task"],
        "method": method,
        "prompt_length": cfg["prompt_length"],
        "seed": cfg["seed"],
        "source": "none",
        "train_language": cfg["train_language"],
        "split": split,
        "chance": 1.0 / len(tests.labels.names),
        "rows": rows,
    }
