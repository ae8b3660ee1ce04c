"""spt training on today's decoder LLMs in bfloat16 on a GPU: tokens per second, MFU and peak memory.

Two shapes with random weights (time does not depend on the values), loaded as ``backbone.dtype: bfloat16``
loads them: Qwen2.5-1.5B (28 x 1536, 12 heads / 2 KV heads, MLP 8,960, vocabulary 151,936, tied) and
Llama-3.1-8B (32 x 4096, 32 / 8, MLP 14,336, vocabulary 128,256). xlprompt's own step (PromptedLM, an fp32
16-vector prompt, fused AdamW on its fp32 copy, fp32 loss; xlprompt.methods.training.train_step), SDPA
attention, batch 8 x 256 tokens. Model FLOPs per step = 2 x the forward's (a frozen backbone's backward
computes activation gradients only): forward = 2 x (non-embedding parameters + the LM head's label rows,
negligible) x tokens + the attention scores and mixing (4 x layers x batch x seq^2 x width).

    python benchmarks/bench_gpu_llms.py                                # on a machine with CUDA
    python benchmarks/bench_gpu_llms.py --device cpu --dtype float32 --layers 1 --steps 1 --seq 8   # the code path

Without CUDA (and without --device) it records that the figures are unmeasured and why.
"""

from __future__ import annotations

import argparse
import json

import torch
from bench_gpu import peak_tflops, seconds_per_step  # benchmarks/ is on sys.path when a script runs
from record import RESULTS, save
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from xlprompt.methods.trainable import parameter_groups
from xlprompt.models.compute import choose_compute, place
from xlprompt.models.prompting import PromptedLM, SoftPrompt
from xlprompt.runtime.settings import TrainConfig

BATCH, SEQ, PROMPT = 8, 256, 16
SHAPES = {
    "qwen2.5-1.5b": (
        Qwen2Config,
        Qwen2ForCausalLM,
        {
            "hidden_size": 1536,
            "num_hidden_layers": 28,
            "num_attention_heads": 12,
            "num_key_value_heads": 2,
            "intermediate_size": 8960,
            "vocab_size": 151_936,
            "tie_word_embeddings": True,
        },
    ),
    "llama-3.1-8b": (
        LlamaConfig,
        LlamaForCausalLM,
        {
            "hidden_size": 4096,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "intermediate_size": 14_336,
            "vocab_size": 128_256,
            "tie_word_embeddings": False,
        },
    ),
}


def step_flops(config, tokens: int, batch: int) -> float:
    width, layers = config.hidden_size, config.num_hidden_layers
    kv = config.num_key_value_heads * (width // config.num_attention_heads)
    per_layer = 2 * width * width + 2 * width * kv + 3 * width * config.intermediate_size
    forward = 2 * layers * per_layer * batch * tokens + 4 * layers * batch * tokens**2 * width
    return 2 * forward


def measure(name: str, device: torch.device, layers: int | None, steps: int, seq: int, dtype: str) -> dict:
    config_class, model_class, shape = SHAPES[name]
    config = config_class(**{**shape, **({"num_hidden_layers": layers} if layers else {})})
    compute = choose_compute(device.type, dtype)
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(compute.dtype)  # built in bfloat16 directly: an 8B model never exists in float32
    try:
        with device:
            backbone = model_class(config)
    finally:
        torch.set_default_dtype(default)
    backbone.requires_grad_(False)
    model = place(PromptedLM(backbone, SoftPrompt(PROMPT, config.hidden_size), list(range(5, 9))), compute)
    cfg = TrainConfig(method="spt", prompt_length=PROMPT)
    optimizer = compute.optimizer(parameter_groups(model, cfg, {}), 0.0)
    generator = torch.Generator().manual_seed(0)
    batch = {
        "input_ids": torch.randint(5, config.vocab_size, (BATCH, seq), generator=generator),
        "attention_mask": torch.ones(BATCH, seq, dtype=torch.long),
        "mask_index": torch.full((BATCH,), seq),
        "labels": torch.randint(4, (BATCH,), generator=generator),
    }
    batch = {k: v.to(device) for k, v in batch.items()}
    seconds = seconds_per_step(model, optimizer, batch, device, steps)
    flops = step_flops(config, seq + PROMPT, BATCH)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = peak_tflops(device_name)
    return {
        "device": device_name,
        "layers": config.num_hidden_layers,
        "parameters": sum(p.numel() for p in backbone.parameters()),
        "batch": BATCH,
        "seq": seq,
        "step_s": round(seconds, 5),
        "tokens_per_s": round(BATCH * (seq + PROMPT) / seconds, 1),
        "model_tflops_per_s": round(flops / seconds / 1e12, 2),
        "mfu": round(flops / seconds / (peak * 1e12), 4) if peak else None,
        "peak_memory_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else None,
        "prompt_dtype": str(model.prompt.embedding.dtype),
        "optimizer_state_dtypes": sorted(
            {str(t.dtype) for s in optimizer.state.values() for k, t in s.items() if k != "step"}
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="default: cuda where available")
    parser.add_argument("--layers", type=int, default=None, help="default: the real depth")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--seq", type=int, default=SEQ)
    parser.add_argument(
        "--dtype", default="bfloat16", help="the weights (float32 for a quick CPU check: this CPU has no bfloat16 unit)"
    )
    args = parser.parse_args()
    if args.device is None and not torch.cuda.is_available():
        print("GPU decoder-LLM spt throughput: not measured here (torch.cuda.is_available() is False on this machine)")
        recorded = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        if not recorded.get("gpu_llm_spt", {}).get("measured"):  # keep a figure a GPU machine measured
            save("gpu_llm_spt", {"measured": False, "reason": "no CUDA device on the machine that ran make bench"})
        return
    device = torch.device(args.device or "cuda")
    rows = {name: measure(name, device, args.layers, args.steps, args.seq, args.dtype) for name in SHAPES}
    print(json.dumps(rows, indent=2))
    if device.type == "cuda" and args.dtype == "bfloat16":  # a CPU run checks the code path, not the GPU figure
        save("gpu_llm_spt", {"measured": True, **rows})


if __name__ == "__main__":
    main()
