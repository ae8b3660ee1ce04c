"""Training one soft prompt on one task, and loading a trained one back.

Methods (``TrainConfig.method``):
- ``spt``: frozen backbone; only the prompt (and its reparameterization) trains.
- ``full_ft``: the prompt and every backbone weight train (the SPT paper's baseline).
- ``ltp`` (or ``ltp-<ticket>``): from the original weights, the prompt and the entries of a
  winning ticket (``select_ticket``'s mask) train; every other weight stays bit-identical.
- ``lora``: the prompt and LoRA adapters (PEFT) on the backbone's target modules train
  (``cfg.lora``, :mod:`xlprompt.adapters`); every original weight stays bit-identical.
- ``bitfit``: the prompt and the backbone's bias terms train (``cfg.bitfit``); nothing else changes.
  lora and bitfit may also train without a prompt (``prompt_length`` 0).
- ``deep_prompt``: frozen backbone; key/value prefixes of ``prompt_length`` in every layer's (or
  ``cfg.deep_prompt.layers``') self-attention train, no input-level prompt (:mod:`xlprompt.deep_prompt`).
- ``untrained``: the initial prompt, never trained (a control).
- ``no_prompt``: no prompt at all, the backbone alone at the mask slot (a control).

A prompt trains on one task or on a mixture of tasks (:class:`xlprompt.tasks.TaskSet`), and
starts from an init of :data:`xlprompt.settings.INITS` or from another prompt (``init
source``: SPoT's transfer, :func:`train_prompt`'s ``source``). With ``snapshot_step`` the
artifact also keeps the prompt at that step (SPoT's task embedding), and always the prompt
it started from (``prompt_init``).

The artifact (a folder) holds ``prompt.safetensors``, ``meta.json`` and ``train_log.jsonl``;
``full_ft`` adds ``backbone/`` (its weights changed), ``spt`` adds ``peft/`` where PEFT's prompt
tuning reproduces the layout (``xlprompt.peft_export``; meta.json's ``peft_export`` says why not
elsewhere), an export that ``peft.PeftModel.from_pretrained`` loads and runs. ``ltp`` stores only the ticket's entries in
``prompt.safetensors``: ``ticket.<param>.index`` (flat positions) and ``ticket.<param>.value``
(their trained values; values rather than deltas, so that the rebuilt model is bit-exact).
``lora`` adds ``lora/``, PEFT's adapter files (``PeftModel.from_pretrained(backbone, lora/)``);
``bitfit`` stores the trained biases as ``bitfit.<param>`` in ``prompt.safetensors``. ``deep_prompt``
stores its prefixes (L, layers x 2 x width, after any reparameterization) as PEFT prefix tuning in
``prefix/`` where PEFT's forward reproduces them (meta.json's ``peft_export``), else as ``prefix`` in
``prompt.safetensors``; meta.json's ``deep_prompt`` says which layers and how. meta.json
records the bytes of what was trained (``artifact_bytes``, ``artifact_share`` of a full
checkpoint) and the number of trained parameters (``trainable_parameters``, ``trainable_share`` of
the backbone's ``backbone_parameters``).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import AutoConfig, AutoTokenizer

from xlprompt.adapters import (BITFIT_PREFIX, LORA_FOLDER, apply_bias_entries, attach_lora, backbone_parameter_count,
                               bias_entries, bias_names, load_lora, lora_parameters, save_lora)
from xlprompt.checkpoint import fingerprint, load_checkpoint, save_checkpoint
from xlprompt.compute import CPU, Compute, compute_of, linear_schedule, place, to_device
from xlprompt.deep_prompt import PREFIX_KEY, DeepPrompt, DeepPromptedLM
from xlprompt.encoding import EncodedSplit, restrict_to_choices
from xlprompt.io import atomic_dir, check_safetensors, load_tensors, read_json, sha256_file, write_json
from xlprompt.limits import check_positions
from xlprompt.logs import progress
from xlprompt.meta import run_metadata
from xlprompt.peft_export import (PREFIX_FOLDER, PeftPlan, export_prefix_tuning, export_prompt_tuning, plan_export,
                                  plan_prefix_export)
from xlprompt.prompting import PromptedLM, SoftPrompt, init_prompt, joint_label_scores, label_loss
from xlprompt.settings import DeepPromptSettings, TrainConfig
from xlprompt.families import auto_class, family_of
from xlprompt.tasks import TaskSet, word_ids

logger = logging.getLogger(__name__)

def load_backbone(path: str | Path) -> tuple[torch.nn.Module, object]:
    """A masked LM and its tokenizer from a Hugging Face folder (never remote code)."""
    path = Path(path)
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{path}: not a model folder (no config.json)")
    if not (path / "model.safetensors").exists():
        pickled = sorted(p.name for p in path.glob("*.bin")) + sorted(p.name for p in path.glob("*.pt*"))
        raise ValueError(f"{path}: no model.safetensors" + (f" (only {pickled})" if pickled else "") +
                         "; xlprompt loads weights from safetensors only (pickle files can run code when loaded). "
                         "Convert them once in a trusted environment: model.save_pretrained(folder)")
    check_safetensors(path / "model.safetensors")
    family = family_of(AutoConfig.from_pretrained(path, trust_remote_code=False))
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    model = auto_class(family).from_pretrained(path, trust_remote_code=False, use_safetensors=True,
                                               attn_implementation="eager")
    return model, tokenizer


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


def predict(model: PromptedLM, data: EncodedSplit, pad_id: int, batch_size: int = 0) -> tuple[list[int], float]:
    """Predicted label ids and mean cross-entropy over ``data``."""
    scores, loss = predict_scores(model, data, pad_id, batch_size)
    return scores.argmax(dim=-1).tolist(), loss


@torch.no_grad()
def predict_scores(model: PromptedLM, data: EncodedSplit, pad_id: int, batch_size: int = 0
                   ) -> tuple[torch.Tensor, float]:
    """Every row's label scores (N, n_labels; float32, on the CPU) and the mean cross-entropy."""
    model.eval()
    compute = compute_of(model)
    scores, loss_sum = None, 0.0
    for rows, batch in data.inference_batches(batch_size or compute.scoring_batch, pad_id):
        batch = to_device(batch, compute)
        with compute.autocast():
            logits = model.score_batch(batch)
        logits = restrict_to_choices(logits.float(), batch)
        loss_sum += label_loss(logits, batch["labels"], model.loss, reduction="sum").item()
        if scores is None:
            scores = torch.empty(len(data), logits.shape[-1])
        scores[rows] = logits.cpu()
    return scores, loss_sum / len(data)


