"""Training one soft prompt on one task, and loading a trained one back.

Methods (``TrainConfig.method``):
- ``spt``: frozen backbone; only the prompt (and its reparameterization) trains.
- ``full_ft``: the prompt and every backbone weight train (the SPT paper's baseline).
- ``ltp`` (or ``ltp-<ticket>``): from the original weights, the prompt and the entries of a
  winning ticket (``select_ticket``'s mask) train; every other weight stays bit-identical.
- ``untrained``: the initial prompt, never trained (a control).
- ``no_prompt``: no prompt at all, the backbone alone at the mask slot (a control).

The artifact (a folder) holds ``prompt.safetensors``, ``meta.json`` and ``train_log.jsonl``;
``full_ft`` adds ``backbone/`` (its weights changed), ``spt`` adds ``peft/``, an export that
``peft.PeftModel.from_pretrained`` loads. ``ltp`` stores only the ticket's entries in
``prompt.safetensors``: ``ticket.<param>.index`` (flat positions) and ``ticket.<param>.value``
(their trained values; values rather than deltas, so that the rebuilt model is bit-exact).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import AutoModelForMaskedLM, AutoTokenizer

from xlprompt.checkpoint import fingerprint, linear_schedule, load_checkpoint, save_checkpoint
from xlprompt.data import LabelSpace, load_labels, load_split, split_path
from xlprompt.encoding import EncodedSplit, encode_split
from xlprompt.io import atomic_dir, read_json, sha256_file, write_json
from xlprompt.logs import progress
from xlprompt.meta import run_metadata
from xlprompt.prompting import INITS, PromptedMaskedLM, SoftPrompt, init_prompt

logger = logging.getLogger(__name__)

METHODS = ("spt", "full_ft", "ltp", "untrained", "no_prompt")
FAMILY = "masked_lm"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines one trained prompt (the seed included)."""

    method: str = "spt"
    prompt_length: int = 16
    init: str = "vocab"  # uniform | vocab | label_words
    reparameterization: bool = False
    reparam_hidden: int = 200
    steps: int = 400
    batch_size: int = 32
    lr: float = 0.3  # prompt learning rate
    backbone_lr: float = 1e-4  # full_ft: learning rate of the backbone weights
    weight_decay: float = 0.0
    warmup_ratio: float = 0.1
    eval_every: int = 50  # validation loss every this many steps; the best prompt is kept
    checkpoint_every: int = 100
    train_language: str = "en"
    train_per_class: int = 0  # few-shot: this many training examples per class (0: all)
    max_length: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS and not self.method.startswith("ltp-"):
            raise ValueError(f"method must be one of {METHODS} (or ltp-<ticket>), got {self.method!r}")
        if self.init not in INITS:
            raise ValueError(f"prompt init must be one of {INITS}, got {self.init!r}")
        if self.method == "no_prompt" and self.prompt_length != 0:
            raise ValueError("method no_prompt takes prompt_length 0")
        if self.method != "no_prompt" and self.prompt_length < 1:
            raise ValueError(f"prompt_length must be >= 1 for method {self.method}, got {self.prompt_length}")
        for name in ("steps", "batch_size", "eval_every", "checkpoint_every", "max_length"):
            if getattr(self, name) < (0 if name == "steps" else 1):
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def is_ltp(self) -> bool:
        return self.method == "ltp" or self.method.startswith("ltp-")

    @property
    def trains(self) -> bool:
        return self.method in ("spt", "full_ft") or self.is_ltp

    @property
    def trains_backbone(self) -> bool:
        """Whether backbone weights change (then the backbone runs in train mode, dropout on)."""
        return self.method == "full_ft" or self.is_ltp


def load_backbone(path: str | Path) -> tuple[torch.nn.Module, object]:
    """A masked LM and its tokenizer from a Hugging Face folder (never remote code)."""
    path = Path(path)
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{path}: not a model folder (no config.json)")
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    model = AutoModelForMaskedLM.from_pretrained(path, trust_remote_code=False, attn_implementation="eager")
    return model, tokenizer


def verbalizer_ids(tokenizer, labels: LabelSpace, data_dir: Path) -> list[int]:
    ids = []
    for word in labels.verbalizer(FAMILY):
        pieces = tokenizer(word, add_special_tokens=False)["input_ids"]
        if len(pieces) != 1:
            raise ValueError(
                f"{data_dir / 'labels.json'}: verbalizer word {word!r} is {len(pieces)} tokens for this tokenizer; "
                "the masked-LM read-out needs single-token label words"
            )
        ids.append(pieces[0])
    return ids


