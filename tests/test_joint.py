"""Prompts trained together on one frozen backbone equal the same prompts trained alone.

Joint training (xlprompt.methods.training.train_prompts) stacks each prompt's own batch into one backbone
pass (``stack``, a GPU's default), or steps the prompts one after another in one process. What must not
change: each prompt's data order, init, learning rate, label words, best
step, snapshots and artifact. The reference is the one-prompt-per-job path (train_prompt).
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file
from tiny_models import ALL

from xlprompt.data.contract import load_split
from xlprompt.data.encoding import encode_split
from xlprompt.methods.training import PromptRun, train_prompt, train_prompts
from xlprompt.models.backbone import load_backbone
from xlprompt.models.prompting import PromptedLM, SoftPrompt, joint_label_scores
from xlprompt.runtime.settings import TrainConfig

JOINT = {"prompt_length": 4, "steps": 20, "batch_size": 8, "eval_every": 5, "max_length": 48, "checkpoint_every": 1000}


def group_runs(world_dir, source) -> list[tuple[str, object, TrainConfig, dict]]:
    """(name, data, config, extra run arguments) of a group that differs in everything a prompt owns."""
    topic, nli = world_dir / "topic", world_dir / "nli"
    return [
        ("vocab", topic, TrainConfig(seed=0, **JOINT), {}),
        (
            "uniform-reparam",
            topic,
            TrainConfig(seed=1, init="uniform", lr=0.05, reparameterization=True, reparam_hidden=8, **JOINT),
            {},
        ),
        ("label-words-nli", nli, TrainConfig(seed=2, init="label_words", snapshot_step=10, **JOINT), {}),
        ("mixture", (topic, nli), TrainConfig(seed=0, train_language="rev", **JOINT), {}),
        ("from-source", topic, TrainConfig(seed=4, init="source", lr=0.1, **JOINT), {"source": source}),
        (
            "short-last-step",
            topic,
            TrainConfig(seed=5, selection="last_step", train_per_class=4, **{**JOINT, "steps": 10, "eval_every": 3}),
            {},
        ),
        ("untrained", topic, TrainConfig(method="untrained", seed=6, **JOINT), {}),
        (  # the SPT authors' options: its own gradient clipped to its own norm, a LayerNorm without gain and bias
            "clipped-authors-reparam",
            topic,
            TrainConfig(
                seed=7,
                init="uniform",
                lr=0.05,
                reparameterization=True,
                reparam_hidden=8,
                reparam_norm_affine=False,
                max_grad_norm=0.05,
                **JOINT,
            ),
            {},
        ),
    ]


def test_prompts_trained_together_equal_each_prompt_trained_alone(world_dir, backbone_dir, tmp_path):
    """Stacked rows of a frozen backbone in eval mode do not interact: equal up to float rounding. (With
    dropout on, a stacked row draws other masks than alone: the same distribution, tested below.)"""
    source = tmp_path / "source"
    train_prompt(backbone_dir, world_dir / "topic", TrainConfig(seed=9, **{**JOINT, "steps": 4}), source)
    runs = [
        (name, data, replace(cfg, dropout="never"), extra) for name, data, cfg, extra in group_runs(world_dir, source)
    ]
    alone = {
        name: train_prompt(backbone_dir, data, cfg, tmp_path / "alone" / name, **extra)
        for name, data, cfg, extra in runs
    }
    together = train_prompts(
        backbone_dir,
        [PromptRun(data, cfg, tmp_path / "together" / name, **extra) for name, data, cfg, extra in runs],
        stack=True,
    )
    assert [s["trained_together"] for s in together] == [len(runs)] * len(runs)
    for (name, *_), single, joint in zip(runs, alone.values(), together):
        assert joint["best_step"] == single["best_step"], name
        assert joint["best_dev_loss"] == pytest.approx(single["best_dev_loss"], abs=1e-5), name
        a = load_file(tmp_path / "alone" / name / "prompt.safetensors")
        b = load_file(tmp_path / "together" / name / "prompt.safetensors")
        assert a.keys() == b.keys(), name
        for key in a:
            torch.testing.assert_close(b[key], a[key], atol=1e-5, rtol=0, msg=f"{name}: {key}")
        log_a = [json.loads(line) for line in (tmp_path / "alone" / name / "train_log.jsonl").read_text().splitlines()]
        log_b = [
            json.loads(line) for line in (tmp_path / "together" / name / "train_log.jsonl").read_text().splitlines()
        ]
        assert [row["step"] for row in log_a] == [row["step"] for row in log_b], name
        for row_a, row_b in zip(log_a, log_b):
            assert row_b["dev_loss"] == pytest.approx(row_a["dev_loss"], abs=1e-4), name
    # The prompts really trained (they moved away from their init), and differently from each other.
    trained = {name: load_file(tmp_path / "together" / name / "prompt.safetensors") for name, *_ in runs}
    assert not torch.equal(trained["vocab"]["prompt"], trained["vocab"]["prompt_init"])
    assert torch.equal(trained["untrained"]["prompt"], trained["untrained"]["prompt_init"])


def test_on_the_cpu_a_group_steps_its_prompts_one_after_another_bit_identical_to_alone(
    world_dir, backbone_dir, tmp_path
):
    """The default on a CPU (no stacking): the group job saves process starts, not a bit of any prompt,
    the backbone's dropout included (each run draws its masks from its own random stream)."""
    runs = group_runs(world_dir, None)[:3]
    assert all(cfg.dropout_on for _, _, cfg, _ in runs)
    alone = [
        train_prompt(backbone_dir, data, cfg, tmp_path / "alone" / name, **extra) for name, data, cfg, extra in runs
    ]
    together = train_prompts(
        backbone_dir, [PromptRun(data, cfg, tmp_path / "together" / name, **extra) for name, data, cfg, extra in runs]
    )
    for (name, *_), single, joint in zip(runs, alone, together):
        assert joint["best_dev_loss"] == single["best_dev_loss"]
        assert joint["best_step"] == single["best_step"]
        a = load_file(tmp_path / "alone" / name / "prompt.safetensors")
        b = load_file(tmp_path / "together" / name / "prompt.safetensors")
        assert a.keys() == b.keys(), name
        assert all(torch.equal(a[key], b[key]) for key in a), name


