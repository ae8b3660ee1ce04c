"""Training one soft prompt on one task (or several prompts on one frozen backbone together).

Methods (``TrainConfig.method``):
- ``spt``: frozen backbone; only the prompt (and its reparameterization) trains.
- ``full_ft``: the prompt and every backbone weight train (the SPT paper's baseline).
- ``ltp`` (or ``ltp-<ticket>``): from the original weights, the prompt and the entries of a
  winning ticket (``select_ticket``'s mask) train; every other weight stays bit-identical.
- ``lora``: the prompt and LoRA adapters (PEFT) on the backbone's target modules train
  (``cfg.lora``, :mod:`xlprompt.methods.adapters`); every original weight stays bit-identical.
- ``bitfit``: the prompt and the backbone's bias terms train (``cfg.bitfit``); nothing else changes.
  lora and bitfit may also train without a prompt (``prompt_length`` 0).
- ``deep_prompt``: frozen backbone; key/value prefixes of ``prompt_length`` in every layer's (or
  ``cfg.deep_prompt.layers``') self-attention train, no input-level prompt (:mod:`xlprompt.methods.deep_prompt`).
- ``untrained``: the initial prompt, never trained (a control).
- ``no_prompt``: no prompt at all, the backbone alone at the mask slot (a control).

A prompt trains on one task or on a mixture of tasks (:class:`xlprompt.models.tasks.TaskSet`), and
starts from an init of :data:`xlprompt.runtime.settings.INITS` or from another prompt (``init
source``: SPoT's transfer, :func:`train_prompt`'s ``source``). With ``snapshot_step`` the
artifact also keeps the prompt at that step (SPoT's task embedding), and always the prompt
it started from (``prompt_init``).

The artifact it writes: :mod:`xlprompt.methods.artifacts`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from xlprompt.data.encoding import EncodedSplit, restrict_to_choices, text_length
from xlprompt.methods.adapters import attach_lora, backbone_parameter_count
from xlprompt.methods.artifacts import deep_prompt_meta, write_artifact
from xlprompt.methods.deep_prompt import DeepPromptedLM
from xlprompt.methods.ltp import load_ticket
from xlprompt.methods.peft_export import PREFIX_FOLDER, plan_export, plan_prefix_export
from xlprompt.methods.precision import MasterWeights, NonFiniteStep, check_finite, gradient_norm, non_finite_message
from xlprompt.methods.trainable import build_prompted, load_source, parameter_groups, trainable_parameter_count
from xlprompt.models.backbone import load_backbone
from xlprompt.models.checkpointing import enable_gradient_checkpointing, set_gradient_checkpointing
from xlprompt.models.compute import CPU, Compute, compute_of, linear_schedule, place, to_device
from xlprompt.models.families import family_of, input_width
from xlprompt.models.limits import check_positions
from xlprompt.models.predict import evaluate_split
from xlprompt.models.prompting import PromptedLM, joint_label_scores, label_loss
from xlprompt.models.tasks import TaskSet
from xlprompt.models.weights import weights_bytes, weights_sha256
from xlprompt.runtime.checkpoint import fingerprint, load_checkpoint, save_checkpoint
from xlprompt.runtime.io import read_json, sha256_file
from xlprompt.runtime.logs import progress
from xlprompt.runtime.meta import run_metadata
from xlprompt.runtime.settings import TrainConfig

if TYPE_CHECKING:  # transformers for the hints only: importing it costs a second
    pass

logger = logging.getLogger(__name__)


def batch_rows(n: int, batch_size: int, step: int, seed: int) -> torch.Tensor:
    """Rows of training batch ``step``: epochs of seeded permutations, a pure function of step."""
    start = step * batch_size
    rows: list[int] = []
    while len(rows) < batch_size:
        epoch, offset = divmod(start + len(rows), n)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        rows.extend(perm[offset : offset + batch_size - len(rows)].tolist())
    return torch.tensor(rows)


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def clip_gradients(optimizer: torch.optim.Optimizer, max_norm: float) -> torch.Tensor:
    """Scale the gradients of ``optimizer``'s parameters to a global L2 norm of at most ``max_norm`` (0: leave
    them), as HF Trainer clips a model's before each step (torch.nn.utils.clip_grad_norm_); returns their
    norm before clipping."""
    if max_norm > 0:
        return torch.nn.utils.clip_grad_norm_(
            [p for group in optimizer.param_groups for p in group["params"]], max_norm
        )
    return gradient_norm(optimizer)


def train_step(
    model: PromptedLM,
    optimizer: torch.optim.Optimizer,
    batch: dict[str, torch.Tensor],
    max_grad_norm: float = 0.0,
    masters: MasterWeights | None = None,
) -> torch.Tensor:
    """One optimisation step on one batch (on the model's device, bf16 autocast on a GPU for float32 weights);
    returns the loss, taken in fp32. ``max_grad_norm``: clip the gradient first (:func:`clip_gradients`);
    ``masters``: the fp32 copies the optimizer steps for 16-bit backbone weights (xlprompt.methods.precision).
    A non-finite loss or gradient raises :class:`~xlprompt.methods.precision.NonFiniteStep` before any
    weight changes."""
    compute = compute_of(model)
    batch = to_device(batch, compute)
    with compute.autocast():
        logits = model.score_batch(batch)  # (B, n_labels)
    loss = label_loss(restrict_to_choices(logits.float(), batch), batch["labels"], model.loss)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if masters:
        masters.gradients_to_masters()
    check_finite(loss, clip_gradients(optimizer, max_grad_norm))
    optimizer.step()
    if masters:
        masters.masters_to_weights()
    return loss.detach()


def joint_train_step(
    models: list[PromptedLM],
    optimizers: list[torch.optim.Optimizer],
    batches: list[dict[str, torch.Tensor]],
    pad_id: int,
    max_grad_norms: list[float] | None = None,
) -> list[torch.Tensor]:
    """One step of several prompts on one frozen backbone, each on its own batch; returns each one's loss.

    One backbone pass over all rows (:func:`xlprompt.models.prompting.joint_label_scores`); the sum of
    the mean losses gives each prompt the gradient of its own loss alone, clipped to its own norm
    (``max_grad_norms``, one per prompt) as it would be alone.
    """
    compute = compute_of(models[0])
    batches = [to_device(batch, compute) for batch in batches]
    with compute.autocast():
        scores = joint_label_scores(models, batches, pad_id)
    losses = [
        label_loss(restrict_to_choices(score.float(), batch), batch["labels"], model.loss)
        for model, score, batch in zip(models, scores, batches)
    ]
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=True)
    torch.stack(losses).sum().backward()
    norms = [
        clip_gradients(optimizer, max_norm)
        for optimizer, max_norm in zip(optimizers, max_grad_norms or [0.0] * len(optimizers))
    ]
    for index, (loss, norm) in enumerate(zip(losses, norms)):  # no prompt steps unless every one's is finite
        try:
            check_finite(loss, norm)
        except NonFiniteStep as err:
            err.run = index  # which of the stacked runs (stopped_at names it)
            raise
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
    masters: MasterWeights | None = None  # fp32 copies of the 16-bit backbone weights it trains
    start_step: int = 0
    snapshots: dict[str, torch.Tensor] = field(default_factory=dict)
    log_rows: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=dict)
    seconds: float = 0.0  # this run's own steps and validations in this process (a joint step: its share)
    # The run's own random stream (torch's CPU generator state, and the GPU's where it trains on one): what
    # the backbone's dropout draws from in its steps, so that a run trains in a group as it trains alone.
    random_state: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def cfg(self) -> TrainConfig:
        return self.run.cfg

    def active(self, step: int) -> bool:
        return self.start_step <= step < self.steps

    @contextlib.contextmanager
    def random_stream(self) -> Iterator[None]:
        """Torch's generators set to this run's stream for the block, its state kept for the next block
        and the process's own state put back afterwards (a checkpoint written in the block stores it)."""
        device = self._device()
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.set_rng_state(self.random_state["cpu"])
            if "cuda" in self.random_state:
                torch.cuda.set_rng_state(self.random_state["cuda"], device)
            yield
            self.keep_random_state()

    def keep_random_state(self) -> None:
        """Make the generators' present state this run's stream."""
        device = self._device()
        self.random_state = {"cpu": torch.get_rng_state()}
        if device.type == "cuda":
            self.random_state["cuda"] = torch.cuda.get_rng_state(device)

    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    def stepping(self) -> torch.optim.Optimizer:
        """The optimizer of a run that has steps to take (a run without steps has none)."""
        if self.optimizer is None:
            raise RuntimeError(f"{self.run.out}: a run without training steps has no optimizer")
        return self.optimizer


def train_prompt(
    backbone_dir: Path,
    data: Path | Sequence[Path],
    cfg: TrainConfig,
    out: Path,
    checkpoint_dir: Path | None = None,
    ticket: Path | None = None,
    source: Path | None = None,
    compute: Compute = CPU,
    name: str | None = None,
) -> dict:
    """Train (or, for the controls, just build) one prompt and write its artifact to ``out``.

    Arguments as :class:`PromptRun`'s; ``compute``: where (xlprompt.models.compute).
    """
    folders = Path(data) if isinstance(data, (str, Path)) else tuple(Path(d) for d in data)
    return train_prompts(
        backbone_dir, [PromptRun(folders, cfg, Path(out), checkpoint_dir, ticket, source, name)], compute
    )[0]


def check_together(runs: list[PromptRun]) -> None:
    """Runs can train in one job when the backbone stays frozen for all, their prompts are input-level
    prompts (not deep_prompt's prefixes) and have one length (xlprompt.runtime.settings.trains_alone)."""
    if len(runs) < 2:
        return
    alone = sorted({run.cfg.method for run in runs if run.cfg.trains_alone})
    if alone:
        raise ValueError(
            f"methods {alone} change backbone weights or put prefixes into its layers: each trains in a "
            "job of its own (only frozen-backbone input-level prompts train together)"
        )
    lengths = sorted({run.cfg.prompt_length for run in runs})
    if len(lengths) > 1:
        raise ValueError(f"prompts trained together need one prompt length, got {lengths}")
    outs = [run.out for run in runs]
    if len(set(outs)) < len(outs):
        raise ValueError("two runs of one job write the same artifact folder")


def train_prompts(
    backbone_dir: Path, runs: list[PromptRun], compute: Compute = CPU, stack: bool | None = None
) -> list[dict]:
    """Train several prompts on one frozen backbone together; write each one's artifact.

    With ``stack``, every step stacks each active prompt's own batch (its task, data order, init,
    learning rate, label words) into one backbone pass (:func:`joint_train_step`); the loss is the
    sum of the prompts' own mean losses, so each prompt gets exactly the gradient it would get
    alone (rows do not interact in a frozen backbone in eval mode), up to float rounding; with the
    backbone's dropout on, its rows draw other masks than alone, from the same distribution. Without
    it, the prompts step one after another, bit-identical to one job per prompt, dropout included
    (each run draws from its own random stream, :meth:`_Training.random_stream`). Default: stack
    on a GPU, where a small batch leaves the device idle; not on a CPU, where stacking saves no
    arithmetic (benchmarks/bench_joint.py) and rounding differences would grow over long runs.
    Either way the job shares one process, backbone load and tokenisation. Optimizer, schedule,
    validation, best step, snapshots, checkpoints and the artifact stay each prompt's own.
    A single run (any method) is :func:`train_prompt`.
    """
    check_together(runs)
    started = time.time()
    backbone, tokenizer = load_backbone(backbone_dir, compute.dtype)
    for run in runs:
        cfg = run.cfg
        check_positions(
            backbone,
            text_length(cfg.max_length, cfg.length_budget, cfg.prompt_positions, family_of(backbone)),
            cfg.prompt_positions,
        )
    backbone_sha = weights_sha256(backbone_dir)
    states = [_prepare(run, backbone, tokenizer, backbone_sha, compute) for run in runs]
    _train(states, tokenizer.pad_token_id, compute.device.type == "cuda" if stack is None else stack)
    seconds = round(time.time() - started, 2)
    return [_finish(state, tokenizer, backbone_dir, seconds, len(runs)) for state in states]


def validation_per_class(cfg: TrainConfig) -> int:
    """Validation examples per class that model selection sees (0: all). By default true few-shot selection
    (Perez et al. 2021): as many as training has, all of them under ``full_validation``."""
    if cfg.validation_per_class:
        return cfg.validation_per_class
    return cfg.train_per_class if cfg.selection != "full_validation" else 0


def _prepare(run: PromptRun, backbone, tokenizer, backbone_sha: str, compute: Compute) -> _Training:
    """Data, prompted model, optimizer (and checkpoint, if one is there) of one run."""
    cfg = run.cfg
    torch.manual_seed(cfg.seed)
    if (run.source is not None) != (cfg.init == "source"):
        raise ValueError("a source prompt goes with init 'source', and init 'source' needs a source prompt")
    tasks = TaskSet.load([run.data] if isinstance(run.data, (str, Path)) else list(run.data))
    dim = input_width(backbone)
    source_tensors = load_source(Path(run.source), cfg, backbone_sha, dim) if run.source is not None else None
    family = family_of(backbone)
    # The label words of the training language (its own where labels.json gives them, else English).
    words = tasks.verbalizer_ids(tokenizer, family, cfg.train_language)
    length = text_length(cfg.max_length, cfg.length_budget, cfg.prompt_positions, family)
    specials = cfg.add_special_tokens
    train_data = tasks.encode(
        tokenizer,
        cfg.train_language,
        "train",
        length,
        cfg.train_per_class,
        cfg.seed,
        family=family,
        special_tokens=specials,
    )
    dev_data = tasks.encode(
        tokenizer,
        cfg.train_language,
        "validation",
        length,
        validation_per_class(cfg),
        cfg.seed,
        family=family,
        special_tokens=specials,
        balanced=cfg.balance_validation,
    )
    model = build_prompted(backbone, tokenizer, cfg, words, source_tensors, train_data.input_ids)
    if cfg.gradient_checkpointing:
        enable_gradient_checkpointing(backbone)  # refused here, before any step, where the model has no layers for it
    # LoRA's A draws from the seeded generator, after the prompt (B starts at zero: the backbone as it is).
    adapter = attach_lora(backbone, cfg.lora) if cfg.spec.backbone == "lora" else None
    masks = load_ticket(run.ticket, backbone) if cfg.spec.backbone == "ticket" else {}
    place(model, compute)
    masks = {name: mask.to(compute.device) for name, mask in masks.items()}
    groups = parameter_groups(model, cfg, masks)
    masters = MasterWeights(groups)  # before the optimizer: it steps fp32 copies of 16-bit weights
    steps = cfg.steps if cfg.trains else 0
    inputs = {"backbone": backbone_sha}
    for data_dir, train_file in zip(tasks.data_dirs, tasks.split_files(cfg.train_language, "train")):
        prefix = f"{data_dir.name}/" if len(tasks.data_dirs) > 1 else ""
        inputs[f"{prefix}labels.json"] = sha256_file(data_dir / "labels.json")
        inputs[f"{prefix}train"] = sha256_file(train_file)
    for data_dir, dev_file in zip(tasks.data_dirs, tasks.split_files(cfg.train_language, "validation")):
        inputs[f"{data_dir.name}/validation" if len(tasks.data_dirs) > 1 else "validation"] = sha256_file(dev_file)
    if masks and run.ticket is not None:
        inputs["ticket"] = sha256_file(run.ticket)
    if run.source is not None:
        inputs["source"] = sha256_file(Path(run.source) / "prompt.safetensors")
    state = _Training(
        run,
        tasks,
        model,
        words,
        train_data,
        dev_data,
        masks,
        compute.optimizer(groups, cfg.weight_decay) if steps else None,
        inputs,
        fingerprint(asdict(cfg), inputs, str(compute.dtype)),
        steps,
        adapter,
        masters,
    )
    if model.prompt is not None:
        with torch.no_grad():
            state.snapshots["prompt_init"] = model.prompt().detach().clone()  # (L, d): where training starts
    state.best = {"loss": math.inf, "step": 0, "state": trainable_state(model)}
    if state.optimizer is not None and run.checkpoint_dir is not None:
        restored = load_checkpoint(run.checkpoint_dir, state.optimizer, state.stamp)
        if restored is not None:
            tensors, plain = restored
            model.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("live.")}, strict=False)
            if masters:
                masters.load_state({k[7:]: v for k, v in tensors.items() if k.startswith("master.")})
            state.best = {
                "loss": plain["best_loss"],
                "step": plain["best_step"],
                "state": {k[5:]: v for k, v in tensors.items() if k.startswith("best.")},
            }
            state.snapshots.update({k[len("snapshot.") :]: v for k, v in tensors.items() if k.startswith("snapshot.")})
            state.start_step, state.log_rows = plain["step"], plain["log"]
    state.keep_random_state()  # as seeded and built, or as the checkpoint left it
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
            # Train mode (the backbone's dropout) as training.dropout says; validation switches to eval mode.
            state.model.train(cfg.dropout_on)
            batches.append(
                state.train_data.batch(batch_rows(len(state.train_data), cfg.batch_size, step, cfg.seed), pad)
            )
            for group in state.stepping().param_groups:
                group["lr"] = group["base_lr"] * linear_schedule(step, state.steps, int(cfg.warmup_ratio * state.steps))
        if stack and len(active) > 1:
            # One pass for all: checkpointed if any asks (the gradients are the same either way).
            set_gradient_checkpointing(active[0].model.backbone, any(s.cfg.gradient_checkpointing for s in active))
            started = time.perf_counter()
            with stopped_at(step + 1, active):
                losses = joint_train_step(
                    [s.model for s in active],
                    [s.stepping() for s in active],
                    batches,
                    pad,
                    [s.cfg.max_grad_norm for s in active],
                )
            for state in active:
                state.seconds += (time.perf_counter() - started) / len(active)
        else:
            losses = []
            for state, batch in zip(active, batches):
                set_gradient_checkpointing(state.model.backbone, state.cfg.gradient_checkpointing)  # as this run asks
                started = time.perf_counter()
                with state.random_stream(), stopped_at(step + 1, [state]):  # its dropout as if it trained alone
                    losses.append(
                        train_step(state.model, state.stepping(), batch, state.cfg.max_grad_norm, state.masters)
                    )
                state.seconds += time.perf_counter() - started
        for state, loss in zip(active, losses):
            started = time.perf_counter()
            _after_step(state, step + 1, loss, pad, bar)
            state.seconds += time.perf_counter() - started


