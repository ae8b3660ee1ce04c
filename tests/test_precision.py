"""What lets a large backbone train in less memory: half precision (backbone.dtype: 16-bit weights, fp32 what
trains, fp32 optimizer state and loss, a stop at the first non-finite step with the last good checkpoint kept)
and gradient checkpointing (training.gradient_checkpointing: the same gradients)."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import single_token_words, train_killed_after_checkpoint, with_label_words
from safetensors.torch import save_file
from tiny_models import ALL

from xlprompt.data.contract import load_split
from xlprompt.data.encoding import encode_split
from xlprompt.methods import training as train_module
from xlprompt.methods.artifacts import load_trained
from xlprompt.methods.deep_prompt import DeepPrompt, DeepPromptedLM
from xlprompt.methods.precision import MasterWeights, NonFiniteStep
from xlprompt.methods.training import train_prompt
from xlprompt.models.backbone import load_backbone
from xlprompt.models.checkpointing import (
    checkpointing_layers,
    disable_gradient_checkpointing,
    enable_gradient_checkpointing,
    is_checkpointing,
)
from xlprompt.models.compute import choose_compute
from xlprompt.models.families import input_width
from xlprompt.models.predict import predict
from xlprompt.models.prompting import PromptedLM, SoftPrompt
from xlprompt.runtime.io import read_json
from xlprompt.runtime.settings import DeepPromptSettings, TrainConfig

BF16 = choose_compute("cpu", "bfloat16")


def _cfg(method: str, **extra) -> TrainConfig:
    settings = {
        "method": method,
        "prompt_length": 4,
        "steps": 4,
        "batch_size": 8,
        "eval_every": 2,
        "lr": 0.3,
        "backbone_lr": 1e-2,
        "max_length": 48,
        "train_per_class": 4,
        "seed": 1,
    }
    return TrainConfig(**{**settings, **extra})


@pytest.fixture
def qwen2_task(stand_ins, world_dir, tmp_path):
    """Qwen2's stand-in (it has q, k and v biases: every method applies) and the nli task with its words."""
    folder = stand_ins["qwen2"]
    _, tokenizer = load_backbone(folder)
    data = with_label_words(
        world_dir / "nli", tmp_path / "nli", single_token_words(tokenizer, world_dir, "causal_lm", 3)
    )
    return folder, tokenizer, data


def _spy_optimizer(monkeypatch) -> list[torch.optim.Optimizer]:
    """The optimizers the runs build, kept for inspection after training."""
    made: list[torch.optim.Optimizer] = []
    real = type(BF16).optimizer

    def keep(compute, groups, weight_decay):
        made.append(real(compute, groups, weight_decay))
        return made[-1]

    monkeypatch.setattr(type(BF16), "optimizer", keep)
    return made


def test_a_bfloat16_backbone_trains_an_fp32_prompt_with_fp32_adam_state_and_reloads(qwen2_task, tmp_path, monkeypatch):
    folder, tokenizer, data = qwen2_task
    loaded = []
    monkeypatch.setattr(train_module, "load_backbone", lambda *a: loaded.append(load_backbone(*a)) or loaded[-1])
    optimizers = _spy_optimizer(monkeypatch)
    train_prompt(folder, data, _cfg("spt"), tmp_path / "spt", compute=BF16)
    backbone = loaded[0][0]
    assert {p.dtype for p in backbone.parameters()} == {torch.bfloat16}  # 2 bytes a weight
    (optimizer,) = optimizers
    params = [p for group in optimizer.param_groups for p in group["params"]]
    assert params
    assert all(p.dtype == torch.float32 for p in params)
    moments = [t for slots in optimizer.state.values() for k, t in slots.items() if k != "step"]
    assert moments
    assert all(t.dtype == torch.float32 for t in moments)
    meta = read_json(tmp_path / "spt" / "meta.json")
    assert meta["backbone_dtype"] == "bfloat16"
    model, _ = load_trained(tmp_path / "spt", folder, dtype=torch.bfloat16)
    assert model.prompt.embedding.dtype == torch.float32
    test = encode_split(tokenizer, load_split(data, "en", "test"), 48, "causal_lm")
    first = predict(model, test, tokenizer.pad_token_id)[0]
    assert first == predict(load_trained(tmp_path / "spt", folder, dtype=torch.bfloat16)[0], test, 0)[0]