def few_shot(frame: pd.DataFrame, per_class: int, seed: int) -> pd.DataFrame:
    """Stratified sample of ``per_class`` rows of every label (all rows of a smaller class)."""
    if per_class <= 0:
        return frame
    keep = [group.sample(n=min(per_class, len(group)), random_state=seed).index
            for _, group in frame.groupby("label", sort=True)]
    return frame.loc[sorted(index for part in keep for index in part)]


def batch_rows(n: int, batch_size: int, step: int, seed: int) -> torch.Tensor:
    """Rows of training batch ``step``: epochs of seeded permutations, a pure function of step."""
    start = step * batch_size
    rows = []
    while len(rows) < batch_size:
        epoch, offset = divmod(start + len(rows), n)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        rows.extend(perm[offset : offset + batch_size - len(rows)].tolist())
    return torch.tensor(rows)


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


@torch.no_grad()
def predict(model: PromptedMaskedLM, data: EncodedSplit, pad_id: int, batch_size: int = 128) -> tuple[list[int], float]:
    """Predicted label ids and mean cross-entropy over ``data``."""
    model.eval()
    preds, loss_sum = [], 0.0
    for start in range(0, len(data), batch_size):
        batch = data.batch(range(start, min(start + batch_size, len(data))), pad_id)
        logits = model(batch["input_ids"], batch["attention_mask"], batch["mask_index"])
        loss_sum += F.cross_entropy(logits, batch["labels"], reduction="sum").item()
        preds.extend(logits.argmax(dim=-1).tolist())
    return preds, loss_sum / len(data)


def build_prompted(backbone, tokenizer, cfg: TrainConfig, labels: LabelSpace, data_dir: Path) -> PromptedMaskedLM:
    label_ids = verbalizer_ids(tokenizer, labels, data_dir)
    prompt = None
    if cfg.prompt_length:
        dim = backbone.get_input_embeddings().weight.shape[1]
        prompt = SoftPrompt(cfg.prompt_length, dim, cfg.reparam_hidden if cfg.reparameterization else 0)
        generator = torch.Generator().manual_seed(cfg.seed)
        # The reparameterization MLP is initialised from the seed too, before the vectors.
        torch.manual_seed(cfg.seed)
        if prompt.reparam is not None:
            for layer in prompt.reparam:
                if hasattr(layer, "reset_parameters"):
                    layer.reset_parameters()
        special = set(tokenizer.all_special_ids)
        candidates = [i for i in range(len(tokenizer)) if i not in special]
        init_prompt(prompt, cfg.init, backbone.get_input_embeddings().weight.detach(), candidates, label_ids, generator)
    return PromptedMaskedLM(backbone, prompt, label_ids)