def frequent_tokens(rows: list[list[int]], special: set[int], top_k: int) -> list[int]:
    """The ``top_k`` most frequent token ids of ``rows`` (ties: lower id first), special tokens left out:
    what ``init: vocab`` samples from (SPoT samples the 5,000 most common tokens)."""
    counts = Counter(token for row in rows for token in row if token not in special)
    return sorted(counts, key=lambda token: (-counts[token], token))[:top_k]


def build_prompted(backbone, tokenizer, cfg: TrainConfig, label_ids: list[list[int]],
                   source: dict[str, torch.Tensor] | None = None,
                   train_rows: list[list[int]] | None = None) -> PromptedLM:
    """The prompted model at step 0: prompt from ``cfg.init``, or copied from ``source``.

    ``train_rows``: the training text's token ids, whose ``cfg.vocab_top_k`` most frequent tokens
    ``init: vocab`` samples from (default: every non-special token of the vocabulary).
    deep_prompt: no input-level prompt; its prefixes (and their MLP) start from the seed, PEFT's init.
    """
    if cfg.method == "deep_prompt":
        torch.manual_seed(cfg.seed)
        return DeepPromptedLM(backbone, DeepPrompt(backbone, cfg.prompt_length, cfg.deep_prompt), label_ids, cfg.loss)
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
        if cfg.init == "source":
            copy_source_prompt(prompt, source)
        else:
            special = set(tokenizer.all_special_ids)
            candidates = (frequent_tokens(train_rows, special, cfg.vocab_top_k) if train_rows is not None
                          else [i for i in range(len(tokenizer)) if i not in special])
            label_tokens = [token for word in label_ids for token in ([word] if isinstance(word, int) else word)]
            init_prompt(prompt, cfg.init, backbone.get_input_embeddings(), candidates, label_tokens, generator)
    return PromptedLM(backbone, prompt, label_ids, cfg.position, cfg.loss)


def copy_source_prompt(prompt: SoftPrompt, source: dict[str, torch.Tensor] | None) -> None:
    """Start exactly where the source prompt ended (with its reparameterization, if any)."""
    if source is None:
        raise ValueError("init 'source' needs a source prompt (train_prompt's --source)")
    with torch.no_grad():
        if prompt.reparam is None:
            prompt.embedding.copy_(source["prompt"])
            return
        if "prompt_raw" not in source:
            raise ValueError("a reparameterised prompt can only start from a source trained with reparameterization")
        prompt.embedding.copy_(source["prompt_raw"])
        prompt.reparam.load_state_dict({k[len("reparam."):]: v for k, v in source.items() if k.startswith("reparam.")})


def load_source(path: Path, cfg: TrainConfig, backbone_sha: str, dim: int) -> dict[str, torch.Tensor]:
    """A trained prompt to transfer from, checked to fit: same backbone, same length."""
    meta = read_json(path / "meta.json")
    tensors = artifact_tensors(path, meta)
    if meta["inputs_sha256"]["backbone"] != backbone_sha:
        raise ValueError(f"{path}: the source prompt was trained on another backbone "
                         "(cross-model transfer needs a projector)")
    if tuple(tensors["prompt"].shape) != (cfg.prompt_length, dim):
        raise ValueError(f"{path}: source prompt is {tuple(tensors['prompt'].shape)} (length x width), "
                         f"the target prompt {(cfg.prompt_length, dim)}: transfer needs the same length")
    if ("prompt_raw" in tensors) != cfg.reparameterization or (
            cfg.reparameterization and tensors["prompt_raw"].shape != (cfg.prompt_length, dim)):
        raise ValueError(f"{path}: reparameterization of the source ({'prompt_raw' in tensors}) and of the "
                         f"target ({cfg.reparameterization}) differ")
    return tensors


