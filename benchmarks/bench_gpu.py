"""spt training throughput and model FLOPs utilisation on a GPU.

An xlm-roberta-base-shaped model (12 x 768, XLM-R's vocabulary, random weights) with a frozen
backbone and a 16-token soft prompt, bf16 autocast, TF32 matmuls, fused AdamW; batch 32 of
128 tokens. Model FLOPs per step = 2 x the forward's FLOPs (a frozen backbone's backward
computes activation gradients only, no weight gradients): forward = 2 x (non-embedding
parameters) x tokens + the attention scores and mixing (4 x layers x batch x seq^2 x width).
MFU = achieved FLOPs/s over the chip's dense bf16 rate (table below, or --peak-tflops).

    python benchmarks/bench_gpu.py                     # on a machine with CUDA
    python benchmarks/bench_gpu.py --device cpu --steps 2 --layers 1   # the code path, anywhere

Without CUDA (and without --device) it records that the figure is unmeasured and why.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from record import RESULTS, save  # benchmarks/ is on sys.path when a script runs
from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

from xlprompt.methods.trainable import parameter_groups
from xlprompt.methods.training import train_step
from xlprompt.models.compute import choose_compute, place
from xlprompt.models.prompting import PromptedLM, SoftPrompt
from xlprompt.runtime.settings import TrainConfig

# Dense bf16 tensor-core rates in TFLOP/s (vendor data sheets, without sparsity).
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "L4": 121.0}
BATCH, SEQ, PROMPT = 32, 128, 16


def peak_tflops(device_name: str) -> float | None:
    return next((rate for chip, rate in PEAK_BF16_TFLOPS.items() if chip in device_name), None)


def step_flops(config: XLMRobertaConfig, tokens_per_row: int, batch: int) -> float:
    width, layers = config.hidden_size, config.num_hidden_layers
    per_layer = 4 * width * width + 2 * width * config.intermediate_size  # attention projections + FFN weights
    forward = 2 * layers * per_layer * batch * tokens_per_row + 4 * layers * batch * tokens_per_row**2 * width
    return 2 * forward


def seconds_per_step(model, optimizer, batch: dict, device: torch.device, steps: int) -> float:
    """Mean seconds of ``steps`` training steps (xlprompt's train_step: bf16 autocast on a GPU for float32
    weights) after two warm-up steps (kernels, allocator, optimizer state); a GPU's peak memory is reset
    after the warm-up, so that max_memory_allocated measures the steps."""
    for _ in range(2):
        train_step(model, optimizer, batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        train_step(model, optimizer, batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def measure(device: torch.device, layers: int, steps: int) -> dict:
    torch.manual_seed(0)
    config = XLMRobertaConfig(
        num_hidden_layers=layers,
        hidden_size=768,
        num_attention_heads=12,
        intermediate_size=3072,
        vocab_size=250_002,
        max_position_embeddings=SEQ + PROMPT + 2,
        type_vocab_size=1,
    )
    compute = choose_compute(device.type)
    backbone = XLMRobertaForMaskedLM(config)
    backbone.requires_grad_(False)
    model = place(PromptedLM(backbone, SoftPrompt(PROMPT, 768), list(range(5, 11))), compute)
    cfg = TrainConfig(method="spt", prompt_length=PROMPT)
    optimizer = compute.optimizer(parameter_groups(model, cfg, {}), 0.0)
    generator = torch.Generator().manual_seed(0)
    batch = {
        "input_ids": torch.randint(5, config.vocab_size, (BATCH, SEQ), generator=generator),
        "attention_mask": torch.ones(BATCH, SEQ, dtype=torch.long),
        "mask_index": torch.full((BATCH,), SEQ - 2),
        "labels": torch.randint(6, (BATCH,), generator=generator),
    }
    batch = {k: v.to(device) for k, v in batch.items()}

    seconds = seconds_per_step(model, optimizer, batch, device, steps)
    flops = step_flops(config, SEQ + PROMPT, BATCH)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = peak_tflops(name)
    return {
        "measured": True,
        "device": name,
        "layers": layers,
        "batch": BATCH,
        "seq": SEQ,
        "prompt": PROMPT,
        "step_s": round(seconds, 5),
        "tokens_per_s": round(BATCH * (SEQ + PROMPT) / seconds, 1),
        "model_tflops_per_s": round(flops / seconds / 1e12, 2),
        "peak_bf16_tflops": peak,
        "mfu": round(flops / seconds / (peak * 1e12), 4) if peak else None,
        "peak_memory_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="default: cuda where available")
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument(
        "--peak-tflops", type=float, default=None, help="the chip's dense bf16 rate, if not in the table"
    )
    args = parser.parse_args()
    if args.device is None and not torch.cuda.is_available():
        print("GPU spt throughput: not measured here (torch.cuda.is_available() is False on this machine)")
        recorded = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        if not recorded.get("gpu_spt_throughput", {}).get("measured"):  # keep a figure a GPU machine measured
            save(
                "gpu_spt_throughput", {"measured": False, "reason": "no CUDA device on the machine that ran make bench"}
            )
        return
    row = measure(torch.device(args.device or "cuda"), args.layers, args.steps)
    if args.peak_tflops:
        row["peak_bf16_tflops"] = args.peak_tflops
        row["mfu"] = round(row["model_tflops_per_s"] / args.peak_tflops, 4)
    print(row)
    if row["device"] != "cpu":  # a CPU run checks the code path; it is not the GPU figure
        save("gpu_spt_throughput", row)


if __name__ == "__main__":
    main()
