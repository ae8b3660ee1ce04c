"""Prompt training: frozen means frozen, seeds reproduce, checkpoints resume, exports load."""

import json
from pathlib import Path

import pytest
import torch
from conftest import train_killed_after_checkpoint
from safetensors.torch import load_file

from xlprompt.analysis.evaluation import batchable, score, score_together
from xlprompt.analysis.prompt_metrics import evaluate
from xlprompt.data.contract import load_labels, load_split
from xlprompt.data.encoding import EncodedSplit, encode_split, pad_batch
from xlprompt.methods.artifacts import load_trained
from xlprompt.methods.training import batch_rows, train_prompt
from xlprompt.models.backbone import load_backbone
from xlprompt.models.mlm import mask_tokens, masked_positions_loss
from xlprompt.models.prompting import SoftPrompt, prompted_logits
from xlprompt.runtime.settings import TrainConfig

FAST = {
    "prompt_length": 4,
    "steps": 12,
    "batch_size": 8,
    "eval_every": 4,
    "checkpoint_every": 4,
    "lr": 0.3,
    "max_length": 48,
}


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


def test_spt_leaves_backbone_bit_identical(world_dir, backbone_dir, tmp_path, monkeypatch):
    from xlprompt.methods import training as train_module

    # Keep hold of the backbone module that training uses, then compare every tensor.
    loaded = []
    monkeypatch.setattr(train_module, "load_backbone", lambda *args: loaded.append(load_backbone(*args)) or loaded[-1])
    train_prompt(backbone_dir, world_dir / "topic", TrainConfig(method="spt", **FAST), tmp_path / "spt")
    before, after = weights(backbone_dir), loaded[0][0].state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert set(before) <= set(after)
    # ...while the prompt did move away from its initialisation.
    train_prompt(backbone_dir, world_dir / "topic", TrainConfig(method="untrained", **FAST), tmp_path / "untrained")
    trained = load_file(tmp_path / "spt" / "prompt.safetensors")["prompt"]
    assert not torch.equal(trained, load_file(tmp_path / "untrained" / "prompt.safetensors")["prompt"])


def test_full_ft_changes_backbone_weights(world_dir, backbone_dir, tmp_path):
    train_prompt(backbone_dir, world_dir / "topic", TrainConfig(method="full_ft", **FAST), tmp_path / "ft")
    before, after = weights(backbone_dir), weights(tmp_path / "ft" / "backbone")
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert "roberta.encoder.layer.0.attention.self.query.weight" in changed


def test_same_config_and_seed_give_identical_metrics(world_dir, backbone_dir, tmp_path):
    results = []
    for run in ("a", "b"):
        out = tmp_path / run
        train_prompt(backbone_dir, world_dir / "topic", TrainConfig(method="spt", seed=5, **FAST), out)
        results.append(evaluate(out, backbone_dir, world_dir / "topic", None))
    assert results[0] == results[1]
    other = tmp_path / "seed6"
    train_prompt(backbone_dir, world_dir / "topic", TrainConfig(method="spt", seed=6, **FAST), other)
    assert (
        load_file(other / "prompt.safetensors")["prompt"]
        .ne(load_file(tmp_path / "a" / "prompt.safetensors")["prompt"])
        .any()
    )


