"""How much does a prompt's task depend on its most activated neurons? (Su et al. 2022)

For each prompt: switch off (set to 0, in every layer and position) the --share most
activated FFN neurons of its prompt-alone activations, and, as a control, the same number of
neurons drawn at random (seeded); evaluate each condition on the prompt's own task. Writes::

    name, task, seed, lang, condition (all_on | top_off | random_off), share, neurons_off, accuracy

Example:
    python -m xlprompt neuron_masking --backbone resources/models/tiny-xlmr-demo \
        --data-root resources/data/demo \
        --prompts topic=results/demo/prompts/tiny-xlmr-demo/topic/spt/L16/seed0 \
        --activations results/demo/activations/tiny-xlmr-demo/activations.safetensors \
        --out results/demo/tables/neuron_masking.csv
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd
import torch

from xlprompt.analysis.evaluation import TestSets, score
from xlprompt.analysis.neurons import activation_key, record_ffn, top_neurons
from xlprompt.methods.artifacts import load_trained
from xlprompt.models.backbone import load_backbone
from xlprompt.models.compute import CPU, Compute, choose_compute, place
from xlprompt.models.families import family_of
from xlprompt.runtime.cli import named_paths, stage_parser, start
from xlprompt.runtime.io import load_tensors, read_json, write_csv
from xlprompt.runtime.settings import NeuronSettings

logger = logging.getLogger(__name__)


def random_neurons(shape: tuple[int, int], count: int, seed: int) -> torch.Tensor:
    mask = torch.zeros(shape[0] * shape[1], dtype=torch.bool)
    mask[torch.randperm(mask.numel(), generator=torch.Generator().manual_seed(seed))[:count]] = True
    return mask.view(shape)


def masking(backbone_dir: Path, data_root: Path, prompts: list[tuple[str, Path]], activations: dict[str, torch.Tensor],
            share: float, languages: list[str] | None, compute: Compute = CPU) -> pd.DataFrame:
    """Accuracy of every single-task prompt with all neurons on, its top ``share`` off and as many
    random ones off, on its own task, computed on ``compute``."""
    shared = load_backbone(backbone_dir)
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
        conditions = {"all_on": None, "top_off": top,
                      "random_off": random_neurons(tuple(top.shape), int(top.sum()), cfg["seed"])}
        model = place(load_trained(path, backbone_dir, shared=shared)[0], compute)
        if task not in tests:
            tests[task] = TestSets(data_root / task, tokenizer, languages, family=family_of(model.backbone))
        for condition, off in conditions.items():
            for lang in tests[task].languages:
                data = tests[task].encoded(lang, cfg["max_length"])
                with record_ffn(model.backbone, None if off is None else list(off)):
                    result = score(model, data, tokenizer.pad_token_id, len(tests[task].labels.names)).row
                rows.append({"name": name, "task": task, "seed": cfg["seed"], "lang": lang, "condition": condition,
                             "share": share, "neurons_off": 0 if off is None else int(off.sum()),
                             "accuracy": result["accuracy"]})
        logger.info("%s seed %d: %s", name, cfg["seed"], " ".join(
            f"{c} {sum(r['accuracy'] for r in rows if r['name'] == name and r['seed'] == cfg['seed'] and r['condition'] == c) / len(tests[task].languages):.3f}"
            for c in conditions))
    if not rows:
        raise ValueError("neuron_masking: no single-task prompt to test")
    return pd.DataFrame(rows)


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("neuron_masking", __doc__, threads=True)
    parser.add_argument("--backbone", required=True, type=Path)
    parser.add_argument("--data-root", required=True, type=Path, help="folder holding <task>/ data sets")
    parser.add_argument("--prompts", nargs="+", required=True, metavar="NAME=PATH")
    parser.add_argument("--activations", required=True, type=Path, help="prompt_activations' file")
    parser.add_argument("--share", type=float, default=NeuronSettings.mask_share, help="share of the neurons to switch off")
    parser.add_argument("--languages", nargs="*", default=None, help="default: every language of the data set")
    parser.add_argument("--out", required=True, type=Path, help="CSV file to write")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    start(args)
    if not 0 < args.share < 1:
        raise ValueError(f"--share must be in (0, 1), got {args.share}")
    table = masking(args.backbone, args.data_root, named_paths(args.prompts, "--prompts"), load_tensors(args.activations),
                    args.share, args.languages, compute=choose_compute(args.device))
    write_csv(table, args.out)