def load_ticket(path: Path | None, backbone: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The ticket's boolean masks, checked against the backbone's parameters."""
    if path is None:
        raise ValueError("method ltp needs a ticket (--ticket mask.safetensors from select_ticket)")
    masks = load_tensors(path)
    params = dict(backbone.named_parameters())
    for name, mask in masks.items():
        if name not in params or params[name].shape != mask.shape or mask.dtype != torch.bool:
            raise ValueError(f"{path}: mask {name!r} does not fit the backbone (a ticket of another model?)")
    return masks


def parameter_groups(model: PromptedLM, cfg: TrainConfig, masks: dict[str, torch.Tensor]) -> list[dict]:
    """Optimizer groups of what the method trains; everything else gets no gradient.

    Frozen means frozen: the backbone's ``requires_grad`` is off unless the method trains it
    (full_ft: all of it; ltp: the ticket's parameters, with gradients masked to the ticket;
    lora: the LoRA matrices; bitfit: the bias terms). Every backbone group learns at ``backbone_lr``;
    the prompt, or deep_prompt's prefixes, at ``lr``.
    """
    model.backbone.requires_grad_(cfg.method == "full_ft")
    groups = []
    prompt = prompt_parameters(model)
    if prompt:
        groups.append({"params": prompt, "lr": cfg.lr, "base_lr": cfg.lr})
    trained = backbone_trained(model.backbone, cfg)
    for param in trained:
        param.requires_grad_(True)
    if trained:
        groups.append({"params": trained, "lr": cfg.backbone_lr, "base_lr": cfg.backbone_lr})
    if masks:
        groups.append({"params": ticket_parameters(model.backbone, masks), "lr": cfg.backbone_lr,
                       "base_lr": cfg.backbone_lr, "weight_decay": 0.0})
    return groups


def prompt_parameters(model: PromptedLM) -> list[torch.nn.Parameter]:
    """What trains besides backbone weights: the prompt (with its reparameterization), or deep_prompt's prefixes."""
    if isinstance(model, DeepPromptedLM):
        return list(model.deep.parameters())
    return list(model.prompt.parameters()) if model.prompt is not None else []


def backbone_trained(backbone: torch.nn.Module, cfg: TrainConfig) -> list[torch.nn.Parameter]:
    """The backbone parameters that full_ft, lora and bitfit train whole (ltp's ticket: :func:`ticket_parameters`)."""
    if cfg.method == "full_ft":
        return list(backbone.parameters())
    if cfg.method == "lora":
        return lora_parameters(backbone)
    if cfg.method == "bitfit":
        params = dict(backbone.named_parameters())
        return [params[name] for name in bias_names(backbone, cfg.bitfit)]
    return []


def trainable_parameter_count(model: PromptedLM, cfg: TrainConfig, masks: dict[str, torch.Tensor]) -> int:
    """How many numbers the method trains: the prompt's or deep_prompt's prefixes (reparameterization included)
    and the backbone's (ltp: the ticket's entries only); 0 for the untrained controls."""
    if not cfg.trains:
        return 0
    prompt = sum(p.numel() for p in prompt_parameters(model))
    ticket = sum(int(mask.sum()) for mask in masks.values())
    return prompt + ticket + sum(p.numel() for p in backbone_trained(model.backbone, cfg))


def train_step(model: PromptedLM, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """One optimisation step on one batch (on the model's device, bf16 autocast on a GPU); returns the loss."""
    compute = compute_of(model)
    batch = to_device(batch, compute)
    with compute.autocast():
        logits = model.score_batch(batch)  # (B, n_labels)
    loss = label_loss(restrict_to_choices(logits.float(), batch), batch["labels"], model.loss)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


def joint_train_step(models: list[PromptedLM], optimizers: list[torch.optim.Optimizer],
                     batches: list[dict[str, torch.Tensor]], pad_id: int) -> list[torch.Tensor]:
    """One step of several prompts on one frozen backbone, each on its own batch; returns each one's loss.

    One backbone pass over all rows (:func:`xlprompt.prompting.joint_label_scores`); the sum of
    the mean losses gives each prompt the gradient of its own loss alone.
    """
    compute = compute_of(models[0])
    batches = [to_device(batch, compute) for batch in batches]
    with compute.autocast():
        scores = joint_label_scores(models, batches, pad_id)
    losses = [label_loss(restrict_to_choices(score.float(), batch), batch["labels"], model.loss)
              for model, score, batch in zip(models, scores, batches)]
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=True)
    torch.stack(losses).sum().backward()
    for optimizer in optimizers:
        optimizer.step()
    return [loss.detach() for loss in losses]


@dataclass(frozen=True)
class PromptRun:
    """One prompt to train (:func:`train_prompt`'s arguments); several runs on one frozen backbone
    train together in one job (:func:`train_prompts`).

    ``data``: one data set folder, or several (a multi-task prompt); ``source``: the trained
    prompt to start from (``cfg.init == "source"``); ``ticket``: ltp's mask.safetensors;
    ``name``: the method's name in tables (a config variant's; default ``cfg.method``).
    """

    data: Path | tuple[Path, ...]
    cfg: TrainConfig
    out: Path
    checkpoint_dir: Path | None = None
    ticket: Path | None = None
    source: Path | None = None
    name: str | None = None


@dataclass
class _Training:
    """One run's state while it trains: its prompted model, data, optimizer, best state so far."""

    run: PromptRun
    tasks: TaskSet
    model: PromptedLM
    words: list
    train_data: EncodedSplit
    dev_data: EncodedSplit
    masks: dict[str, torch.Tensor]
    optimizer: torch.optim.Optimizer | None
    inputs: dict[str, str]
    stamp: str
    steps: int
    adapter: object = None  # lora: PEFT's wrapper of the backbone, which saves the adapter
    start_step: int = 0
    snapshots: dict[str, torch.Tensor] = field(default_factory=dict)
    log_rows: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=dict)
    seconds: float = 0.0  # this run's own steps and validations in this process (a joint step: its share)

    @property
    def cfg(self) -> TrainConfig:
        return self.run.cfg

    def active(self, step: int) -> bool:
        return self.start_step <= step < self.steps