@pytest.mark.parametrize("method", ["bitfit", "ltp"])
def test_trained_bfloat16_weights_step_through_fp32_masters(method, qwen2_task, tmp_path, monkeypatch):
    """bitfit's biases and ltp's ticket stay bfloat16 in the model; the optimizer steps fp32 copies of them,
    and ltp's entries outside the ticket stay bit-identical."""
    folder, _, data = qwen2_task
    ticket = None
    if method == "ltp":
        backbone, _ = load_backbone(folder)
        generator = torch.Generator().manual_seed(0)
        masks = {
            name: torch.rand(p.shape, generator=generator) < 0.2
            for name, p in backbone.named_parameters()
            if name.endswith(("q_proj.weight", "down_proj.weight"))
        }
        ticket = tmp_path / "mask.safetensors"
        save_file(masks, ticket)
    loaded = []
    monkeypatch.setattr(train_module, "load_backbone", lambda *a: loaded.append(load_backbone(*a)) or loaded[-1])
    optimizers = _spy_optimizer(monkeypatch)
    train_prompt(folder, data, _cfg(method), tmp_path / method, ticket=ticket, compute=BF16)
    backbone = loaded[0][0]
    original = dict(load_backbone(folder, torch.bfloat16)[0].named_parameters())
    trained = {name: p for name, p in backbone.named_parameters() if not torch.equal(p, original[name])}
    assert trained
    assert all(p.dtype == torch.bfloat16 for p in trained.values())
    if method == "bitfit":
        assert all(name.endswith(".bias") for name in trained)
    else:
        assert set(trained) <= set(masks)
        for name in trained:
            outside = ~masks[name]
            assert torch.equal(backbone.get_parameter(name)[outside], original[name][outside])
    params = [p for group in optimizers[0].param_groups for p in group["params"]]
    assert all(p.dtype == torch.float32 for p in params)
    model, _ = load_trained(tmp_path / method, folder, dtype=torch.bfloat16)
    for name, param in trained.items():
        assert torch.equal(model.backbone.get_parameter(name), param)  # the artifact holds the trained weights


def test_masters_keep_updates_that_bfloat16_rounds_away():
    """Two hundred steps of 1e-3 on a weight of 1: bfloat16 (8 significant bits) cannot hold 1.001, so the
    weight alone never moves; through its fp32 master it reaches about 1.2 (rounded to bfloat16)."""
    alone = torch.nn.Parameter(torch.ones(4, dtype=torch.bfloat16))
    mastered = torch.nn.Parameter(torch.ones(4, dtype=torch.bfloat16))
    groups = [{"params": [mastered]}]
    masters = MasterWeights(groups)
    sgd_alone = torch.optim.SGD([alone], lr=1e-3)
    sgd_master = torch.optim.SGD(groups, lr=1e-3)
    for _ in range(200):
        for param, optimizer in ((alone, sgd_alone), (mastered, sgd_master)):
            optimizer.zero_grad()
            (-param.float().sum()).backward()  # gradient -1: each step adds lr
            if param is mastered:
                masters.gradients_to_masters()
            optimizer.step()
        masters.masters_to_weights()
    assert torch.equal(alone, torch.ones(4, dtype=torch.bfloat16))
    torch.testing.assert_close(mastered.float(), torch.full((4,), 1.2), atol=4e-3, rtol=0)
    assert masters.pairs[0][1].dtype == torch.float32


