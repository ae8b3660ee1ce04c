"""Activated FFN neurons of trained prompts (Su et al. 2022): every prompt alone, or on its task's inputs."""

from __future__ import annotations

from pathlib import Path

import torch

from xlprompt.analysis.neurons import activation_key, prompt_alone_activations, task_input_activations
from xlprompt.data.encoding import run_encoding
from xlprompt.methods.artifacts import artifact_tensors, load_trained
from xlprompt.models.backbone import load_backbone
from xlprompt.models.compute import CPU, Compute, place
from xlprompt.models.families import family_of
from xlprompt.models.tasks import TaskSet
from xlprompt.runtime.io import read_json
from xlprompt.runtime.settings import NeuronSettings


def collect(
    backbone_dir: Path,
    prompts: list[tuple[str, Path]],
    mode: str = NeuronSettings.mode,
    data_root: Path | None = None,
    examples: int = NeuronSettings.examples,
    compute: Compute = CPU,
    layout: str = NeuronSettings.layout,
) -> dict[str, torch.Tensor]:
    """Activations (n_layers, ffn) of every prompt by its key, computed on ``compute``, returned on the CPU.

    ``layout`` (mode alone): how a prompt is laid out and where it is read, xlprompt or su2022
    (:func:`xlprompt.analysis.neurons.prompt_alone_activations`).
    """
    NeuronSettings(mode=mode, examples=examples, layout=layout)  # the same errors as a config's
    backbone, tokenizer = load_backbone(backbone_dir, compute.dtype)
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
            activations = prompt_alone_activations(
                backbone, tokenizer, torch.stack([tensors[k] for k in batch]), layout=layout
            )
            out.update({key: activations[i].contiguous() for i, key in enumerate(batch)})
        return out
    if mode != "task":
        raise ValueError(f"mode {mode!r}: alone or task")
    if data_root is None:
        raise ValueError("mode 'task' needs data_root (--data-root: the folder of the task data sets)")
    out = {}
    for key, (_, path) in zip(keys, prompts):
        meta = read_json(path / "meta.json")
        task = meta["tasks"][0]
        model = place(
            load_trained(path, backbone_dir, task=task, shared=(backbone, tokenizer), dtype=compute.dtype)[0], compute
        )
        family = family_of(backbone)
        length, special_tokens = run_encoding(meta["config"], family)
        data = TaskSet.load([data_root / task]).encode(
            tokenizer, meta["train_language"], "validation", length, family=family, special_tokens=special_tokens
        )
        data = data.head(examples)
        out[key] = task_input_activations(model, data, tokenizer.pad_token_id).contiguous()
    return out
