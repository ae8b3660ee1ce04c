"""Every rule that declares a GPU claims a device and computes where it claimed (fake devices, on the CPU).

The list of GPU rules comes from the workflow (workflow_run.GPU_RULES): a rule added later with
``gpu=1`` gets a parameter here, and fails until its stage has a run below.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re

import pytest
from workflow_run import GPU_RULES, GROUP_RULE, rule_stage, workflow_rules

from xlprompt.analysis.activations import collect
from xlprompt.methods.training import train_prompt as train_library_prompt
from xlprompt.runtime import cli
from xlprompt.runtime.io import atomic_file
from xlprompt.runtime.settings import TrainConfig

# A device id no other test run on this machine uses: its lock file is this process's alone.
FAKE_DEVICE = f"fake{os.getpid()}"
TINY_SHAPE_FLAGS = [
    "--layers",
    "1",
    "--hidden",
    "32",
    "--heads",
    "2",
    "--ffn",
    "64",
    "--vocab-size",
    "500",
    "--max-length",
    "48",
    "--max-prompt-length",
    "16",
]


@pytest.fixture(scope="module")
def prompt_dir(world_dir, backbone_dir, tmp_path_factory):
    """A tiny trained spt prompt of task topic, and its prompt-alone activations."""
    out = tmp_path_factory.mktemp("gpu-stages") / "topic"
    train_library_prompt(
        backbone_dir,
        world_dir / "topic",
        TrainConfig(method="spt", prompt_length=4, steps=2, batch_size=8, eval_every=2, max_length=48),
        out,
    )
    from safetensors.torch import save

    with atomic_file(out.parent / "activations.safetensors", "wb") as handle:
        handle.write(save(collect(backbone_dir, [("topic", out)])))
    return out


def stage_argv(stage: str, world, backbone, prompt, out, rule: str = "") -> list[str]:
    """A short in-process call of ``stage`` on the tiny fixtures, as ``rule`` would make it."""
    train = ["--steps", "2", "--batch-size", "8"]
    calls = {
        "pretrain_backbone": ["--world", world, "--out", out / "model", *train, *TINY_SHAPE_FLAGS],
        "finetune_mlm": ["--backbone", backbone, "--text", world / "corpus" / "en.txt", "--out", out / "mlm", *train],
        "train_prompt": [
            "--backbone",
            backbone,
            "--data",
            world / "topic",
            "--out",
            out / "prompt",
            "--method",
            "spt",
            "--prompt-length",
            "4",
            "--eval-every",
            "2",
            "--max-length",
            "48",
            *train,
        ],
        # the group rules' form: several prompts on one frozen backbone, each behind its --run
        GROUP_RULE: [
            "--backbone",
            backbone,
            *[
                arg
                for seed in (0, 1)
                for arg in (
                    "--run",
                    f"--data {world / 'topic'} --out {out / f'prompt{seed}'} --seed {seed} --prompt-length 4 "
                    f"--eval-every 2 --max-length 48 --steps 2 --batch-size 8",
                )
            ],
        ],
        "evaluate": [
            "--prompt",
            prompt,
            "--backbone",
            backbone,
            "--data",
            world / "topic",
            "--languages",
            "en",
            "--out",
            out / "metrics.json",
        ],
        "evaluate_transfer": [
            "--backbone",
            backbone,
            "--data",
            world / "topic",
            "--runs",
            f"random={prompt}",
            "--sources",
            f"topic={prompt}",
            "--languages",
            "en",
            "--out",
            out / "transfer.json",
            "--label-maps",
            json.dumps({"topic": {"topic": {n: n for n in ("sports", "health", "politics")}}}),
        ],
        "prompt_activations": [
            "--backbone",
            backbone,
            "--prompts",
            f"topic={prompt}",
            "--out",
            out / "act.safetensors",
        ],
        "train_projector": [
            "--source",
            prompt,
            "--backbone",
            backbone,
            "--data",
            world / "topic",
            "--out",
            out / "projector",
            "--hidden",
            "8",
            "--eval-every",
            "2",
            "--max-length",
            "48",
            *train,
        ],
        "neuron_masking": [
            "--backbone",
            backbone,
            "--data-root",
            world,
            "--prompts",
            f"topic={prompt}",
            "--activations",
            prompt.parent / "activations.safetensors",
            "--languages",
            "en",
            "--out",
            out / "masking.csv",
        ],
    }
    if rule in calls:
        return [str(arg) for arg in calls[rule]]
    if stage not in calls:
        raise AssertionError(f"stage {stage!r} runs in a GPU rule: give it a short call in tests/test_gpu_stages.py")
    return [str(arg) for arg in calls[stage]]


@pytest.fixture
def fake_device(monkeypatch):
    """This process as a job on a machine with one (fake) GPU: the stage claims it afresh."""
    # setenv first, so that monkeypatch restores the variable a claim narrows (see test_devices.py).
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setenv("XLPROMPT_DEVICES", FAKE_DEVICE)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setattr(cli, "_DEVICE_CLAIM", None)
    handlers, level = logging.root.handlers[:], logging.root.level
    yield FAKE_DEVICE
    if cli._DEVICE_CLAIM is not None:
        cli._DEVICE_CLAIM.release()
    # The stage pointed logging at this test's captured stderr; give the root logger back.
    logging.root.handlers[:] = handlers
    logging.root.setLevel(level)


def test_gpu_rules_are_read_from_the_workflow():
    rules = workflow_rules()
    assert {"train_prompt", "evaluate", "pretrain_backbone"} <= GPU_RULES
    assert "aggregate" in rules
    assert "aggregate" not in GPU_RULES
    assert "similarity" not in GPU_RULES


@pytest.mark.parametrize("rule", sorted(GPU_RULES))
def test_every_gpu_rule_logs_the_device_it_claimed_and_computes_on(
    rule, world_dir, backbone_dir, prompt_dir, tmp_path, fake_device, capsys
):
    stage = rule_stage(workflow_rules()[rule])
    argv = stage_argv(stage, world_dir, backbone_dir, prompt_dir, tmp_path, rule)
    importlib.import_module(f"xlprompt.stages.{stage}").main(argv)
    log = capsys.readouterr().err  # what the rule's `> {log} 2>&1` keeps
    assert re.search(rf"running on device {fake_device} \(lock .*gpu-{fake_device}\.lock\)", log), log
    # No CUDA behind a fake device: the stage says it computes on the CPU, through xlprompt.models.compute.
    assert "computing on the CPU (no CUDA device visible)" in log, log
