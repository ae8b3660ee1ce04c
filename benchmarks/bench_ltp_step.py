"""LTP's training step against a full fine-tuning step: same model, batch and prompt.

Target: ltp step time <= 1.15 x full_ft step time (the ticket's gradient mask must
not dominate). Both run xlprompt's own code (methods.trainable.parameter_groups, methods.training.train_step) on a
randomly initialised XLM-R with a random 20% ticket; rounds alternate between the methods so
that machine noise hits both alike, and the ratio of the medians is reported.

    python benchmarks/bench_ltp_step.py            # prints a table, updates benchmarks/results.json
"""

from __future__ import annotations

import copy
import statistics
import time

import torch
from record import ratio, save  # benchmarks/ is on sys.path when a script runs
from shapes import SHAPES
from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

from xlprompt.methods.ltp import TicketConfig, maskable_names, top_k_mask
from xlprompt.methods.trainable import parameter_groups
from xlprompt.methods.training import train_step
from xlprompt.models.prompting import PromptedLM, SoftPrompt
from xlprompt.runtime.settings import TrainConfig

BATCH, SEQ, PROMPT, ROUNDS, STEPS = 32, 48, 16, 5, 6


def random_ticket(model, sparsity: float, generator: torch.Generator) -> dict[str, torch.Tensor]:
    shapes = {n: p.shape for n, p in model.named_parameters()}
    names = maskable_names(shapes, TicketConfig(sparsity=sparsity))
    scores = torch.rand(sum(shapes[n].numel() for n in names), generator=generator)
    flat = top_k_mask(scores, round(sparsity * scores.numel()))
    return {n: m.view(shapes[n]) for n, m in zip(names, flat.split([shapes[n].numel() for n in names]))}


def setup(base, method: str, masks):
    backbone = copy.deepcopy(base)
    prompt = SoftPrompt(PROMPT, backbone.config.hidden_size)
    model = PromptedLM(backbone, prompt, list(range(6)))
    cfg = TrainConfig(method=method, prompt_length=PROMPT, backbone_lr=1e-4)
    optimizer = torch.optim.AdamW(parameter_groups(model, cfg, masks if method == "ltp" else {}))
    model.train()
    return model, optimizer


def measure(shape: dict) -> dict:
    torch.manual_seed(0)
    config = XLMRobertaConfig(max_position_embeddings=SEQ + PROMPT + 2, type_vocab_size=1, **shape)
    config._attn_implementation = "eager"
    base = XLMRobertaForMaskedLM(config)
    generator = torch.Generator().manual_seed(0)
    masks = random_ticket(base, 0.2, generator)
    batch = {
        "input_ids": torch.randint(5, shape["vocab_size"], (BATCH, SEQ), generator=generator),
        "attention_mask": torch.ones(BATCH, SEQ, dtype=torch.long),
        "mask_index": torch.full((BATCH,), SEQ - 2),
        "labels": torch.randint(6, (BATCH,), generator=generator),
    }
    runs = {m: setup(base, m, masks) for m in ("full_ft", "ltp")}
    times = {m: [] for m in runs}
    for model, optimizer in runs.values():
        train_step(model, optimizer, batch)  # warm-up: allocator, optimizer state
    for _ in range(ROUNDS):
        for method, (model, optimizer) in runs.items():
            start = time.perf_counter()
            for _ in range(STEPS):
                train_step(model, optimizer, batch)
            times[method].append((time.perf_counter() - start) / STEPS)
    full, ltp = statistics.median(times["full_ft"]), statistics.median(times["ltp"])
    return {
        "full_ft_step_s": round(full, 5),
        "ltp_step_s": round(ltp, 5),
        **ratio(ltp / full, "<= 1.15"),
        "batch": BATCH,
        "seq": SEQ,
        "prompt": PROMPT,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    rows = {name: measure(shape) for name, shape in SHAPES.items()}
    print(f"{'model':<45} {'full_ft s/step':>15} {'ltp s/step':>11} {'ratio':>6}  target  met")
    for name, r in rows.items():
        print(
            f"{name:<45} {r['full_ft_step_s']:>15.4f} {r['ltp_step_s']:>11.4f} {r['ratio']:>6.3f}  <=1.15  {r['met']}"
        )
    save("ltp_step_vs_full_ft_step", rows)


if __name__ == "__main__":
    main()