@pytest.mark.parametrize(
    ("stack", "dropout"),
    # Stacked: eval mode (a resumed group stacks other rows together, so dropout masks could not repeat);
    # one after another, with dropout on: each run's random stream is in its checkpoint.
    [(True, "never"), (False, "always")],
)
def test_a_killed_group_resumes_each_prompt_from_its_checkpoint(
    world_dir, backbone_dir, tmp_path, monkeypatch, stack, dropout
):
    cfgs = [TrainConfig(seed=seed, dropout=dropout, **{**JOINT, "steps": 12, "checkpoint_every": 4}) for seed in (0, 1)]
    straight = train_prompts(
        backbone_dir,
        [PromptRun(world_dir / "topic", cfg, tmp_path / "straight" / str(i)) for i, cfg in enumerate(cfgs)],
        stack=stack,
    )
    from xlprompt.methods import training as train_module

    class Killed(Exception):
        pass

    original, saved = train_module.save_checkpoint, []

    def save_then_die(folder, tensors, optimizer, plain):
        original(folder, tensors, optimizer, plain)
        saved.append(plain["step"])
        if saved == [4, 4, 8]:  # the first prompt has its step-8 checkpoint, the second only step 4
            raise Killed

    runs = [
        PromptRun(world_dir / "topic", cfg, tmp_path / "resumed" / str(i), tmp_path / "ckpt" / str(i))
        for i, cfg in enumerate(cfgs)
    ]
    monkeypatch.setattr(train_module, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        train_prompts(backbone_dir, runs, stack=stack)
    monkeypatch.setattr(train_module, "save_checkpoint", original)
    assert not (tmp_path / "resumed").exists()
    resumed = train_prompts(backbone_dir, runs, stack=stack)
    for i, (a, b) in enumerate(zip(straight, resumed)):
        assert a["best_step"] == b["best_step"]
        pa = load_file(tmp_path / "straight" / str(i) / "prompt.safetensors")
        pb = load_file(tmp_path / "resumed" / str(i) / "prompt.safetensors")
        for key in pa:
            if stack:
                torch.testing.assert_close(pb[key], pa[key], atol=1e-6, rtol=0)
            else:
                assert torch.equal(pb[key], pa[key])
    assert not (tmp_path / "ckpt" / "0").exists()
    assert not (tmp_path / "ckpt" / "1").exists()


@pytest.mark.parametrize(
    ("cfgs", "message"),
    [
        ([TrainConfig(method="full_ft", **JOINT), TrainConfig(**JOINT)], "change backbone weights"),
        ([TrainConfig(method="ltp", **JOINT), TrainConfig(**JOINT)], "change backbone weights"),
        ([TrainConfig(**JOINT), TrainConfig(**{**JOINT, "prompt_length": 8})], "one prompt length"),
    ],
)
def test_what_cannot_train_together_is_refused_before_any_compute(
    world_dir, backbone_dir, tmp_path, cfgs, message, monkeypatch
):
    from xlprompt.methods import training as train_module

    monkeypatch.setattr(train_module, "load_backbone", lambda *a: pytest.fail("loaded the backbone"))
    with pytest.raises(ValueError, match=message):
        train_prompts(
            backbone_dir, [PromptRun(world_dir / "topic", cfg, tmp_path / str(i)) for i, cfg in enumerate(cfgs)]
        )


@pytest.mark.parametrize("kind", list(ALL))
def test_joint_scores_and_gradients_equal_each_prompt_alone_on_every_family(kind, stand_ins, world_dir):
    """Every layout (prompt first, after the text, encoder side, token types) joins rows of other prompts."""
    backbone, tokenizer = load_backbone(stand_ins[kind])
    backbone.eval()
    backbone.requires_grad_(False)
    family = ALL[kind]
    dim = backbone.get_input_embeddings().weight.shape[1]
    generator = torch.Generator().manual_seed(0)
    models, batches = [], []
    for i, (task, rows) in enumerate([("nli", range(0, 5)), ("topic", range(3, 6)), ("nli", range(6, 13))]):
        data = encode_split(tokenizer, load_split(world_dir / task, "en", "test"), 48, family)
        prompt = SoftPrompt(3, dim)
        prompt.embedding.data.copy_(torch.randn(3, dim, generator=generator) * 0.1)
        words = [[5 + i], [9], [11 + i]] if task == "nli" else [[7], [8 + i], [10]]
        if i == 2 and family != "masked_lm":
            words = [[5, 6], [9], [12, 7]]  # label words of several tokens (causal and seq2seq only)
        models.append(PromptedLM(backbone, prompt, words, loss="vocabulary" if i == 1 else "label_words"))
        batches.append(data.batch(list(rows), tokenizer.pad_token_id))
    assert len({batch["input_ids"].shape[1] for batch in batches}) > 1  # widths differ: padding is exercised
    joint = joint_label_scores(models, batches, tokenizer.pad_token_id)
    sum(score.logsumexp(-1).sum() for score in joint).backward()
    joint_grads = [m.prompt.embedding.grad.clone() for m in models]
    for model, batch, score, grad in zip(models, batches, joint, joint_grads):
        model.prompt.embedding.grad = None
        alone = model.score_batch(batch)
        torch.testing.assert_close(score, alone, atol=1e-5, rtol=1e-4)
        alone.logsumexp(-1).sum().backward()
        torch.testing.assert_close(grad, model.prompt.embedding.grad, atol=1e-5, rtol=1e-4)


def test_with_dropout_on_a_stacked_row_sees_the_distribution_it_sees_alone(backbone_dir, world_dir):
    """Stacking other prompts' rows beside a prompt's batch changes which dropout masks its rows draw, not
    their distribution: over many draws, its loss has the mean and spread it has alone (two-sample z-test,
    the means within 4 standard errors of each other)."""
    backbone, tokenizer = load_backbone(backbone_dir)
    backbone.requires_grad_(False)
    dim = backbone.get_input_embeddings().weight.shape[1]
    generator = torch.Generator().manual_seed(0)
    data = encode_split(tokenizer, load_split(world_dir / "topic", "en", "test"), 48)
    models, batches = [], []
    for i, rows in enumerate([range(0, 6), range(6, 14)]):
        prompt = SoftPrompt(4, dim)
        prompt.embedding.data.copy_(torch.randn(4, dim, generator=generator) * 0.5)
        models.append(PromptedLM(backbone, prompt, [[5 + i], [9], [11]]))
        batches.append(data.batch(list(rows), tokenizer.pad_token_id))
    backbone.train()  # the backbone's dropout on, as training.dropout always runs it
    torch.manual_seed(0)
    with torch.no_grad():
        alone = torch.stack([models[0].score_batch(batches[0]).logsumexp(-1).mean() for _ in range(300)])
        together = torch.stack(
            [joint_label_scores(models, batches, tokenizer.pad_token_id)[0].logsumexp(-1).mean() for _ in range(300)]
        )
    error = (alone.var() / len(alone) + together.var() / len(together)).sqrt()
    assert abs(alone.mean() - together.mean()) < 4 * error
    assert 0.75 < together.std() / alone.std() < 1.33
    assert alone.std() > 0  # the masks did differ from draw to draw