def train_prompt(backbone_dir: Path, data: Path | list[Path], cfg: TrainConfig, out: Path,
                 checkpoint_dir: Path | None = None, ticket: Path | None = None,
                 source: Path | None = None, compute: Compute = CPU, name: str | None = None) -> dict:
    """Train (or, for the controls, just build) one prompt and write its artifact to ``out``.

    Arguments as :class:`PromptRun`'s; ``compute``: where (xlprompt.compute).
    """
    data = Path(data) if isinstance(data, (str, Path)) else tuple(Path(d) for d in data)
    return train_prompts(backbone_dir, [PromptRun(data, cfg, Path(out), checkpoint_dir, ticket, source, name)],
                         compute)[0]


def check_together(runs: list[PromptRun]) -> None:
    """Runs can train in one job when the backbone stays frozen for all, their prompts are input-level
    prompts (not deep_prompt's prefixes) and have one length (xlprompt.settings.trains_alone)."""
    if len(runs) < 2:
        return
    alone = sorted({run.cfg.method for run in runs if run.cfg.trains_alone})
    if alone:
        raise ValueError(f"methods {alone} change backbone weights or put prefixes into its layers: each trains in a "
                         "job of its own (only frozen-backbone input-level prompts train together)")
    lengths = sorted({run.cfg.prompt_length for run in runs})
    if len(lengths) > 1:
        raise ValueError(f"prompts trained together need one prompt length, got {lengths}")
    outs = [run.out for run in runs]
    if len(set(outs)) < len(outs):
        raise ValueError("two runs of one job write the same artifact folder")


def train_prompts(backbone_dir: Path, runs: list[PromptRun], compute: Compute = CPU,
                  stack: bool | None = None) -> list[dict]:
    """Train several prompts on one frozen backbone together; write each one's artifact.

    With ``stack``, every step stacks each active prompt's own batch (its task, data order, init,
    learning rate, label words) into one backbone pass (:func:`joint_train_step`); the loss is the
    sum of the prompts' own mean losses, so each prompt gets exactly the gradient it would get
    alone (rows do not interact in a frozen backbone in eval mode), up to float rounding. Without
    it, the prompts step one after another, bit-identical to one job per prompt. Default: stack
    on a GPU, where a small batch leaves the device idle; not on a CPU, where stacking saves no
    arithmetic (benchmarks/bench_joint.py) and rounding differences would grow over long runs.
    Either way the job shares one process, backbone load and tokenisation. Optimizer, schedule,
    validation, best step, snapshots, checkpoints and the artifact stay each prompt's own.
    A single run (any method) is :func:`train_prompt`.
    """
    check_together(runs)
    started = time.time()
    backbone, tokenizer = load_backbone(backbone_dir)
    check_positions(backbone, max(run.cfg.max_length for run in runs), runs[0].cfg.prompt_length)
    backbone_sha = sha256_file(Path(backbone_dir) / "model.safetensors")
    states = [_prepare(run, backbone, tokenizer, backbone_sha, compute) for run in runs]
    _train(states, tokenizer.pad_token_id, compute.device.type == "cuda" if stack is None else stack)
    seconds = round(time.time() - started, 2)
    return [_finish(state, tokenizer, backbone_dir, seconds, len(runs)) for state in states]