def test_a_non_finite_loss_stops_the_run_naming_step_dtype_and_remedy_and_keeps_the_checkpoint(
    qwen2_task, tmp_path, monkeypatch
):
    folder, _, data = qwen2_task
    real_loss = train_module.label_loss
    calls = []

    def nan_at_fifth(*args, **kwargs):
        calls.append(1)
        loss = real_loss(*args, **kwargs)
        return loss * float("nan") if len(calls) == 5 else loss

    monkeypatch.setattr(train_module, "label_loss", nan_at_fifth)
    cfg = _cfg("bitfit", steps=8, eval_every=8, checkpoint_every=2)
    checkpoints = tmp_path / "checkpoints"
    with pytest.raises(NonFiniteStep) as stop:
        train_prompt(folder, data, cfg, tmp_path / "out", checkpoints, compute=BF16)
    message = str(stop.value)
    assert "training step 5: the loss is nan" in message
    assert "bfloat16" in message
    assert "Remedy: lower training.lr" in message
    assert f"step 4, is kept in {checkpoints}" in message
    assert json.loads((checkpoints / "latest.json").read_text())["step"] == 4
    assert not (tmp_path / "out").exists()
    # The kept checkpoint resumes: the same run without the NaN finishes from step 4.
    monkeypatch.setattr(train_module, "label_loss", real_loss)
    summary = train_prompt(folder, data, cfg, tmp_path / "out", checkpoints, compute=BF16)
    assert summary["steps"] == 8
    assert (tmp_path / "out" / "meta.json").exists()


def test_float16_overflow_names_bfloat16_as_the_remedy(qwen2_task, tmp_path, monkeypatch):
    folder, _, data = qwen2_task
    monkeypatch.setattr(train_module, "label_loss", lambda *a, **k: torch.tensor(float("inf"), requires_grad=True))
    with pytest.raises(NonFiniteStep, match=r"training step 1: the loss is inf .*float16.*use backbone.dtype bfloat16"):
        train_prompt(folder, data, _cfg("spt"), tmp_path / "out", compute=choose_compute("cpu", "float16"))


def test_a_bfloat16_resume_continues_from_the_fp32_masters_not_their_rounding(qwen2_task, tmp_path, monkeypatch):
    """Killed after step 2 and resumed, a bitfit run ends bit-identical to one never killed: the checkpoint
    holds the fp32 masters (the bfloat16 biases alone would have lost what rounding hid)."""
    folder, _, data = qwen2_task
    cfg = _cfg("bitfit", steps=4, eval_every=4, checkpoint_every=2, backbone_lr=1e-4)
    train_prompt(folder, data, cfg, tmp_path / "whole", compute=BF16)
    checkpoints = tmp_path / "checkpoints"
    train_killed_after_checkpoint(
        monkeypatch, 2, folder, data, cfg, tmp_path / "resumed", checkpoints, None, None, BF16
    )
    train_prompt(folder, data, cfg, tmp_path / "resumed", checkpoints, compute=BF16)
    whole = (tmp_path / "whole" / "prompt.safetensors").read_bytes()
    assert (tmp_path / "resumed" / "prompt.safetensors").read_bytes() == whole


