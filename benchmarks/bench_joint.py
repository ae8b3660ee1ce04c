"""P prompts trained together on one frozen backbone against one process per prompt.

Two measurements, both in this run, both P = 8 prompts of the same steps and batch each:

1. **Jobs** (CPU): the workflow's two ways, as processes: 8 x ``python -m xlprompt train_prompt``
   (one prompt each: start, imports, backbone load, tokenisation, training, artifact) against one
   ``train_prompt --run ... x 8`` (xlprompt.methods.training.train_prompts). Wall time of all, and the
   largest difference between the prompts the two ways produce. Backbones: the demo's tiny shape
   and XLM-R base's width (2 x 768; the vocabulary is the generated world's, about 1,500 tokens),
   random weights, the world's topic task (its texts: up to 64 tokens).
2. **Steps** (CPU, or the GPU with ``--gpu``): in one process, one joint step of 8 prompts
   (``xlprompt.methods.training.joint_train_step``) against 8 one-prompt steps (``training.train_step``); on a GPU the
   XLM-R base shape (12 x 768, XLM-R's vocabulary) at batch 8 x 128 tokens per prompt, bf16
   autocast, with the joint step's model FLOPs utilisation (bench_gpu.step_flops, P x 8 rows).

    python benchmarks/bench_joint.py          # CPU: both measurements, results.json "joint_training"
    python benchmarks/bench_joint.py --gpu    # on a CUDA machine: the step measurement, "joint_training_gpu"
    python benchmarks/bench_joint.py --gpu --device cpu --layers 1   # that code path, anywhere
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from record import ratio, save  # benchmarks/ is on sys.path when a script runs

P, STEPS, THREADS = 8, 30, 2
SHAPES = {  # name -> (BackboneShape fields, batch per prompt)
    "tiny (demo: 3 x 128)": ({"layers": 3, "hidden": 128, "heads": 4, "ffn": 512}, 32),
    "xlm-r-base width (2 x 768)": ({"layers": 2, "hidden": 768, "heads": 12, "ffn": 3072}, 8),
}


def build_fixtures(root: Path) -> tuple[Path, dict[str, Path]]:
    """A small generated world and a random-weight backbone of each shape, with the world's tokenizer."""
    from xlprompt.data.generated import generate_world
    from xlprompt.data.world import LanguageSpec, WorldConfig
    from xlprompt.models.tiny import build_model, train_tokenizer
    from xlprompt.runtime.settings import BackboneShape

    world = root / "world"
    world.mkdir()
    generate_world(
        WorldConfig(
            seed=0,
            languages=(LanguageSpec("en"),),
            n_topics=6,
            corpus_documents=3000,
            train_per_class=100,
            dev_per_class=10,
            test_per_class=10,
        ),
        world,
    )
    tokenizer = train_tokenizer(sorted((world / "corpus").glob("*.txt")), 2000)
    backbones = {}
    for name, (fields, _) in SHAPES.items():
        folder = root / name.split()[0]
        model = build_model(tokenizer, BackboneShape(vocab_size=2000, max_length=64, max_prompt_length=16, **fields), 0)
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        backbones[name] = folder
    return world, backbones


def run_flags(world: Path, out: Path, seed: int, batch: int) -> list[str]:
    return [
        "--data",
        str(world / "topic"),
        "--out",
        str(out),
        "--seed",
        str(seed),
        "--prompt-length",
        "16",
        "--steps",
        str(STEPS),
        "--batch-size",
        str(batch),
        "--eval-every",
        str(STEPS),
        "--max-length",
        "64",
    ]