def _prepare(run: PromptRun, backbone, tokenizer, backbone_sha: str, compute: Compute) -> _Training:
    """Data, prompted model, optimizer (and checkpoint, if one is there) of one run."""
    cfg = run.cfg
    torch.manual_seed(cfg.seed)
    if (run.source is not None) != (cfg.init == "source"):
        raise ValueError("a source prompt goes with init 'source', and init 'source' needs a source prompt")
    tasks = TaskSet.load([run.data] if isinstance(run.data, (str, Path)) else list(run.data))
    dim = backbone.get_input_embeddings().weight.shape[1]
    source_tensors = load_source(Path(run.source), cfg, backbone_sha, dim) if run.source is not None else None
    family = family_of(backbone)
    # The label words of the training language (its own where labels.json gives them, else English).
    words = tasks.verbalizer_ids(tokenizer, family, cfg.train_language)
    train_data = tasks.encode(tokenizer, cfg.train_language, "train", cfg.max_length, cfg.train_per_class, cfg.seed,
                              family=family)
    # True few-shot model selection (Perez et al. 2021): a validation sample as small as the training set.
    dev_per_class = cfg.train_per_class if cfg.selection != "full_validation" else 0
    dev_data = tasks.encode(tokenizer, cfg.train_language, "validation", cfg.max_length, dev_per_class, cfg.seed,
                            family=family)
    model = build_prompted(backbone, tokenizer, cfg, words, source_tensors, train_data.input_ids)
    # LoRA's A draws from the seeded generator, after the prompt (B starts at zero: the backbone as it is).
    adapter = attach_lora(backbone, cfg.lora) if cfg.method == "lora" else None
    masks = load_ticket(run.ticket, backbone) if cfg.is_ltp else {}
    place(model, compute)
    masks = {name: mask.to(compute.device) for name, mask in masks.items()}
    groups = parameter_groups(model, cfg, masks)
    steps = cfg.steps if cfg.trains else 0
    inputs = {"backbone": backbone_sha}
    for data_dir, train_file in zip(tasks.data_dirs, tasks.split_files(cfg.train_language, "train")):
        prefix = f"{data_dir.name}/" if len(tasks.data_dirs) > 1 else ""
        inputs[f"{prefix}labels.json"] = sha256_file(data_dir / "labels.json")
        inputs[f"{prefix}train"] = sha256_file(train_file)
    for data_dir, dev_file in zip(tasks.data_dirs, tasks.split_files(cfg.train_language, "validation")):
        inputs[f"{data_dir.name}/validation" if len(tasks.data_dirs) > 1 else "validation"] = sha256_file(dev_file)
    if masks:
        inputs["ticket"] = sha256_file(run.ticket)
    if run.source is not None:
        inputs["source"] = sha256_file(Path(run.source) / "prompt.safetensors")
    state = _Training(run, tasks, model, words, train_data, dev_data, masks,
                      compute.optimizer(groups, cfg.weight_decay) if steps else None, inputs,
                      fingerprint(asdict(cfg), inputs), steps, adapter)
    if model.prompt is not None:
        with torch.no_grad():
            state.snapshots["prompt_init"] = model.prompt().detach().clone()  # (L, d): where training starts
    state.best = {"loss": math.inf, "step": 0, "state": trainable_state(model)}
    if state.optimizer is not None and run.checkpoint_dir is not None:
        restored = load_checkpoint(run.checkpoint_dir, state.optimizer, state.stamp)
        if restored is not None:
            tensors, plain = restored
            model.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("live.")}, strict=False)
            state.best = {"loss": plain["best_loss"], "step": plain["best_step"],
                          "state": {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}}
            state.snapshots.update({k[len("snapshot."):]: v for k, v in tensors.items() if k.startswith("snapshot.")})
            state.start_step, state.log_rows = plain["step"], plain["log"]
    return state


def _train(states: list[_Training], pad: int, stack: bool) -> None:
    """The training loop of one or several runs: each step, every run whose steps are not done
    (in one backbone pass with ``stack``, else one after another)."""
    total = max(state.steps for state in states)
    first = min((state.start_step for state in states if state.steps), default=0)
    desc = f"train {states[0].cfg.method}" if len(states) == 1 else f"train {len(states)} prompts"
    bar = progress(range(first, total), desc=desc, unit="step", initial=first, total=total)
    for step in bar:
        active = [state for state in states if state.active(step)]
        batches = []
        for state in active:
            cfg = state.cfg
            # The backbone stays in eval mode unless it trains: no dropout noise in a frozen model.
            state.model.train(cfg.trains_backbone)
            batches.append(state.train_data.batch(batch_rows(len(state.train_data), cfg.batch_size, step, cfg.seed), pad))
            for group in state.optimizer.param_groups:
                group["lr"] = group["base_lr"] * linear_schedule(step, state.steps, int(cfg.warmup_ratio * state.steps))
        if stack and len(active) > 1:
            started = time.perf_counter()
            losses = joint_train_step([s.model for s in active], [s.optimizer for s in active], batches, pad)
            for state in active:
                state.seconds += (time.perf_counter() - started) / len(active)
        else:
            losses = []
            for state, batch in zip(active, batches):
                started = time.perf_counter()
                losses.append(train_step(state.model, state.optimizer, batch))
                state.seconds += time.perf_counter() - started
        for state, loss in zip(active, losses):
            started = time.perf_counter()
            _after_step(state, step + 1, loss, pad, bar)
            state.seconds += time.perf_counter() - started


