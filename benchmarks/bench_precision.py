"""What half precision and gradient checkpointing save on the CPU, on a decoder LLM of Qwen2.5-0.5B's width.

Each measurement runs in a fresh process (its peak memory is its own) and trains an spt prompt of 16 vectors
with xlprompt's own step (methods.trainable.parameter_groups, methods.training.train_step, dropout off) on a
randomly initialised Qwen2 model: Qwen2.5-0.5B's width (896, 14 heads / 2 KV heads, MLP 4,864) with 4 of its
24 layers and its vocabulary cut to 16k, so that a step fits a 2-core CPU.

- bfloat16 weights against float32 (batch 4 x 64 tokens, 2 steps: this CPU has no bfloat16 matrix unit,
  so a bfloat16 step is many times slower than a float32 one here and its time says nothing of a GPU's):
  the weights' part (resident memory after building the model minus before) and the training part (peak
  resident memory during the steps minus before them);
- gradient checkpointing against none, float32, batch 4 x 512 tokens: the training part and the step time.

    python benchmarks/bench_precision.py        # prints the ratios, updates benchmarks/results.json
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch
from record import ratio, save  # benchmarks/ is on sys.path when a script runs

WIDTH = {
    "hidden_size": 896,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "intermediate_size": 4864,
    "num_hidden_layers": 4,
    "vocab_size": 16000,
    "tie_word_embeddings": True,
}
PROMPT, ROUNDS = 16, 3


def resident_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def measure_one(dtype: str, checkpointing: bool, batch: int, seq: int, steps: int) -> dict:
    """One configuration's memory and step time, in this process."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from xlprompt.methods.trainable import parameter_groups
    from xlprompt.methods.training import train_step
    from xlprompt.models.checkpointing import enable_gradient_checkpointing
    from xlprompt.models.compute import DTYPES
    from xlprompt.models.prompting import PromptedLM, SoftPrompt
    from xlprompt.runtime.settings import TrainConfig

    torch.set_num_threads(2)
    torch.manual_seed(0)
    before_model = resident_mb()
    config = Qwen2Config(max_position_embeddings=seq + PROMPT, **WIDTH)
    default = torch.get_default_dtype()
    torch.set_default_dtype(DTYPES[dtype])  # built in its type: no float32 copy ever raises the peak
    try:
        backbone = Qwen2ForCausalLM(config).eval()
    finally:
        torch.set_default_dtype(default)
    weights = resident_mb() - before_model
    cfg = TrainConfig(method="spt", prompt_length=PROMPT)
    model = PromptedLM(backbone, SoftPrompt(PROMPT, WIDTH["hidden_size"]), list(range(4)))
    if checkpointing:
        enable_gradient_checkpointing(backbone)
    optimizer = torch.optim.AdamW(parameter_groups(model, cfg, {}))
    generator = torch.Generator().manual_seed(1)
    batch_tensors = {
        "input_ids": torch.randint(0, WIDTH["vocab_size"], (batch, seq), generator=generator),
        "attention_mask": torch.ones(batch, seq, dtype=torch.long),
        "mask_index": torch.full((batch,), seq),
        "labels": torch.randint(0, 4, (batch,), generator=generator),
    }
    model.train(False)  # dropout off: frozen-backbone prompt tuning as the demo runs it
    before_steps = resident_mb()
    times = []
    for step in range(steps + 1):
        started = time.perf_counter()
        train_step(model, optimizer, batch_tensors)
        if step:  # the first step warms up
            times.append(time.perf_counter() - started)
    return {
        "weights_mb": weights,
        "training_mb": peak_mb() - before_steps,
        "step_s": statistics.mean(times),
        "parameters": sum(p.numel() for p in backbone.parameters()),
    }


def in_fresh_process(dtype: str, checkpointing: bool, batch: int, seq: int, steps: int) -> dict:
    flags = ["--one", dtype, str(int(checkpointing)), str(batch), str(seq), str(steps)]
    out = subprocess.run([sys.executable, __file__, *flags], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def median_of(rounds: list[dict]) -> dict:
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--one", nargs=5, metavar=("DTYPE", "CHECKPOINTING", "BATCH", "SEQ", "STEPS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.one:
        dtype, checkpointing, batch, seq, steps = args.one
        print(json.dumps(measure_one(dtype, bool(int(checkpointing)), int(batch), int(seq), int(steps))))
        return
    # (dtype, checkpointing, batch, tokens, timed steps), and the rounds: one for the memory of the dtype pair
    # (a bfloat16 step takes about 40 s on this CPU), three for checkpointing's step time.
    cases = {
        "float32": (("float32", False, 4, 64, 1), 1),
        "bfloat16": (("bfloat16", False, 4, 64, 1), 1),
        "no checkpointing, 512 tokens": (("float32", False, 4, 512, 3), ROUNDS),
        "checkpointing, 512 tokens": (("float32", True, 4, 512, 3), ROUNDS),
    }
    rounds: dict[str, list[dict]] = {name: [] for name in cases}
    for round_ in range(ROUNDS):  # alternating, so that machine noise hits every case alike
        for name, (case, wanted) in cases.items():
            if round_ < wanted:
                rounds[name].append(in_fresh_process(*case))
    result = {name: median_of(r) for name, r in rounds.items()}
    full, half = result["float32"], result["bfloat16"]
    plain, checkpointed = result["no checkpointing, 512 tokens"], result["checkpointing, 512 tokens"]
    rows = {
        "model": f"Qwen2, {WIDTH['num_hidden_layers']} x {WIDTH['hidden_size']}, {full['parameters']:,} parameters",
        "measured": {name: {k: round(v, 4) for k, v in r.items()} for name, r in result.items()},
        "bfloat16 / float32 weights' memory": ratio(half["weights_mb"] / full["weights_mb"], "<= 0.55"),
        "bfloat16 / float32 peak memory while training (weights and steps, spt 4 x 64)": ratio(
            (half["weights_mb"] + half["training_mb"]) / (full["weights_mb"] + full["training_mb"]), "<= 0.8"
        ),
        "bfloat16 / float32 memory of the steps beyond the weights (reported)": round(
            half["training_mb"] / full["training_mb"], 3
        ),
        "checkpointing / none, training memory (spt, 4 x 512)": ratio(
            checkpointed["training_mb"] / plain["training_mb"], "<= 0.6"
        ),
        # The price, reported: a frozen backbone's step is a forward and a backward of about a forward's cost,
        # and checkpointing adds a third (1.5x in theory).
        "checkpointing / none, step time (spt, 4 x 512; reported)": round(checkpointed["step_s"] / plain["step_s"], 3),
    }
    save("precision", rows)
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
