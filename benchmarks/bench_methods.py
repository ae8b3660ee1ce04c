"""Step time and training memory of every trainable method against spt and full_ft, same batch.

Each method's training step is xlprompt's own (methods.trainable.parameter_groups, methods.adapters.attach_lora for
lora, methods.training.train_step) on a randomly initialised XLM-R of each shape in shapes.py, with a
16-token prompt, batch 32 x 48 tokens. Each measurement runs in a fresh process (so its peak
memory is its own): the step time is the mean of STEPS steps after a warm-up step, and the
training memory is the process's peak resident memory minus its resident memory just before
the first step (activations, gradients and optimizer state; the model itself is in both).
Rounds alternate between the methods so that machine noise hits them alike; the report is
the median over rounds, with ratios against spt and full_ft.

    python benchmarks/bench_methods.py            # prints a table, updates benchmarks/results.json
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
from record import save  # benchmarks/ is on sys.path when a script runs
from shapes import SHAPES, prompted_for

BATCH, SEQ, PROMPT, ROUNDS, STEPS = 32, 48, 16, 3, 5
METHODS = ["spt", "deep_prompt", "full_ft", "ltp", "lora", "bitfit"]


def resident_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def measure_one(method: str, shape_name: str) -> dict:
    """One method's step time and training memory, in this process."""
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

    from xlprompt.methods.ltp import TicketConfig, maskable_names, top_k_mask
    from xlprompt.methods.trainable import parameter_groups, trainable_parameter_count
    from xlprompt.methods.training import train_step

    torch.set_num_threads(2)
    torch.manual_seed(0)
    shape = SHAPES[shape_name]
    config = XLMRobertaConfig(max_position_embeddings=SEQ + PROMPT + 2, type_vocab_size=1, **shape)
    backbone = XLMRobertaForMaskedLM(config)
    model, cfg = prompted_for(backbone, method, PROMPT, list(range(6)))  # backbone_lr: TrainConfig's 1e-4
    masks = {}
    if method == "ltp":  # a random 20% ticket: the step's cost does not depend on which entries
        shapes = {name: p.shape for name, p in backbone.named_parameters()}
        names = maskable_names(shapes, TicketConfig(sparsity=0.2))
        scores = torch.rand(sum(shapes[n].numel() for n in names))
        flat = top_k_mask(scores, round(0.2 * scores.numel()))
        masks = {n: m.view(shapes[n]) for n, m in zip(names, flat.split([shapes[n].numel() for n in names]))}
    optimizer = torch.optim.AdamW(parameter_groups(model, cfg, masks))
    model.train(cfg.trains_backbone)
    generator = torch.Generator().manual_seed(0)
    batch = {
        "input_ids": torch.randint(5, shape["vocab_size"], (BATCH, SEQ), generator=generator),
        "attention_mask": torch.ones(BATCH, SEQ, dtype=torch.long),
        "mask_index": torch.full((BATCH,), SEQ - 2),
        "labels": torch.randint(6, (BATCH,), generator=generator),
    }
    before = resident_mb()
    train_step(model, optimizer, batch)  # warm-up: allocator, optimizer state
    start = time.perf_counter()
    for _ in range(STEPS):
        train_step(model, optimizer, batch)
    seconds = (time.perf_counter() - start) / STEPS
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    trainable = trainable_parameter_count(model, cfg, masks)  # as meta.json counts it (ltp: the ticket's entries)
    return {"step_s": seconds, "training_mb": peak - before, "peak_mb": peak, "trainable_parameters": trainable}


def child(method: str, shape_name: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--one", method, shape_name], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--one", nargs=2, metavar=("METHOD", "SHAPE"), help="measure one method in this process")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(*args.one)))
        return
    rows = {}
    for shape_name in SHAPES:
        runs = {method: [] for method in METHODS}
        for _ in range(ROUNDS):
            for method in METHODS:
                runs[method].append(child(method, shape_name))
        table = {}
        for method, measured in runs.items():
            table[method] = {
                "step_s": round(statistics.median(r["step_s"] for r in measured), 5),
                "training_mb": round(statistics.median(r["training_mb"] for r in measured), 1),
                "peak_mb": round(statistics.median(r["peak_mb"] for r in measured), 1),
                "trainable_parameters": measured[0]["trainable_parameters"],
            }
        for row in table.values():
            for base in ("spt", "full_ft"):
                row[f"step_vs_{base}"] = round(row["step_s"] / table[base]["step_s"], 3)
                row[f"memory_vs_{base}"] = round(row["training_mb"] / table[base]["training_mb"], 3)
        rows[shape_name] = {**table, "batch": BATCH, "seq": SEQ, "prompt": PROMPT, "threads": 2, "rounds": ROUNDS}
        print(shape_name)
        print(
            f"  {'method':<12} {'trainable':>11} {'s/step':>8} {'vs spt':>7} {'vs full_ft':>10} "
            f"{'train MB':>9} {'vs spt':>7} {'vs full_ft':>10}"
        )
        for method, r in table.items():
            print(
                f"  {method:<12} {r['trainable_parameters']:>11,} {r['step_s']:>8.4f} {r['step_vs_spt']:>7.2f} "
                f"{r['step_vs_full_ft']:>10.2f} {r['training_mb']:>9.1f} {r['memory_vs_spt']:>7.2f} "
                f"{r['memory_vs_full_ft']:>10.2f}"
            )
    save("methods_step_and_memory", rows)


if __name__ == "__main__":
    main()
