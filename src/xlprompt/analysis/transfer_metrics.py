"""SPoT's target prompts, and the sources zero-shot, on the target task in every language
(the document's layout: ``python -m xlprompt evaluate_transfer --help``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from xlprompt.analysis.evaluation import TestSets, predictions_frame, score
from xlprompt.analysis.spot import BASELINES, CROSS_MODEL_INITS
from xlprompt.data.contract import label_map_indices
from xlprompt.methods.artifacts import load_trained
from xlprompt.models.backbone import load_backbone
from xlprompt.models.compute import CPU, Compute, place
from xlprompt.models.families import family_of
from xlprompt.runtime.io import read_json

logger = logging.getLogger(__name__)


def zero_shot_task(source_tasks: list[str], target: str, label_maps: dict) -> str | None:
    """The one task of a source that has a label map to ``target`` (None: not applicable)."""
    mapped = [task for task in source_tasks if target in label_maps.get(task, {})]
    return mapped[0] if len(mapped) == 1 else None


def evaluate_transfer(
    backbone_dir: Path,
    data_dir: Path,
    runs: list[tuple[str, Path]],
    sources: list[tuple[str, Path]],
    label_maps: dict,
    languages: list[str] | None,
    split: str = "test",
    source_model: str = "",
    compute: Compute = CPU,
    with_predictions: bool = False,
):
    """Every run and every source's zero-shot run on the target, computed on ``compute``; with
    ``with_predictions``, also every test example's prediction (a frame; its columns:
    ``python -m xlprompt evaluate_transfer --help``)."""
    shared = load_backbone(backbone_dir, compute.dtype)
    place(shared[0], compute)
    tokenizer = shared[1]
    tests = TestSets(data_dir, tokenizer, languages, split, family=family_of(shared[0]))
    target, n_labels = tests.labels.task, len(tests.labels.names)
    metas = {path: read_json(path / "meta.json") for _, path in sources}
    source_meta = {
        name: {"source_tasks": metas[path]["tasks"], "source_language": metas[path]["train_language"]}
        for name, path in sources
    }
    zero_shot = {}  # source path -> (its task mapped onto the target, the map as target label indices)
    for _name, path in sources:
        task = zero_shot_task(metas[path]["tasks"], target, label_maps)
        if task is not None:
            zero_shot[path] = (
                task,
                label_map_indices(
                    label_maps[task][target],
                    task,
                    metas[path]["label_names"][task],
                    target,
                    tests.labels.names,
                    f"--label-maps {task}.{target}",
                ),
            )
    lengths = set()
    predictions: list[pd.DataFrame] = []

    def rows_of(model, config: dict, run: dict, label_map: list[int] | None = None) -> list[dict]:
        rows = []
        for lang in tests.languages:
            data = tests.encoded(lang, config)
            scored = score(model, data, tokenizer.pad_token_id, n_labels, label_map)
            rows.append({"lang": lang, **scored.row})
            if with_predictions:
                arm = {"transfer": run["source"], "zero_shot": f"zero_shot:{run['source']}"}.get(
                    run["init"], run["init"]
                )
                keys = {"init": run["init"], "source": run["source"], "arm": arm, "seed": run["seed"], "lang": lang}
                predictions.append(predictions_frame(data, scored, tests.labels.names).assign(**keys))
        return rows

    out_runs = []
    for name, path in runs:
        meta = read_json(path / "meta.json")
        if meta["task"] != target:
            raise ValueError(f"{path}: a prompt of task {meta['task']!r}, but {data_dir} holds task {target!r}")
        cfg = meta["config"]
        if name in BASELINES:
            described = {"init": name, "source": "none", "source_tasks": [], "source_language": ""}
        elif name in CROSS_MODEL_INITS:
            if not source_model:
                raise ValueError(f"run {name} ({path}): cross-model runs need source_model (--source-model)")
            described = {
                "init": name,
                "source": source_model,
                "source_tasks": [target],
                "source_language": meta["train_language"],
            }
        elif name in source_meta:
            described = {"init": "transfer", "source": name, **source_meta[name]}
        else:
            raise ValueError(
                f"run {name} ({path}): source {name!r} is not among the sources (--sources) {sorted(source_meta)}"
            )
        lengths.add(cfg["prompt_length"])
        model = place(load_trained(path, backbone_dir, shared=shared, dtype=compute.dtype)[0], compute)
        run = {**described, "seed": cfg["seed"], "applicable": True}
        out_runs.append({**run, "rows": rows_of(model, cfg, run)})
        logger.info(
            "%s from %s, seed %d: accuracy %s",
            target,
            name,
            cfg["seed"],
            " ".join(f"{r['lang']} {r['accuracy']:.3f}" for r in out_runs[-1]["rows"]),
        )
    for name, path in sources:
        meta = metas[path]
        cfg = meta["config"]
        task, label_map = zero_shot.get(path, (None, None))
        run = {
            "init": "zero_shot",
            "source": name,
            **source_meta[name],
            "seed": cfg["seed"],
            "applicable": task is not None,
            "rows": [],
        }
        if task is not None:
            model = place(load_trained(path, backbone_dir, task=task, shared=shared, dtype=compute.dtype)[0], compute)
            run["rows"] = rows_of(model, cfg, run, label_map)
            logger.info(
                "zero-shot %s -> %s (via %s), seed %d: accuracy %s",
                name,
                target,
                task,
                cfg["seed"],
                " ".join(f"{r['lang']} {r['accuracy']:.3f}" for r in run["rows"]),
            )
        out_runs.append(run)
    if len(lengths) > 1:
        raise ValueError(f"prompts of different lengths {sorted(lengths)} in one target's evaluation")
    document: dict[str, Any] = {
        "model": backbone_dir.name,
        "target": target,
        "prompt_length": lengths.pop() if lengths else 0,
        "split": split,
        "chance": 1.0 / n_labels,
        "runs": out_runs,
    }
    if not with_predictions:
        return document
    frame = pd.concat(predictions, ignore_index=True).assign(
        model=document["model"], task=target, prompt_length=document["prompt_length"]
    )
    front = ["model", "task", "prompt_length", "init", "source", "arm", "seed", "lang", "example_id", "gold", "pred"]
    return document, frame[front + [c for c in frame.columns if c not in front]]
