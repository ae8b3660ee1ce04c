"""Masked-LM training with the output layer on the masked positions only, against the
standard head over every position (``model(labels=...)``): tokens per second of a full
training step (forward, backward, AdamW), same model, batch and masks.

Target: >= 2x tokens/s. The gain comes from the output layer (hidden x vocabulary),
so it grows with the vocabulary: measured on the tiny demo model and on an XLM-R-shaped model
with XLM-R's full 250,002-token vocabulary (depth cut to 2 layers to fit the CPU).

    python benchmarks/bench_mlm_head.py            # prints a table, updates benchmarks/results.json
"""

from __future__ import annotations

import statistics
import time

import torch
from record import ratio, save  # benchmarks/ is on sys.path when a script runs
from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

from xlprompt.models.mlm import masked_positions_loss

SHAPES = {
    "tiny (demo: 3 x 128, vocab 768)": (
        {
            "num_hidden_layers": 3,
            "hidden_size": 128,
            "num_attention_heads": 4,
            "intermediate_size": 512,
            "vocab_size": 768,
        },
        128,
        40,
    ),
    "xlm-r-base shape (2 x 768, vocab 250,002)": (
        {
            "num_hidden_layers": 2,
            "hidden_size": 768,
            "num_attention_heads": 12,
            "intermediate_size": 3072,
            "vocab_size": 250_002,
        },
        8,
        64,
    ),
}
ROUNDS, STEPS = 3, 2


def step_full(model, inputs, attention, targets, chosen):
    return model(input_ids=inputs, attention_mask=attention, labels=targets.masked_fill(~chosen, -100)).loss


def measure(shape: dict, batch: int, seq: int) -> dict:
    torch.manual_seed(0)
    config = XLMRobertaConfig(max_position_embeddings=seq + 2, type_vocab_size=1, **shape)
    config._attn_implementation = "eager"
    model = XLMRobertaForMaskedLM(config)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    generator = torch.Generator().manual_seed(0)
    targets = torch.randint(5, shape["vocab_size"], (batch, seq), generator=generator)
    attention = torch.ones(batch, seq, dtype=torch.long)
    chosen = torch.rand(batch, seq, generator=generator) < 0.15  # BERT's 15% of positions
    inputs = targets.masked_fill(chosen, 4)
    losses = {
        "full": lambda: step_full(model, inputs, attention, targets, chosen),
        "masked_only": lambda: masked_positions_loss(model, inputs, attention, targets, chosen),
    }
    model.eval()  # without dropout, the two must compute the same loss
    with torch.no_grad():
        torch.testing.assert_close(losses["full"](), losses["masked_only"]())
    model.train()
    times = {name: [] for name in losses}
    for loss_fn in losses.values():  # warm-up: allocator, optimizer state
        optimizer.zero_grad(set_to_none=True)
        loss_fn().backward()
        optimizer.step()
    for _ in range(ROUNDS):
        for name, loss_fn in losses.items():
            start = time.perf_counter()
            for _ in range(STEPS):
                optimizer.zero_grad(set_to_none=True)
                loss_fn().backward()
                optimizer.step()
            times[name].append((time.perf_counter() - start) / STEPS)
    full, masked = statistics.median(times["full"]), statistics.median(times["masked_only"])
    tokens = batch * seq
    return {
        "full_head_tokens_per_s": round(tokens / full, 1),
        "masked_only_tokens_per_s": round(tokens / masked, 1),
        **ratio(full / masked, ">= 2"),
        "batch": batch,
        "seq": seq,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    rows = {name: measure(*spec) for name, spec in SHAPES.items()}
    print(f"{'model':<45} {'full head tok/s':>16} {'masked only tok/s':>18} {'ratio':>6}  target  met")
    for name, r in rows.items():
        print(
            f"{name:<45} {r['full_head_tokens_per_s']:>16.1f} {r['masked_only_tokens_per_s']:>18.1f} "
            f"{r['ratio']:>6.2f}  >= 2    {r['met']}"
        )
    save("mlm_masked_only_vs_full_head", rows)


if __name__ == "__main__":
    main()