@pytest.mark.parametrize("kind", list(ALL))
@pytest.mark.parametrize("dropout", [False, True])
def test_gradient_checkpointing_recomputes_each_layer_and_gives_the_same_gradients(kind, dropout, stand_ins):
    """A checkpointed layer runs its modules twice a step (forward, then again in the backward pass), in eval
    mode too, and the prompt's gradient is the one without checkpointing; with dropout on, the replay draws
    the masks the forward drew."""
    backbone, tokenizer = load_backbone(stand_ins[kind])
    encoded = tokenizer(["a b c d e f", "g h i"], padding=True, return_tensors="pt")
    prompt = SoftPrompt(3, input_width(backbone))
    model = PromptedLM(backbone, prompt, [5, 6])
    model.train(dropout)
    first_layer = checkpointing_layers(backbone)[0]
    linear = next(m for m in first_layer.modules() if isinstance(m, torch.nn.Linear))

    def gradient_and_calls() -> tuple[torch.Tensor, torch.Tensor, int]:
        calls = []
        handle = linear.register_forward_hook(lambda *_: calls.append(1))
        prompt.zero_grad()
        torch.manual_seed(0)
        logits = model(encoded["input_ids"], encoded["attention_mask"], encoded["attention_mask"].sum(1) - 1)
        torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])).backward()
        handle.remove()
        return logits.detach(), prompt.embedding.grad.clone(), len(calls)

    logits, without, calls_without = gradient_and_calls()
    enable_gradient_checkpointing(backbone)
    assert is_checkpointing(first_layer)
    logits_with, with_checkpoints, calls_with = gradient_and_calls()
    disable_gradient_checkpointing(backbone)
    assert (calls_without, calls_with) == (1, 2)
    torch.testing.assert_close(logits_with, logits, rtol=0, atol=0)
    torch.testing.assert_close(with_checkpoints, without, rtol=1e-5, atol=1e-7)
    assert without.abs().sum() > 0
    assert gradient_and_calls()[2] == 1  # disabled: each layer's own forward again


def test_a_run_with_gradient_checkpointing_trains_the_prompt_it_trains_without(qwen2_task, tmp_path):
    folder, _, data = qwen2_task
    train_prompt(folder, data, _cfg("spt", dropout="never"), tmp_path / "plain")
    train_prompt(folder, data, _cfg("spt", dropout="never", gradient_checkpointing=True), tmp_path / "checkpointed")
    plain = load_trained(tmp_path / "plain", folder)[0].prompt.embedding
    checkpointed = load_trained(tmp_path / "checkpointed", folder)[0].prompt.embedding
    torch.testing.assert_close(checkpointed, plain, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kind", ["xlm-roberta", "llama", "gemma2"])
def test_a_checkpointed_layer_replays_deep_prompts_prefixes(kind, stand_ins):
    """deep_prompt's prefixes enter through pre-hooks that exist during the forward pass only; the replay in
    the backward pass runs with them again, so the prefixes' gradient is the one without checkpointing."""
    backbone, tokenizer = load_backbone(stand_ins[kind])
    encoded = tokenizer(["a b c d e f", "g h i"], padding=True, return_tensors="pt")
    torch.manual_seed(0)
    model = DeepPromptedLM(backbone, DeepPrompt(backbone, 3, DeepPromptSettings()), [5, 6]).eval()

    def prefix_gradient() -> torch.Tensor:
        model.deep.zero_grad()
        logits = model(encoded["input_ids"], encoded["attention_mask"], encoded["attention_mask"].sum(1) - 1)
        torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])).backward()
        return model.deep.encoder.embedding.weight.grad.clone()

    without = prefix_gradient()
    enable_gradient_checkpointing(backbone)
    with_checkpoints = prefix_gradient()
    torch.testing.assert_close(with_checkpoints, without, rtol=1e-5, atol=1e-7)
    assert without.abs().sum() > 0


def test_a_non_finite_step_of_one_stacked_run_names_that_run(qwen2_task, tmp_path, monkeypatch):
    """Two prompts in one stacked backbone pass; the second's loss is NaN: the stop names the second run."""
    folder, _, data = qwen2_task
    real_loss = train_module.label_loss
    calls = []

    def nan_for_the_second(*args, **kwargs):
        calls.append(1)
        loss = real_loss(*args, **kwargs)
        return loss * float("nan") if len(calls) == 2 else loss

    monkeypatch.setattr(train_module, "label_loss", nan_for_the_second)
    runs = [
        train_module.PromptRun(data, _cfg("spt", seed=seed), tmp_path / f"run{seed}", tmp_path / f"ckpt{seed}")
        for seed in (1, 2)
    ]
    with pytest.raises(NonFiniteStep, match=rf"{tmp_path / 'run2'}: training step 1: the loss is nan") as stop:
        train_module.train_prompts(folder, runs, BF16, stack=True)
    assert str(tmp_path / "run1") not in str(stop.value)