def load_ticket(path: Path | None, backbone: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The ticket's boolean masks, checked against the backbone's parameters."""
    if path is None:
        raise ValueError("method ltp needs a ticket (--ticket mask.safetensors from select_ticket)")
    masks = load_file(path)
    params = dict(backbone.named_parameters())
    for name, mask in masks.items():
        if name not in params or params[name].shape != mask.shape or mask.dtype != torch.bool:
            raise ValueError(f"{path}: mask {name!r} does not fit the backbone (a ticket of another model?)")
    return masks


def parameter_groups(model: PromptedMaskedLM, cfg: TrainConfig, masks: dict[str, torch.Tensor]) -> list[dict]:
    """Optimizer groups of what the method trains; everything else gets no gradient.

    Frozen means frozen: the backbone's ``requires_grad`` is off unless the method trains it
    (full_ft: all of it; ltp: the ticket's parameters, with gradients masked to the ticket).
    """
    model.backbone.requires_grad_(cfg.method == "full_ft")
    groups = []
    if model.prompt is not None:
        groups.append({"params": list(model.prompt.parameters()), "lr": cfg.lr, "base_lr": cfg.lr})
    if cfg.method == "full_ft":
        groups.append({"params": list(model.backbone.parameters()), "lr": cfg.backbone_lr, "base_lr": cfg.backbone_lr})
    if masks:
        groups.append({"params": ticket_parameters(model.backbone, masks), "lr": cfg.backbone_lr,
                       "base_lr": cfg.backbone_lr, "weight_decay": 0.0})
    return groups


def train_step(model: PromptedMaskedLM, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """One optimisation step on one batch; returns the (detached) loss."""
    logits = model(batch["input_ids"], batch["attention_mask"], batch["mask_index"])  # (B, n_labels)
    loss = F.cross_entropy(logits, batch["labels"])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


def train_prompt(backbone_dir: Path, data_dir: Path, cfg: TrainConfig, out: Path,
                 checkpoint_dir: Path | None = None, ticket: Path | None = None) -> dict:
    """Train (or, for the controls, just build) one prompt and write its artifact to ``out``."""
    started = time.time()
    torch.manual_seed(cfg.seed)
    labels = load_labels(data_dir)
    backbone, tokenizer = load_backbone(backbone_dir)
    model = build_prompted(backbone, tokenizer, cfg, labels, data_dir)
    train_frame = few_shot(load_split(data_dir, cfg.train_language, "train", len(labels.names)),
                           cfg.train_per_class, cfg.seed)
    dev_frame = load_split(data_dir, cfg.train_language, "validation", len(labels.names))
    train_data = encode_split(tokenizer, train_frame, cfg.max_length)
    dev_data = encode_split(tokenizer, dev_frame, cfg.max_length)
    pad = tokenizer.pad_token_id

    masks = load_ticket(ticket, backbone) if cfg.is_ltp else {}
    groups = parameter_groups(model, cfg, masks)
    steps = cfg.steps if cfg.trains else 0
    inputs = {"backbone": sha256_file(Path(backbone_dir) / "model.safetensors"),
              "labels.json": sha256_file(Path(data_dir) / "labels.json"),
              "train": sha256_file(split_path(data_dir, cfg.train_language, "train"))}
    if masks:
        inputs["ticket"] = sha256_file(ticket)
    stamp = fingerprint(asdict(cfg), inputs)
    log_rows: list[dict] = []
    best = {"loss": math.inf, "step": 0, "state": trainable_state(model)}
    start_step = 0
    optimizer = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay) if steps else None
    if optimizer is not None and checkpoint_dir is not None:
        restored = load_checkpoint(checkpoint_dir, optimizer, stamp)
        if restored is not None:
            tensors, plain = restored
            model.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("live.")}, strict=False)
            best = {"loss": plain["best_loss"], "step": plain["best_step"],
                    "state": {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}}
            start_step, log_rows = plain["step"], plain["log"]

    warmup = int(cfg.warmup_ratio * steps)
    bar = progress(range(start_step, steps), desc=f"train {cfg.method}", unit="step", initial=start_step, total=steps)
    for step in bar:
        # The backbone stays in eval mode unless it trains: no dropout noise in a frozen model.
        model.train(cfg.trains_backbone)
        batch = train_data.batch(batch_rows(len(train_data), cfg.batch_size, step, cfg.seed), pad)
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * linear_schedule(step, steps, warmup)
        loss = train_step(model, optimizer, batch)
        done = step + 1
        if done % cfg.eval_every == 0 or done == steps:
            preds, dev_loss = predict(model, dev_data, pad)
            dev_acc = sum(p == g for p, g in zip(preds, dev_data.labels)) / len(dev_data)
            log_rows.append({"step": done, "train_loss": round(loss.item(), 5), "dev_loss": round(dev_loss, 5),
                             "dev_accuracy": round(dev_acc, 5)})
            bar.set_postfix(dev_loss=f"{dev_loss:.3f}", dev_acc=f"{dev_acc:.3f}")
            if dev_loss < best["loss"]:
                best = {"loss": dev_loss, "step": done, "state": trainable_state(model)}
        if checkpoint_dir is not None and done % cfg.checkpoint_every == 0 and done < steps:
            tensors = {f"live.{k}": v for k, v in trainable_state(model).items()}
            tensors.update({f"best.{k}": v for k, v in best["state"].items()})
            save_checkpoint(checkpoint_dir, tensors, optimizer,
                            {"fingerprint": stamp, "step": done, "best_loss": best["loss"], "best_step": best["step"], "log": log_rows})
    model.load_state_dict(best["state"], strict=False)
    if not steps:
        _, dev_loss = predict(model, dev_data, pad)
        best["loss"] = dev_loss
        log_rows.append({"step": 0, "dev_loss": round(dev_loss, 5)})

    summary = {"best_step": best["step"], "best_dev_loss": round(best["loss"], 5), "steps": steps,
               "train_examples": len(train_data), "seconds": round(time.time() - started, 2),
               "full_checkpoint_bytes": (Path(backbone_dir) / "model.safetensors").stat().st_size}
    write_artifact(out, model, tokenizer, cfg, labels, log_rows, run_metadata(asdict(cfg), cfg.seed, inputs, summary),
                   masks)
    if masks:
        size = (out / "prompt.safetensors").stat().st_size
        logger.info("ltp artifact: %d bytes, %.1f%% of a full checkpoint (%d bytes)", size,
                    100 * size / summary["full_checkpoint_bytes"], summary["full_checkpoint_bytes"])
    if checkpoint_dir is not None and checkpoint_dir.exists():
        shutil.rmtree(checkpoint_dir)
    logger.info("%s: best dev loss %.4f at step %d (%.1fs)", cfg.method, best["loss"], best["step"], summary["seconds"])
    return summary


def ticket_parameters(backbone: torch.nn.Module, masks: dict[str, torch.Tensor]) -> list[torch.nn.Parameter]:
    """Make the ticket's parameters trainable, with gradients zeroed outside the ticket.

    With zero gradient and no weight decay (the ticket group has none), AdamW's update of an
    entry outside the ticket is exactly 0, so those entries stay bit-identical to theta_0.
    """
    params = dict(backbone.named_parameters())
    trainable = []
    for name, mask in masks.items():
        param = params[name]
        param.requires_grad_(True)
        keep = mask.to(param.dtype)
        param.register_hook(lambda grad, keep=keep: grad * keep)
        trainable.append(param)
    return trainable


def ticket_entries(backbone: torch.nn.Module, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The trained values at the ticket's positions: ``ticket.<name>.index`` / ``.value``."""
    params = dict(backbone.named_parameters())
    out = {}
    for name, mask in masks.items():
        index = torch.nonzero(mask.flatten()).flatten()
        out[f"ticket.{name}.index"] = index.to(torch.int32 if mask.numel() < 2**31 else torch.int64)
        out[f"ticket.{name}.value"] = params[name].detach().flatten()[index].contiguous()
    return out


def apply_ticket_entries(backbone: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    params = dict(backbone.named_parameters())
    with torch.no_grad():
        for key, index in tensors.items():
            if key.startswith("ticket.") and key.endswith(".index"):
                name = key[len("ticket."):-len(".index")]
                params[name].view(-1)[index.long()] = tensors[f"ticket.{name}.value"]


def write_artifact(out: Path, model: PromptedMaskedLM, tokenizer, cfg: TrainConfig, labels: LabelSpace,
                   log_rows: list[dict], meta: dict, masks: dict[str, torch.Tensor]) -> None:
    with atomic_dir(out) as tmp:
        tensors = {}
        if model.prompt is not None:
            with torch.no_grad():
                tensors["prompt"] = model.prompt().detach().contiguous()  # (L, d): what the backbone sees
            if model.prompt.reparam is not None:
                tensors["prompt_raw"] = model.prompt.embedding.detach().contiguous()
                tensors.update({f"reparam.{k}": v.contiguous() for k, v in model.prompt.reparam.state_dict().items()})
        else:
            tensors["prompt"] = torch.zeros(0, model.backbone.get_input_embeddings().weight.shape[1])
        tensors.update(ticket_entries(model.backbone, masks))
        save_file(tensors, tmp / "prompt.safetensors", metadata={"method": cfg.method})
        write_json(tmp / "meta.json", {**meta, "task": labels.task, "method": cfg.method,
                                       "verbalizer": labels.verbalizer(FAMILY),
                                       "artifact_bytes": (tmp / "prompt.safetensors").stat().st_size})
        with open(tmp / "train_log.jsonl", "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(row) + "\n" for row in log_rows)
        if cfg.method == "full_ft":
            model.backbone.save_pretrained(tmp / "backbone")
            tokenizer.save_pretrained(tmp / "backbone")
        if cfg.method == "spt" and not cfg.reparameterization:
            from xlprompt.peft_export import export_prompt_tuning

            export_prompt_tuning(tmp / "peft", tensors["prompt"], model.backbone)


def load_trained(artifact: Path, backbone_dir: Path, data_dir: Path) -> tuple[PromptedMaskedLM, object]:
    """Rebuild the prompted model of an artifact (full_ft brings its own backbone weights)."""
    meta = read_json(artifact / "meta.json")
    weights = artifact / "backbone" if (artifact / "backbone").exists() else backbone_dir
    backbone, tokenizer = load_backbone(weights)
    backbone.requires_grad_(False)
    labels = load_labels(data_dir)
    if labels.task != meta["task"]:
        raise ValueError(f"{artifact}: trained on task {meta['task']!r}, but {data_dir} holds task {labels.task!r}")
    tensors = load_file(artifact / "prompt.safetensors")
    apply_ticket_entries(backbone, tensors)
    prompt = None
    if tensors["prompt"].shape[0]:
        # The stored prompt is the effective one (reparameterization already applied).
        prompt = SoftPrompt(*tensors["prompt"].shape)
        prompt.embedding.data.copy_(tensors["prompt"])
    model = PromptedMaskedLM(backbone, prompt, verbalizer_ids(tokenizer, labels, data_dir))
    model.eval()
    return model, tokenizer
