"""Activated neurons of trained prompts (Su et al. 2022), all prompts in one batched pass.

For each prompt: every layer's FFN activation after the non-linearity at the prediction
position (<mask>) of the frozen backbone, with the prompt fed alone (``[P] <s> <mask> </s>``,
as Su et al.), or with ``--mode task`` averaged over the first ``--examples`` validation
examples of the prompt's (first) task in its training language. Writes one safetensors
file: a tensor (n_layers, ffn) per prompt, named ``<NAME>/L<length>/seed<seed>``.

Example:
    python -m xlprompt prompt_activations --backbone resources/models/tiny-xlmr-demo \
        --prompts topic=results/demo/prompts/tiny-xlmr-demo/topic/spt/L16/seed0 \
                  domain=results/demo/transfer/tiny-xlmr-demo/domain/random/L16/seed0 \
        --out results/demo/activations/tiny-xlmr-demo/L16.safetensors
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch
from safetensors.torch import save

from xlprompt.analysis.neurons import activation_key, prompt_alone_activations, task_input_activations
from xlprompt.methods.artifacts import artifact_tensors, load_trained
from xlprompt.models.backbone import load_backbone
from xlprompt.models.compute import CPU, Compute, choose_compute, place
from xlprompt.models.families import family_of
from xlprompt.models.tasks import TaskSet
from xlprompt.runtime.cli import named_paths, stage_parser, start
from xlprompt.runtime.io import atomic_file, read_json
from xlprompt.runtime.settings import NeuronSettings

logger = logging.getLogger(__name__)


def collect(backbone_dir: Path, prompts: list[tuple[str, Path]], mode: str = NeuronSettings.mode, data_root: Path | None = None,
            examples: int = NeuronSettings.examples, compute: Compute = CPU) -> dict[str, torch.Tensor]:
    """Activations (n_layers, ffn) of every prompt by its key, computed on ``compute``, returned on the CPU."""
    backbone, tokenizer = load_backbone(backbone_dir)
    backbone.requires_grad_(False)
    place(backbone, compute)
    keys = [activation_key(name, path) for name, path in prompts]
    if len(set(keys)) != len(keys):
        raise ValueError(f"two prompts with the same name and seed in {keys}")
    if mode == "alone":
        tensors = {key: artifact_tensors(path)["prompt"] for key, (_, path) in zip(keys, prompts)}
        out = {}
        for length in sorted({t.shape[0] for t in tensors.values()}):  # one batched pass per prompt length
            batch = [key for key in keys if tensors[key].shape[0] == length]
            activations = prompt_alone_activations(backbone, tokenizer, torch.stack([tensors[k] for k in batch]))
            out.update({key: activations[i].contiguous() for i, key in enumerate(batch)})
        return out
    if mode != "task" or data_root is None:
        raise ValueError("--mode task needs --data-root (the folder of the task data sets)")
    out = {}
    for key, (_, path) in zip(keys, prompts):
        meta = read_json(path / "meta.json")
        task = meta["tasks"][0]
        model = place(load_trained(path, backbone_dir, task=task, shared=(backbone, tokenizer))[0], compute)
        data = TaskSet.load([data_root / task]).encode(tokenizer, meta["train_language"], "validation",
                                                       meta["config"]["max_length"], family=family_of(backbone))
        data = data.head(examples)
        out[key] = task_input_activations(model, data, tokenizer.pad_token_id).contiguous()
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("prompt_activations", __doc__, threads=True)
    parser.add_argument("--backbone", required=True, type=Path)
    parser.add_argument("--prompts", nargs="+", required=True, metavar="NAME=PATH", help="prompt artifacts, every seed")
    parser.add_argument("--mode", choices=("alone", "task"), default=NeuronSettings.mode)
    parser.add_argument("--data-root", type=Path, default=None, help="--mode task: folder holding <task>/ data sets")
    parser.add_argument("--examples", type=int, default=NeuronSettings.examples, help="--mode task: validation examples to average over")
    parser.add_argument("--out", required=True, type=Path, help="safetensors file to write")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    start(args)
    activations = collect(args.backbone, named_paths(args.prompts, "--prompts"), args.mode, args.data_root, args.examples,
                          compute=choose_compute(args.device))
    with atomic_file(args.out, "wb") as handle:
        handle.write(save(activations, metadata={"mode": args.mode}))
    logger.info("activations of %d prompts (%s) -> %s", len(activations), args.mode, args.out)