def _after_step(state: _Training, done: int, loss: torch.Tensor, pad: int, bar) -> None:
    """Snapshot, validation and checkpoint of one run after its step ``done``."""
    cfg, model = state.cfg, state.model
    if done == cfg.snapshot_step and model.prompt is not None:
        with torch.no_grad():
            state.snapshots["prompt_snapshot"] = model.prompt().detach().clone()
    if done % cfg.eval_every == 0 or done == state.steps:
        state.best = validate(model, state.dev_data, pad, done, loss, state.log_rows, state.best, bar,
                              cfg.selection == "last_step")
    if state.run.checkpoint_dir is not None and done % cfg.checkpoint_every == 0 and done < state.steps:
        tensors = {f"live.{k}": v for k, v in trainable_state(model).items()}
        tensors.update({f"best.{k}": v for k, v in state.best["state"].items()})
        tensors.update({f"snapshot.{k}": v for k, v in state.snapshots.items()})
        save_checkpoint(state.run.checkpoint_dir, tensors, state.optimizer,
                        {"fingerprint": state.stamp, "step": done, "best_loss": state.best["loss"],
                         "best_step": state.best["step"], "log": state.log_rows})


def _finish(state: _Training, tokenizer, backbone_dir: Path, seconds: float, together: int) -> dict:
    """Keep the best state and write the run's artifact; return its summary."""
    run, cfg, model, best = state.run, state.cfg, state.model, state.best
    pad = tokenizer.pad_token_id
    model.load_state_dict(best["state"], strict=False)
    if not state.steps:
        dev_loss, _ = evaluate_split(model, state.dev_data, pad)
        best["loss"] = dev_loss
        state.log_rows.append({"step": 0, "dev_loss": round(dev_loss, 5)})
    # seconds: the job's, for all ``together`` prompts it trained; train_seconds: this run's own
    # steps and validations (a stacked step's time shared equally), since the job started.
    summary = {"best_step": best["step"], "best_dev_loss": round(best["loss"], 5), "steps": state.steps,
               "train_examples": len(state.train_data), "validation_examples": len(state.dev_data),
               "seconds": seconds, "train_seconds": round(state.seconds, 2), "trained_together": together,
               "full_checkpoint_bytes": (Path(backbone_dir) / "model.safetensors").stat().st_size}
    # What the method trains, against the backbone's own size (LoRA's matrices left out of it).
    summary["backbone_parameters"] = backbone_parameter_count(model.backbone)
    summary["trainable_parameters"] = trainable_parameter_count(model, cfg, state.masks)
    summary["trainable_share"] = summary["trainable_parameters"] / summary["backbone_parameters"]
    tasks, family = state.tasks, family_of(model.backbone)
    meta = run_metadata(asdict(cfg), cfg.seed, state.inputs, summary)
    meta.update({"task": tasks.name, "tasks": [space.task for space in tasks.labels], "method": cfg.method,
                 "method_name": run.name or cfg.method,
                 "verbalizers": tasks.verbalizers(family, cfg.train_language), "label_names": tasks.label_names(),
                 "family": family, "prompt_position": model.position,
                 "train_language": cfg.train_language, "source": str(run.source) if run.source is not None else "none",
                 # The examples model selection saw (few-shot: as many per class as training had).
                 "validation": {"selection": cfg.selection, "ids": state.dev_data.ids}})
    if len(tasks.labels) == 1:
        meta["verbalizer"] = tasks.labels[0].verbalizer(family, cfg.train_language)
    train_types = state.train_data.token_type_ids
    typed_pairs = train_types is not None and any(any(row) for row in train_types)
    if isinstance(model, DeepPromptedLM):
        peft_plan = plan_prefix_export(family, model.deep.every_layer, typed_pairs)
        meta["peft_export"] = {**peft_plan.as_meta(), "format": "prefix tuning",
                               **({"folder": PREFIX_FOLDER} if peft_plan.exported else {})}
        meta["deep_prompt"] = deep_prompt_meta(model.deep, peft_plan)
    else:
        peft_plan = plan_export(cfg.method, family, model.position, typed_pairs)
        meta["peft_export"] = peft_plan.as_meta()
    write_artifact(run.out, model, tokenizer, cfg, state.log_rows, meta, state.masks, state.snapshots, peft_plan,
                   state.words, state.adapter)
    if cfg.trains_alone:
        written = read_json(run.out / "meta.json")
        logger.info("%s artifact: %d bytes, %.2f%% of a full checkpoint (%d bytes); %d trained parameters, "
                    "%.2f%% of the backbone's", cfg.method, written["artifact_bytes"], 100 * written["artifact_share"],
                    summary["full_checkpoint_bytes"], summary["trainable_parameters"],
                    100 * summary["trainable_share"])
    if run.checkpoint_dir is not None and run.checkpoint_dir.exists():
        shutil.rmtree(run.checkpoint_dir)
    logger.info("%s %s: best dev loss %.4f at step %d", run.name or cfg.method, run.out, best["loss"], best["step"])
    return summary


def deep_prompt_meta(deep: DeepPrompt, plan: PeftPlan) -> dict:
    """meta.json's account of a deep prompt's prefixes: where they go, their shape, where they are kept."""
    where = (f"{PREFIX_FOLDER}/adapter_model.safetensors (PEFT prefix tuning, prompt_embeddings)" if plan.exported
             else f"prompt.safetensors ({PREFIX_KEY})")
    return {"layers": deep.layers, "prefix_length": deep.length, "heads": deep.heads, "head_dim": deep.head_dim,
            "stored": where, "layout": "(L, layers x 2 x heads x head_dim): for the j-th prefixed layer, block 2j "
                                       "holds its keys, 2j + 1 its values (PEFT's prefix tuning layout)",
            "reparameterization": ("trained through PEFT's MLP; the stored prefixes are its output, so predicting "
                                   "needs no MLP" if deep.encoder.prefix_projection else "none")}