@pytest.mark.parametrize("method", ["spt", "full_ft"])
def test_resuming_from_a_checkpoint_ends_where_an_uninterrupted_run_ends(
    world_dir, backbone_dir, tmp_path, method, monkeypatch
):
    cfg = TrainConfig(method=method, snapshot_step=6, **FAST)  # the snapshot is taken before the kill
    train_prompt(backbone_dir, world_dir / "topic", cfg, tmp_path / "straight")

    # Interrupted: die right after the checkpoint of step 8 (of 12), then restart.
    ckpt = tmp_path / "ckpt"
    train_killed_after_checkpoint(monkeypatch, 8, backbone_dir, world_dir / "topic", cfg, tmp_path / "resumed", ckpt)
    assert not (tmp_path / "resumed").exists(), "a killed job must leave no output that looks complete"
    assert json.loads((ckpt / "latest.json").read_text()) == {"folder": "step-00000008", "step": 8}
    assert sorted(p.name for p in ckpt.iterdir()) == ["latest.json", "step-00000008"]  # older steps deleted
    train_prompt(backbone_dir, world_dir / "topic", cfg, tmp_path / "resumed", ckpt)
    assert not ckpt.exists(), "the checkpoint is removed once the artifact is complete"
    a = load_file(tmp_path / "straight" / "prompt.safetensors")
    b = load_file(tmp_path / "resumed" / "prompt.safetensors")
    assert a.keys() == b.keys() >= {"prompt", "prompt_init", "prompt_snapshot"}
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_reloaded_prompt_gives_the_same_predictions(world_dir, backbone_dir, tmp_path):
    out = tmp_path / "rep"
    cfg = TrainConfig(method="spt", reparameterization=True, reparam_hidden=16, **{**FAST, "lr": 0.01})
    train_prompt(backbone_dir, world_dir / "topic", cfg, out)
    model, tokenizer = load_trained(out, backbone_dir)
    tensors = load_file(out / "prompt.safetensors")
    assert {"prompt", "prompt_raw", "reparam.0.weight", "reparam.3.weight"} <= set(tensors)
    data = encode_split(tokenizer, load_split(world_dir / "topic", "en", "test"), 48)
    batch = data.batch(range(len(data)), tokenizer.pad_token_id)
    with torch.no_grad():
        first = model(batch["input_ids"], batch["attention_mask"], batch["mask_index"])
        again = load_trained(out, backbone_dir)[0](batch["input_ids"], batch["attention_mask"], batch["mask_index"])
    assert torch.equal(first, again)


def test_prompts_scored_together_equal_each_prompt_scored_alone(world_dir, backbone_dir, tmp_path):
    """Several prompts of one backbone in shared forward passes: the same logits, predictions
    and losses as each prompt on its own, also when rows may only choose their task's labels."""
    backbone, tokenizer = load_backbone(backbone_dir)
    model, _ = load_trained(_trained_spt(world_dir, backbone_dir, tmp_path), backbone_dir, shared=(backbone, tokenizer))
    models = []
    for seed in range(3):  # same backbone and verbalizer, three different prompts
        prompt = SoftPrompt(4, backbone.config.hidden_size)
        prompt.embedding.data.copy_(
            torch.randn(4, backbone.config.hidden_size, generator=torch.Generator().manual_seed(seed))
        )
        models.append(type(model)(backbone, prompt, model.verbalizer_ids.tolist()))
    data = encode_split(tokenizer, load_split(world_dir / "topic", "en", "test"), 48)
    pad = tokenizer.pad_token_id
    batch = data.batch(range(10), pad)
    with torch.no_grad():
        together = prompted_logits(
            backbone,
            torch.stack([m.prompt() for m in models]),
            model.verbalizer_ids,
            batch["input_ids"],
            batch["attention_mask"],
            batch["mask_index"],
        )
        for i, m in enumerate(models):
            torch.testing.assert_close(
                together[i], m(batch["input_ids"], batch["attention_mask"], batch["mask_index"]), rtol=1e-5, atol=1e-5
            )
    assert batchable(models)
    assert not batchable([*models, model.__class__(backbone, None, [5, 6, 7])])
    # Two "tasks" side by side: rows of the first may choose labels 0-1, of the second 2.
    mixed = EncodedSplit.concatenate([data, data], [2, 1])
    mixed.labels = [min(label, 1) for label in data.labels] + [2] * len(data)
    for split in (data, mixed):
        together = score_together(models, split, pad, 3, batch_size=16)  # 16 // 3 = 5 examples per pass
        for scored, m in zip(together, models):
            alone = score(m, split, pad, 3, batch_size=7)
            assert scored.row.pop("loss") == pytest.approx(alone.row.pop("loss"), rel=1e-5)
            assert scored.row == alone.row
            assert scored.preds == alone.preds
            torch.testing.assert_close(scored.scores, alone.scores, rtol=1e-5, atol=1e-5)


