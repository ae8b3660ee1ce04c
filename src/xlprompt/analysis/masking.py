"""How much a prompt's task depends on its most activated neurons: accuracy with them off, against as many
random ones off (Su et al. 2022)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import torch

from xlprompt.analysis.evaluation import TestSets, score
from xlprompt.analysis.neurons import activation_key, record_ffn, top_neurons
from xlprompt.methods.artifacts import load_trained
from xlprompt.models.backbone import load_backbone
from xlprompt.models.compute import CPU, Compute, place
from xlprompt.models.families import family_of
from xlprompt.runtime.io import read_json

logger = logging.getLogger(__name__)


def mean_accuracy(rows: list[dict], name: str, seed: int, condition: str, n_languages: int) -> float:
    """The mean over languages of one prompt's accuracy under one condition (for the log)."""
    mine = [r["accuracy"] for r in rows if r["name"] == name and r["seed"] == seed and r["condition"] == condition]
    return sum(mine) / n_languages


def random_neurons(shape: tuple[int, int], count: int, seed: int) -> torch.Tensor:
    mask = torch.zeros(shape[0] * shape[1], dtype=torch.bool)
    mask[torch.randperm(mask.numel(), generator=torch.Generator().manual_seed(seed))[:count]] = True
    return mask.view(shape)


def masking(
    backbone_dir: Path,
    data_root: Path,
    prompts: list[tuple[str, Path]],
    activations: dict[str, torch.Tensor],
    share: float,
    languages: list[str] | None,
    compute: Compute = CPU,
) -> pd.DataFrame:
    """Accuracy of every single-task prompt with all neurons on, its top ``share`` off and as many
    random ones off, on its own task, computed on ``compute``."""
    shared = load_backbone(backbone_dir, compute.dtype)
    place(shared[0], compute)
    tokenizer = shared[1]
    rows, tests = [], {}
    for name, path in prompts:
        meta = read_json(path / "meta.json")
        if len(meta["tasks"]) != 1:
            logger.info("skipping %s: a multi-task prompt has no single task to test", name)
            continue
        task, cfg = meta["task"], meta["config"]
        key = activation_key(name, path)
        if key not in activations:
            raise ValueError(f"no activations of {key} in the activations file")
        top = top_neurons(activations[key], share)
        conditions = {
            "all_on": None,
            "top_off": top,
            "random_off": random_neurons((top.shape[0], top.shape[1]), int(top.sum()), cfg["seed"]),
        }
        model = place(load_trained(path, backbone_dir, shared=shared, dtype=compute.dtype)[0], compute)
        if task not in tests:
            tests[task] = TestSets(data_root / task, tokenizer, languages, family=family_of(model.backbone))
        for condition, off in conditions.items():
            for lang in tests[task].languages:
                data = tests[task].encoded(lang, cfg)
                with record_ffn(model.backbone, None if off is None else list(off)):
                    result = score(model, data, tokenizer.pad_token_id, len(tests[task].labels.names)).row
                rows.append(
                    {
                        "name": name,
                        "task": task,
                        "seed": cfg["seed"],
                        "lang": lang,
                        "condition": condition,
                        "share": share,
                        "neurons_off": 0 if off is None else int(off.sum()),
                        "accuracy": result["accuracy"],
                    }
                )
        logger.info(
            "%s seed %d: %s",
            name,
            cfg["seed"],
            " ".join(
                f"{c} {mean_accuracy(rows, name, cfg['seed'], c, len(tests[task].languages)):.3f}" for c in conditions
            ),
        )
    if not rows:
        raise ValueError("neuron_masking: no single-task prompt to test")
    return pd.DataFrame(rows)