def evaluate_split(model: PromptedLM, data: EncodedSplit, pad_id: int) -> tuple[float, float]:
    """Mean loss and accuracy over ``data``."""
    preds, loss = predict(model, data, pad_id)
    return loss, sum(p == g for p, g in zip(preds, data.labels)) / len(data)


def validate(model: PromptedLM, dev_data: EncodedSplit, pad_id: int, step: int, train_loss: torch.Tensor,
             log_rows: list[dict], best: dict, bar, keep_last: bool = False) -> dict:
    """Validation at ``step``: log it (``log_rows``, the progress bar) and return the best so far.

    ``best`` = {"loss", "step", "state"}: the trainable state with the lowest validation loss, or
    with ``keep_last`` (selection ``last_step``) the state at this step, whatever its loss.
    """
    dev_loss, dev_acc = evaluate_split(model, dev_data, pad_id)
    log_rows.append({"step": step, "train_loss": round(train_loss.item(), 5), "dev_loss": round(dev_loss, 5),
                     "dev_accuracy": round(dev_acc, 5)})
    bar.set_postfix(dev_loss=f"{dev_loss:.3f}", dev_acc=f"{dev_acc:.3f}")
    if keep_last or dev_loss < best["loss"]:
        return {"loss": dev_loss, "step": step, "state": trainable_state(model)}
    return best


def write_train_log(path: Path, log_rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in log_rows)


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
        out[f"ticket.{name}.index"] = index.cpu().to(torch.int32 if mask.numel() < 2**31 else torch.int64)
        out[f"ticket.{name}.value"] = params[name].detach().flatten()[index].cpu().contiguous()
    return out