def _trained_spt(world_dir, backbone_dir, tmp_path) -> Path:
    out = tmp_path / "spt"
    train_prompt(backbone_dir, world_dir / "topic", TrainConfig(method="spt", **{**FAST, "steps": 2}), out)
    return out


def test_no_prompt_path_equals_the_plain_token_forward(world_dir, backbone_dir, tmp_path):
    """inputs_embeds with no prompt must be exactly the model's own token-id forward."""
    out = tmp_path / "none"
    train_prompt(
        backbone_dir, world_dir / "topic", TrainConfig(method="no_prompt", **{**FAST, "prompt_length": 0}), out
    )
    model, tokenizer = load_trained(out, backbone_dir)
    data = encode_split(tokenizer, load_split(world_dir / "topic", "en", "test"), 48)
    batch = data.batch(range(8), tokenizer.pad_token_id)
    with torch.no_grad():
        ours = model(batch["input_ids"], batch["attention_mask"], batch["mask_index"])
        logits = model.backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        reference = logits[torch.arange(8), batch["mask_index"]][:, model.verbalizer_ids]
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)


def test_masked_positions_loss_equals_the_full_head_loss(world_dir, backbone_dir):
    model, tokenizer = load_backbone(backbone_dir)
    model.eval()
    ids, attention = pad_batch([tokenizer("the a in with . this story")["input_ids"]] * 4, tokenizer.pad_token_id)
    generator = torch.Generator().manual_seed(0)
    maskable = attention.bool() & ~torch.isin(ids, torch.tensor(tokenizer.all_special_ids))
    inputs, chosen = mask_tokens(
        ids, maskable, torch.full(ids.shape, 0.5), tokenizer.mask_token_id, len(tokenizer), generator
    )
    with torch.no_grad():
        ours = masked_positions_loss(model, inputs, attention, ids, chosen)
        labels = ids.masked_fill(~chosen, -100)
        reference = model(input_ids=inputs, attention_mask=attention, labels=labels).loss
    torch.testing.assert_close(ours, reference)


def test_batches_are_a_pure_function_of_step_and_cover_each_epoch():
    first_epoch = torch.cat([batch_rows(10, 5, step, seed=1) for step in (0, 1)])
    assert sorted(first_epoch.tolist()) == list(range(10))
    assert torch.equal(batch_rows(10, 5, 3, seed=1), batch_rows(10, 5, 3, seed=1))


def test_multi_token_verbalizer_is_a_clear_error(world_dir, backbone_dir, tmp_path):
    import shutil

    data = tmp_path / "topic"
    shutil.copytree(world_dir / "topic", data)
    labels = json.loads((data / "labels.json").read_text())
    labels["verbalizers"]["masked_lm"][0] = "zzqqxxnotaword"
    (data / "labels.json").write_text(json.dumps(labels))
    with pytest.raises(ValueError, match="verbalizer word 'zzqqxxnotaword'"):
        train_prompt(backbone_dir, data, TrainConfig(method="spt", **FAST), tmp_path / "out")
    assert load_labels(data).names == labels["names"]


def test_few_shot_sample_is_stratified_seeded_and_capped():
    import pandas as pd

    from xlprompt.models.tasks import few_shot

    frame = pd.DataFrame({"label": [0] * 10 + [1] * 3, "text": list("abcdefghijklm")})
    sample = few_shot(frame, 4, seed=0)
    assert sample["label"].value_counts().to_dict() == {0: 4, 1: 3}
    assert sample.equals(few_shot(frame, 4, seed=0))
    assert not sample.equals(few_shot(frame, 4, seed=1))
    assert few_shot(frame, 0, seed=0) is frame
