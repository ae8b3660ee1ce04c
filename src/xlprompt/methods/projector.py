"""Cross-model prompt transfer (Su et al. 2022): a projector maps a prompt of one backbone
into the input space of another.

``flatten(P_src) -> Linear(L * H_src, hidden) -> act -> Linear(hidden, L * H_tgt)``, with ``act``
LeakyReLU (default) or Tanh, and with ``output_norm`` a LayerNorm over each of the L target vectors
(width H_tgt) on the output, trained with the target backbone's task loss while the source prompt
and the target backbone stay frozen. The trained projector then maps other prompts of the source
backbone (for other tasks) into the target backbone, where they are used zero-shot or as
initialisation.

The authors' projectors (thunlp/Prompt-Transferability, Prompt-Transferability-1.0/tools/projector.py):
``AE_1_layer_mutiple_100`` is Linear(dim_0, dim_1) -> LeakyReLU -> Linear(dim_1, dim_2), the output
reshaped to (100, dim_2 / 100) and put through ``nn.LayerNorm(dim_2 / 100)`` (per token, torch's eps
1e-5, learned gain and bias); ``AE_1_layer_mutiple_100_paper`` is the same with Tanh. Their
tools/train_tool_cross.py (``train``) builds ``AE_1_layer_mutiple_100(dim_0=76800, dim_1=768,
dim_2=76800)`` between base-size models and ``AE_1_layer_mutiple_100_paper(dim_0=76800, dim_1=768,
dim_2=102400)`` from a base into a large model, with PyTorch's default Linear initialisation for
RoBERTa targets, as here. Xlprompt's default (no LayerNorm) is their Prompt-Transferability-2.0-latest
``CrossModelProjector`` (prompt_hub/cross_model.py: Linear(in, 768) -> LeakyReLU -> Linear(768, out)).

A projector artifact is also a prompt artifact of the target backbone (``prompt`` = the
projected training prompt), so ``evaluate`` and SPoT's ``--init source`` read it as they
read any other prompt; :func:`project_prompt` writes the same kind of artifact for another
source prompt.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from xlprompt.methods.artifacts import artifact_tensors, write_train_log
from xlprompt.methods.precision import NonFiniteStep, non_finite_message
from xlprompt.methods.training import batch_rows, train_step, trainable_state, validate
from xlprompt.models.backbone import load_backbone
from xlprompt.models.compute import CPU, Compute, linear_schedule, place
from xlprompt.models.families import family_of, input_width
from xlprompt.models.prompting import Prompt, PromptedLM
from xlprompt.models.tasks import TaskSet
from xlprompt.models.weights import weights_sha256
from xlprompt.runtime.io import atomic_dir, load_tensors, read_json, sha256_file, write_json
from xlprompt.runtime.logs import progress
from xlprompt.runtime.meta import run_metadata
from xlprompt.runtime.settings import TrainConfig

logger = logging.getLogger(__name__)

# The projector's non-linearity (ProjectorConfig.activation): LeakyReLU, or Tanh as the authors' "_paper" projector.
PROJECTOR_ACTIVATIONS = ("leaky_relu", "tanh")


@dataclass(frozen=True)
class ProjectorConfig:
    """Training of one projector (Su et al.: AdamW, lr 1e-3 for RoBERTa-base; their Prompt-Transferability-1.0
    tools/train_tool_cross.py trains with transformers.AdamW, lr 5e-3, eps 1e-6, no weight decay)."""

    hidden: int = 768  # the hidden width (the authors': 768, Prompt-Transferability-1.0 tools/train_tool_cross.py)
    # The non-linearity after the first layer: leaky_relu | tanh (PROJECTOR_ACTIVATIONS; the authors':
    # LeakyReLU in AE_1_layer_mutiple_100, Tanh in AE_1_layer_mutiple_100_paper, tools/projector.py)
    activation: str = "leaky_relu"
    # A LayerNorm over each projected token's vector (width of the target model) on the output, as the
    # authors' AE_1_layer_mutiple_100 and _paper end (false: the plain two-layer net of their 2.0 code)
    output_norm: bool = False
    steps: int = 200
    batch_size: int = 32
    lr: float = 1e-3
    warmup_ratio: float = 0.1
    eval_every: int = 50
    max_length: int = TrainConfig.max_length  # one default with prompt training (the config checks read it)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("hidden", "steps", "batch_size", "eval_every", "max_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"projector {name} must be >= 1, got {getattr(self, name)}")
        if self.activation not in PROJECTOR_ACTIVATIONS:
            raise ValueError(f"projector activation must be one of {PROJECTOR_ACTIVATIONS}, got {self.activation!r}")


class PromptProjector(nn.Module):
    """(L, H_src) -> (L, H_tgt) through one hidden layer over the flattened prompt; with ``output_norm``,
    a LayerNorm(H_tgt) over each output token (its weights ``norm.weight``, ``norm.bias``)."""

    def __init__(
        self,
        length: int,
        source_dim: int,
        target_dim: int,
        hidden: int = ProjectorConfig.hidden,
        activation: str = ProjectorConfig.activation,
        output_norm: bool = ProjectorConfig.output_norm,
    ) -> None:
        super().__init__()
        if activation not in PROJECTOR_ACTIVATIONS:
            raise ValueError(f"projector activation must be one of {PROJECTOR_ACTIVATIONS}, got {activation!r}")
        self.length, self.target_dim = length, target_dim
        act = nn.LeakyReLU() if activation == "leaky_relu" else nn.Tanh()
        self.net = nn.Sequential(nn.Linear(length * source_dim, hidden), act, nn.Linear(hidden, length * target_dim))
        self.norm = nn.LayerNorm(target_dim) if output_norm else None

    def forward(self, prompt: torch.Tensor) -> torch.Tensor:
        if prompt.shape[0] != self.length:
            raise ValueError(f"the projector maps prompts of length {self.length}, got {prompt.shape[0]}")
        projected = self.net(prompt.reshape(-1)).view(self.length, self.target_dim)  # (L, H_tgt)
        return self.norm(projected) if self.norm is not None else projected


class ProjectedPrompt(Prompt):
    """A frozen source prompt seen through a trainable projector (a prompt of the target model)."""

    source: torch.Tensor  # a buffer: the source prompt, (L, H_src)

    def __init__(self, source: torch.Tensor, projector: PromptProjector) -> None:
        super().__init__()
        self.register_buffer("source", source.detach().clone(), persistent=False)
        self.projector = projector
        self.reparam = None

    @property
    def length(self) -> int:
        return int(self.source.shape[0])

    def forward(self) -> torch.Tensor:  # (L, H_tgt)
        return self.projector(self.source)


def read_prompt(artifact: Path) -> tuple[torch.Tensor, dict]:
    """The effective prompt (L, d) and meta.json of a prompt artifact."""
    meta = read_json(artifact / "meta.json")
    prompt = artifact_tensors(artifact)["prompt"]
    if prompt.shape[0] == 0:
        raise ValueError(f"{artifact}: has no prompt to project (method {meta.get('method')})")
    return prompt, meta


def train_projector(
    source: Path, backbone_dir: Path, data: list[Path], cfg: ProjectorConfig, out: Path, compute: Compute = CPU
) -> dict:
    """Train a projector from ``source``'s backbone into ``backbone_dir`` on ``data``'s task(s).

    The source prompt must have been trained on the same task(s); the projector learns to
    make it work in the target backbone, with the target's task loss. Trains on ``compute``
    (the target backbone's forward and backward passes: xlprompt.models.compute); writes from the CPU.
    """
    started = time.time()
    torch.manual_seed(cfg.seed)
    source_prompt, source_meta = read_prompt(source)
    tasks = TaskSet.load(data)
    if source_meta["tasks"] != [space.task for space in tasks.labels]:
        raise ValueError(
            f"{source}: a prompt of {source_meta['tasks']}, but the projector trains on "
            f"{[space.task for space in tasks.labels]}: train it on the source prompt's own task(s)"
        )
    backbone, tokenizer = load_backbone(backbone_dir, compute.dtype)
    backbone.requires_grad_(False)
    target_dim = input_width(backbone)
    projector = PromptProjector(
        source_prompt.shape[0], source_prompt.shape[1], target_dim, cfg.hidden, cfg.activation, cfg.output_norm
    )
    family = family_of(backbone)
    model = PromptedLM(backbone, ProjectedPrompt(source_prompt, projector), tasks.verbalizer_ids(tokenizer, family))
    language = source_meta["train_language"]
    train_data = tasks.encode(tokenizer, language, "train", cfg.max_length, family=family)
    dev_data = tasks.encode(tokenizer, language, "validation", cfg.max_length, family=family)
    pad = tokenizer.pad_token_id
    place(model, compute)
    optimizer = compute.optimizer([{"params": list(projector.parameters()), "lr": cfg.lr}], weight_decay=0.0)
    best: dict[str, Any] = {"loss": math.inf, "step": 0, "state": trainable_state(model)}
    log_rows: list[dict[str, Any]] = []
    warmup = int(cfg.warmup_ratio * cfg.steps)
    bar = progress(range(cfg.steps), desc="train projector", unit="step", total=cfg.steps)
    for step in bar:
        model.train(False)  # the target backbone is frozen: no dropout noise
        batch = train_data.batch(batch_rows(len(train_data), cfg.batch_size, step, cfg.seed), pad)
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * linear_schedule(step, cfg.steps, warmup)
        done = step + 1
        try:
            loss = train_step(model, optimizer, batch)
        except NonFiniteStep as err:
            kept = "The projector keeps no checkpoint: its job starts over when rerun."
            raise NonFiniteStep(f"{out}: {non_finite_message(str(err), done, compute.dtype, kept)}") from None
        if done % cfg.eval_every == 0 or done == cfg.steps:
            best = validate(model, dev_data, pad, done, loss, log_rows, best, bar)
    model.load_state_dict(best["state"], strict=False)
    inputs = {
        "backbone": weights_sha256(backbone_dir),
        "source": sha256_file(source / "prompt.safetensors"),
        "source_backbone": source_meta["inputs_sha256"]["backbone"],
    }
    summary = {
        "best_step": best["step"],
        "best_dev_loss": round(best["loss"], 5),
        "steps": cfg.steps,
        "seconds": round(time.time() - started, 2),
    }
    meta = _prompt_meta(source_meta, asdict(cfg), cfg.seed, inputs, summary, str(source))
    with atomic_dir(out) as tmp:
        with torch.no_grad():
            projected = model.prompt_vectors().detach().cpu().contiguous()
        save_file({"prompt": projected}, tmp / "prompt.safetensors", metadata={"method": "projector"})
        save_file({k: v.cpu().contiguous() for k, v in projector.state_dict().items()}, tmp / "projector.safetensors")
        write_json(tmp / "meta.json", meta)
        write_train_log(tmp / "train_log.jsonl", log_rows)
    logger.info("projector: best dev loss %.4f at step %d (%.1fs)", best["loss"], best["step"], summary["seconds"])
    return summary


def _prompt_meta(source_meta: dict, config: dict, seed: int, inputs: dict, summary: dict, source: str) -> dict:
    """meta.json of a projected prompt: a prompt of the target model for the source's task(s)."""
    meta = run_metadata(
        {
            **config,
            "method": "projector",
            "prompt_length": source_meta["config"]["prompt_length"],
            "seed": seed,
            "train_language": source_meta["train_language"],
        },
        seed,
        inputs,
        summary,
    )
    meta.update({key: source_meta[key] for key in ("task", "tasks", "verbalizers", "label_names", "train_language")})
    if "verbalizer" in source_meta:
        meta["verbalizer"] = source_meta["verbalizer"]
    meta.update({"method": "projector", "source": source, "snapshot_step": 0})
    return meta


def project_prompt(projector_dir: Path, source: Path, backbone_dir: Path, out: Path) -> None:
    """Map another prompt of the projector's source backbone into its target backbone."""
    meta = read_json(projector_dir / "meta.json")
    prompt, source_meta = read_prompt(source)
    if source_meta["inputs_sha256"]["backbone"] != meta["inputs_sha256"]["source_backbone"]:
        raise ValueError(f"{source}: trained on another backbone than the one {projector_dir} projects from")
    if weights_sha256(backbone_dir) != meta["inputs_sha256"]["backbone"]:
        raise ValueError(f"{backbone_dir}: not the backbone {projector_dir} projects into")
    weights = load_tensors(projector_dir / "projector.safetensors")
    expected = weights["net.0.weight"].shape[1]  # L * H_src
    if prompt.numel() != expected:
        raise ValueError(
            f"{source}: a prompt of shape {tuple(prompt.shape)}; {projector_dir} projects prompts of "
            f"{expected} values (length x width)"
        )
    length, source_dim = prompt.shape
    projector = PromptProjector(
        length,
        source_dim,
        weights["net.2.weight"].shape[0] // length,
        weights["net.0.weight"].shape[0],
        # a projector trained before these settings existed: LeakyReLU, no output LayerNorm
        meta["config"].get("activation", "leaky_relu"),
        "norm.weight" in weights,
    )
    projector.load_state_dict(weights)
    with torch.no_grad():
        projected = projector(prompt).contiguous()
    inputs = {
        "backbone": meta["inputs_sha256"]["backbone"],
        "projector": sha256_file(projector_dir / "projector.safetensors"),
        "source": sha256_file(source / "prompt.safetensors"),
    }
    config = {
        key: value
        for key, value in meta["config"].items()
        if key not in ("method", "prompt_length", "seed", "train_language")
    }
    out_meta = _prompt_meta(
        source_meta, config, source_meta["config"]["seed"], inputs, {"projector": str(projector_dir)}, str(source)
    )
    with atomic_dir(out) as tmp:
        save_file({"prompt": projected}, tmp / "prompt.safetensors", metadata={"method": "projector"})
        write_json(tmp / "meta.json", out_meta)