def stage(*args: str) -> float:
    """Wall seconds of one ``python -m xlprompt train_prompt`` process."""
    env = {**os.environ, "XLPROMPT_PROGRESS": "0", "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "xlprompt", "train_prompt", "--threads", str(THREADS), "--device", "cpu", *args],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def largest_difference(a: Path, b: Path) -> float:
    from safetensors.torch import load_file

    worst = 0.0
    for i in range(P):
        x, y = load_file(a / str(i) / "prompt.safetensors"), load_file(b / str(i) / "prompt.safetensors")
        worst = max(worst, *((x[k] - y[k]).abs().max().item() for k in x))
    return worst


def jobs(world: Path, backbone: Path, batch: int, root: Path) -> dict:
    """One process per prompt, then one process for all: wall seconds, and how far apart the prompts are."""
    separate = sum(
        stage("--backbone", str(backbone), *run_flags(world, root / "separate" / str(i), i, batch)) for i in range(P)
    )
    runs = [arg for i in range(P) for arg in ("--run", " ".join(run_flags(world, root / "joint" / str(i), i, batch)))]
    joint = stage("--backbone", str(backbone), *runs)
    return {
        "separate_s": round(separate, 2),
        "joint_s": round(joint, 2),
        "joint_vs_separate_throughput": round(separate / joint, 3),
        "largest_prompt_difference": largest_difference(root / "separate", root / "joint"),
    }


def steps(backbone: torch.nn.Module, batches: list[dict], pad: int, device: torch.device, repeats: int) -> dict:
    """Seconds of 8 one-prompt steps and of one joint step of the 8 prompts, in one process."""
    from xlprompt.methods.trainable import parameter_groups
    from xlprompt.methods.training import joint_train_step, train_step
    from xlprompt.models.compute import choose_compute, place
    from xlprompt.models.prompting import PromptedLM, SoftPrompt
    from xlprompt.runtime.settings import TrainConfig

    compute = choose_compute(device.type)
    dim = backbone.get_input_embeddings().weight.shape[1]
    models = [place(PromptedLM(backbone, SoftPrompt(16, dim), list(range(5, 11))), compute) for _ in range(P)]
    optimizers = [compute.optimizer(parameter_groups(m, TrainConfig(prompt_length=16), {}), 0.0) for m in models]
    for m in models:
        m.eval()

    def timed(fn) -> float:
        fn()  # warm-up: kernels, allocator, optimizer state
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - start) / repeats

    alone = timed(lambda: [train_step(m, o, b) for m, o, b in zip(models, optimizers, batches)])
    together = timed(lambda: joint_train_step(models, optimizers, batches, pad))
    return {
        "separate_steps_s": round(alone, 5),
        "joint_step_s": round(together, 5),
        # The target is a GPU's (>= 4); on a CPU the figure is reported, with no target.
        "joint_vs_separate_throughput": (
            ratio(alone / together, ">= 4") if device.type == "cuda" else round(alone / together, 3)
        ),
    }


def random_batches(vocab: int, batch: int, seq: int, device: torch.device) -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    return [
        {
            "input_ids": torch.randint(5, vocab, (batch, seq), generator=generator).to(device),
            "attention_mask": torch.ones(batch, seq, dtype=torch.long, device=device),
            "mask_index": torch.full((batch,), seq - 2, device=device),
            "labels": torch.randint(6, (batch,), generator=generator).to(device),
        }
        for _ in range(P)
    ]


def cpu() -> dict:
    torch.set_num_threads(THREADS)
    from xlprompt.models.backbone import load_backbone

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        world, backbones = build_fixtures(Path(tmp))
        for name, (_, batch) in SHAPES.items():
            row = jobs(world, backbones[name], batch, Path(tmp) / "runs" / name.split()[0])
            backbone, tokenizer = load_backbone(backbones[name])
            backbone.requires_grad_(False)
            row["in_process"] = steps(
                backbone,
                random_batches(len(tokenizer), batch, 48, torch.device("cpu")),
                tokenizer.pad_token_id,
                torch.device("cpu"),
                3,
            )
            rows[name] = {**row, "prompts": P, "steps": STEPS, "batch_per_prompt": batch}
            print(name, rows[name], flush=True)
    return {**rows, "threads": THREADS}


def gpu(device: torch.device, layers: int) -> dict:
    from bench_gpu import peak_tflops, step_flops
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

    batch, seq = 8, 128
    config = XLMRobertaConfig(
        num_hidden_layers=layers,
        hidden_size=768,
        num_attention_heads=12,
        intermediate_size=3072,
        vocab_size=250_002,
        max_position_embeddings=seq + 16 + 2,
        type_vocab_size=1,
    )
    torch.manual_seed(0)
    backbone = XLMRobertaForMaskedLM(config)
    backbone.requires_grad_(False)
    row = steps(
        backbone, random_batches(config.vocab_size, batch, seq, device), 1, device, 20 if device.type == "cuda" else 1
    )
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = peak_tflops(name)
    flops = step_flops(config, seq + 16, P * batch)
    row.update(
        {
            "device": name,
            "layers": layers,
            "prompts": P,
            "batch_per_prompt": batch,
            "seq": seq,
            "joint_model_tflops_per_s": round(flops / row["joint_step_s"] / 1e12, 2),
            "joint_mfu": round(flops / row["joint_step_s"] / (peak * 1e12), 4) if peak else None,
        }
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu", action="store_true", help="the step measurement on CUDA (XLM-R base shape)")
    parser.add_argument("--device", default="cuda", help="with --gpu: cpu runs the code path anywhere")
    parser.add_argument("--layers", type=int, default=12, help="with --gpu: encoder layers (12: XLM-R base)")
    args = parser.parse_args()
    if args.gpu:
        row = gpu(torch.device(args.device), args.layers)
        print(row)
        if row["device"] != "cpu":  # a CPU run checks the code path; it is not the GPU figure
            save("joint_training_gpu", row)
        return
    save("joint_training", cpu())


if __name__ == "__main__":
    main()