@contextlib.contextmanager
def stopped_at(step: int, states: list[_Training]) -> Iterator[None]:
    """Turn a non-finite step into the run's stop: which step, which precision, the remedy, and the last
    good checkpoint, which stays where it is (a rerun resumes from it)."""
    try:
        yield
    except NonFiniteStep as err:
        state = states[err.run]  # the run whose step was not finite
        dtype = compute_of(state.model).dtype
        folder = state.run.checkpoint_dir
        latest = folder / "latest.json" if folder is not None else None
        if latest is not None and latest.exists():
            step_kept = read_json(latest)["step"]
            kept = f"The last good checkpoint, step {step_kept}, is kept in {folder}: a rerun resumes there."
        else:
            kept = f"No checkpoint was written before it (training.checkpoint_every {state.cfg.checkpoint_every})."
        raise NonFiniteStep(f"{state.run.out}: {non_finite_message(str(err), step, dtype, kept)}") from None


def _after_step(state: _Training, done: int, loss: torch.Tensor, pad: int, bar) -> None:
    """Snapshot, validation and checkpoint of one run after its step ``done``."""
    cfg, model = state.cfg, state.model
    if done == cfg.snapshot_step and model.prompt is not None:
        with torch.no_grad():
            state.snapshots["prompt_snapshot"] = model.prompt().detach().clone()
    if done % cfg.eval_every == 0 or done == state.steps:
        state.best = validate(
            model, state.dev_data, pad, done, loss, state.log_rows, state.best, bar, cfg.selection == "last_step"
        )
    if state.run.checkpoint_dir is not None and done % cfg.checkpoint_every == 0 and done < state.steps:
        tensors = {f"live.{k}": v for k, v in trainable_state(model).items()}
        tensors.update({f"best.{k}": v for k, v in state.best["state"].items()})
        tensors.update({f"snapshot.{k}": v for k, v in state.snapshots.items()})
        if state.masters:
            tensors.update({f"master.{k}": v for k, v in state.masters.state().items()})
        plain = {
            "fingerprint": state.stamp,
            "step": done,
            "best_loss": state.best["loss"],
            "best_step": state.best["step"],
            "log": state.log_rows,
        }
        with state.random_stream():  # the checkpoint stores the run's stream, and resuming restores it
            save_checkpoint(state.run.checkpoint_dir, tensors, state.stepping(), plain)


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
    summary = {
        "best_step": best["step"],
        "best_dev_loss": round(best["loss"], 5),
        "steps": state.steps,
        "train_examples": len(state.train_data),
        "validation_examples": len(state.dev_data),
        "seconds": seconds,
        "train_seconds": round(state.seconds, 2),
        "trained_together": together,
        "full_checkpoint_bytes": weights_bytes(backbone_dir),
    }
    # What the method trains, against the backbone's own size (LoRA's matrices left out of it).
    summary["backbone_parameters"] = backbone_parameter_count(model.backbone)
    summary["trainable_parameters"] = trainable_parameter_count(model, cfg, state.masks)
    summary["trainable_share"] = summary["trainable_parameters"] / summary["backbone_parameters"]
    tasks, family = state.tasks, family_of(model.backbone)
    meta = run_metadata(asdict(cfg), cfg.seed, state.inputs, summary)
    meta.update(
        {
            "task": tasks.name,
            "tasks": [space.task for space in tasks.labels],
            "method": cfg.method,
            "method_name": run.name or cfg.method,
            "verbalizers": tasks.verbalizers(family, cfg.train_language),
            "label_names": tasks.label_names(),
            "family": family,
            "backbone_dtype": str(compute_of(model).dtype).removeprefix("torch."),
            "prompt_position": model.position,
            "train_language": cfg.train_language,
            "source": str(run.source) if run.source is not None else "none",
            # The examples model selection saw (few-shot: as many per class as training had).
            "validation": {"selection": cfg.selection, "ids": state.dev_data.ids},
        }
    )
    if len(tasks.labels) == 1:
        meta["verbalizer"] = tasks.labels[0].verbalizer(family, cfg.train_language)
    train_types = state.train_data.token_type_ids
    typed_pairs = train_types is not None and any(any(row) for row in train_types)
    if isinstance(model, DeepPromptedLM):
        peft_plan = plan_prefix_export(family, model.deep.every_layer, typed_pairs)
        meta["peft_export"] = {
            **peft_plan.as_meta(),
            "format": "prefix tuning",
            **({"folder": PREFIX_FOLDER} if peft_plan.exported else {}),
        }
        meta["deep_prompt"] = deep_prompt_meta(model.deep, peft_plan)
    else:
        peft_plan = plan_export(cfg.method, family, model.position, typed_pairs)
        meta["peft_export"] = peft_plan.as_meta()
    write_artifact(
        run.out,
        model,
        tokenizer,
        cfg,
        state.log_rows,
        meta,
        state.masks,
        state.snapshots,
        peft_plan,
        state.words,
        state.adapter,
    )
    if cfg.trains_alone:
        written = read_json(run.out / "meta.json")
        logger.info(
            "%s artifact: %d bytes, %.2f%% of a full checkpoint (%d bytes); %d trained parameters, "
            "%.2f%% of the backbone's",
            cfg.method,
            written["artifact_bytes"],
            100 * written["artifact_share"],
            summary["full_checkpoint_bytes"],
            summary["trainable_parameters"],
            100 * summary["trainable_share"],
        )
    if run.checkpoint_dir is not None and run.checkpoint_dir.exists():
        shutil.rmtree(run.checkpoint_dir)
    logger.info("%s %s: best dev loss %.4f at step %d", run.name or cfg.method, run.out, best["loss"], best["step"])
    return summary


def validate(
    model: PromptedLM,
    dev_data: EncodedSplit,
    pad_id: int,
    step: int,
    train_loss: torch.Tensor,
    log_rows: list[dict],
    best: dict,
    bar,
    keep_last: bool = False,
) -> dict:
    """Validation at ``step``: log it (``log_rows``, the progress bar) and return the best so far.

    ``best`` = {"loss", "step", "state"}: the trainable state with the lowest validation loss, or
    with ``keep_last`` (selection ``last_step``) the state at this step, whatever its loss.
    """
    dev_loss, dev_acc = evaluate_split(model, dev_data, pad_id)
    log_rows.append(
        {
            "step": step,
            "train_loss": round(train_loss.item(), 5),
            "dev_loss": round(dev_loss, 5),
            "dev_accuracy": round(dev_acc, 5),
        }
    )
    bar.set_postfix(dev_loss=f"{dev_loss:.3f}", dev_acc=f"{dev_acc:.3f}")
    if keep_last or dev_loss < best["loss"]:
        return {"loss": dev_loss, "step": step, "state": trainable_state(model)}
    return best