def apply_ticket_entries(backbone: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    params = dict(backbone.named_parameters())
    with torch.no_grad():
        for key, index in tensors.items():
            if key.startswith("ticket.") and key.endswith(".index"):
                name = key[len("ticket."):-len(".index")]
                params[name].view(-1)[index.long()] = tensors[f"ticket.{name}.value"]


def write_artifact(out: Path, model: PromptedLM, tokenizer, cfg: TrainConfig, log_rows: list[dict],
                   meta: dict, masks: dict[str, torch.Tensor], snapshots: dict[str, torch.Tensor],
                   peft_plan: PeftPlan, verbalizer_ids: list[list[int]], adapter=None) -> None:
    """The artifact folder; ``adapter``: lora's PEFT wrapper (its adapter goes to ``lora/``)."""
    with atomic_dir(out) as tmp:
        tensors = {}
        if model.prompt is not None:
            with torch.no_grad():
                tensors["prompt"] = model.prompt().detach().cpu().contiguous()  # (L, d): what the backbone sees
            if model.prompt.reparam is not None:
                tensors["prompt_raw"] = model.prompt.embedding.detach().cpu().contiguous()
                tensors.update({f"reparam.{k}": v.cpu().contiguous() for k, v in model.prompt.reparam.state_dict().items()})
            tensors.update({k: v.cpu().contiguous() for k, v in snapshots.items()})
        else:
            tensors["prompt"] = torch.zeros(0, model.backbone.get_input_embeddings().weight.shape[1])
        tensors.update(ticket_entries(model.backbone, masks))
        if cfg.method == "bitfit":
            tensors.update(bias_entries(model.backbone, bias_names(model.backbone, cfg.bitfit)))
        prefixes = None
        if isinstance(model, DeepPromptedLM):
            with torch.no_grad():
                prefixes = model.deep.prefixes().detach().cpu().contiguous()  # (L, layers x 2 x w): what layers read
            if not peft_plan.exported:
                tensors[PREFIX_KEY] = prefixes
        save_file(tensors, tmp / "prompt.safetensors", metadata={"method": cfg.method})
        files = ["prompt.safetensors"]  # what training produced (the tokenizer's copy in backbone/ aside)
        if prefixes is not None and peft_plan.exported:
            export_prefix_tuning(tmp / PREFIX_FOLDER, prefixes, model.backbone, peft_plan, len(model.deep.layers),
                                 model.deep.heads, meta["verbalizers"], verbalizer_ids)
            files += [f"{PREFIX_FOLDER}/adapter_config.json", f"{PREFIX_FOLDER}/adapter_model.safetensors"]
        if adapter is not None:
            save_lora(adapter, tmp / LORA_FOLDER)
            files += [f"{LORA_FOLDER}/adapter_config.json", f"{LORA_FOLDER}/adapter_model.safetensors"]
        if cfg.method == "full_ft":
            model.backbone.save_pretrained(tmp / "backbone")
            tokenizer.save_pretrained(tmp / "backbone")
            files.append("backbone/model.safetensors")
        size = sum((tmp / name).stat().st_size for name in files)
        write_json(tmp / "meta.json", {**meta, "snapshot_step": cfg.snapshot_step if "prompt_snapshot" in snapshots else 0,
                                       "artifact_bytes": size, "artifact_share": size / meta["full_checkpoint_bytes"],
                                       "files_sha256": {name: sha256_file(tmp / name) for name in files}})
        write_train_log(tmp / "train_log.jsonl", log_rows)
        if peft_plan.exported and model.prompt is not None:
            export_prompt_tuning(tmp / "peft", tensors["prompt"], model.backbone, peft_plan, meta["verbalizers"],
                                 verbalizer_ids)


def artifact_tensors(artifact: Path, meta: dict | None = None) -> dict[str, torch.Tensor]:
    """An artifact's ``prompt.safetensors``, checked against the sha256 its meta.json recorded."""
    meta = meta if meta is not None else read_json(Path(artifact) / "meta.json")
    expected = meta.get("files_sha256", {}).get("prompt.safetensors")
    return load_tensors(Path(artifact) / "prompt.safetensors", expected)


def load_trained(artifact: Path, backbone_dir: Path, task: str | None = None,
                 shared: tuple[torch.nn.Module, object] | None = None) -> tuple[PromptedLM, object]:
    """Rebuild the prompted model of an artifact, reading labels through ``task``'s words.

    ``task`` defaults to the artifact's only task (a multi-task prompt needs it named).
    ``shared``: an already loaded (backbone, tokenizer) of ``backbone_dir`` to reuse, for
    artifacts that leave the backbone as it is (full_ft, ltp, lora and bitfit bring their own weights).
    """
    meta = read_json(artifact / "meta.json")
    tasks = meta.get("tasks", [meta["task"]])
    task = task or (tasks[0] if len(tasks) == 1 else None)
    if task not in tasks:
        raise ValueError(f"{artifact}: trained on {tasks}; name one of them to read its labels (got {task!r})")
    tensors = artifact_tensors(artifact, meta)
    if meta["method"] == "deep_prompt":
        return load_deep_prompt(artifact, backbone_dir, meta, tensors, task, shared)
    lora = artifact / LORA_FOLDER
    own_weights = ((artifact / "backbone").exists() or lora.exists()
                   or any(k.startswith(("ticket.", BITFIT_PREFIX)) for k in tensors))
    if shared is not None and not own_weights:
        backbone, tokenizer = shared
    else:
        backbone, tokenizer = load_backbone(artifact / "backbone" if (artifact / "backbone").exists() else backbone_dir)
    backbone.requires_grad_(False)
    apply_ticket_entries(backbone, tensors)
    apply_bias_entries(backbone, tensors)
    if lora.exists():
        check_recorded(artifact, meta, LORA_FOLDER)
        check_safetensors(lora / "adapter_model.safetensors")
        backbone = load_lora(backbone, lora)
    prompt = None
    if tensors["prompt"].shape[0]:
        # The stored prompt is the effective one (reparameterization already applied).
        prompt = SoftPrompt(*tensors["prompt"].shape)
        prompt.embedding.data.copy_(tensors["prompt"])
    model = PromptedLM(backbone, prompt, word_ids(tokenizer, meta["verbalizers"][task], artifact / "meta.json",
                                                  family_of(backbone)), meta.get("prompt_position", ""),
                       meta["config"].get("loss", "label_words"))
    model.eval()
    return model, tokenizer


def check_recorded(artifact: Path, meta: dict, folder: str) -> None:
    """The files of ``folder`` in the artifact have the sha256 meta.json recorded for them."""
    for name, expected in meta.get("files_sha256", {}).items():
        if name.startswith(f"{folder}/") and sha256_file(artifact / name) != expected:
            raise ValueError(f"{artifact / name}: its sha256 differs from the one recorded when it was written "
                             "(the file was changed or damaged); rerun the job that writes it")


def load_deep_prompt(artifact: Path, backbone_dir: Path, meta: dict, tensors: dict[str, torch.Tensor], task: str,
                     shared: tuple[torch.nn.Module, object] | None) -> tuple[DeepPromptedLM, object]:
    """A deep prompt's model: the backbone as it is (``shared`` when given: the prefixes enter only inside the
    model's own forward) and the stored prefixes, from PEFT's file or from prompt.safetensors."""
    backbone, tokenizer = shared if shared is not None else load_backbone(backbone_dir)
    backbone.requires_grad_(False)
    if PREFIX_KEY in tensors:
        stored = tensors[PREFIX_KEY]
    else:
        check_recorded(artifact, meta, PREFIX_FOLDER)
        stored = load_tensors(artifact / PREFIX_FOLDER / "adapter_model.safetensors")["prompt_embeddings"]
    settings = DeepPromptSettings(**{**meta["config"]["deep_prompt"], "reparameterization": False})
    deep = DeepPrompt(backbone, stored.shape[0], settings, stored=stored)
    model = DeepPromptedLM(backbone, deep, word_ids(tokenizer, meta["verbalizers"][task], artifact / "meta.json",
                                                    family_of(backbone)), meta["config"].get("loss", "label_words"))
    model.eval()
    return model, tokenizer
