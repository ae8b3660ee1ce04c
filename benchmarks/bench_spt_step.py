"""A frozen-backbone prompt-tuning step (spt) against full fine-tuning and against PEFT.

Targets:
1. spt step time / full_ft step time <= 0.70 (no weight gradients, no optimizer state for the
   backbone) and peak training memory spt / full_ft <= 0.6;
2. xlprompt's spt step / PEFT prompt tuning of the same model and prompt: time <= 1.0, memory
   <= 1.0. PEFT's path for a masked LM (``task_type=FEATURE_EXTRACTION``: PEFT has no
   masked-LM type) returns the LM head's logits at every position, from which the verbalizer
   words are read at <mask>; xlprompt runs the head at <mask> only.

Each configuration runs in its own process (so peak memory is its own): the model is built,
then Linux's peak-RSS counter is reset (/proc/self/clear_refs) and the training steps run;
"training memory" = peak RSS during the steps - RSS before them. Time: median of per-round
step times; rounds of the configurations alternate so that machine noise hits all alike.

    python benchmarks/bench_spt_step.py            # prints a table, updates benchmarks/results.json
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from record import ratio, save  # benchmarks/ is on sys.path when a script runs
from shapes import SHAPES

KINDS = ("spt", "full_ft", "peft")
BATCH, SEQ, PROMPT, ROUNDS, STEPS = 32, 48, 16, 3, 5


def rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def one(kind: str, shape_name: str) -> dict:
    """Build one configuration, run STEPS training steps; time per step and training memory."""
    import torch
    import torch.nn.functional as F
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

    from xlprompt.methods.trainable import parameter_groups
    from xlprompt.methods.training import train_step
    from xlprompt.models.prompting import PromptedLM, SoftPrompt
    from xlprompt.runtime.settings import TrainConfig

    torch.manual_seed(0)
    shape = SHAPES[shape_name]
    config = XLMRobertaConfig(max_position_embeddings=SEQ + PROMPT + 2, type_vocab_size=1, **shape)
    config._attn_implementation = "eager"
    backbone = XLMRobertaForMaskedLM(config)
    generator = torch.Generator().manual_seed(0)
    batch = {
        "input_ids": torch.randint(5, shape["vocab_size"], (BATCH, SEQ), generator=generator),
        "attention_mask": torch.ones(BATCH, SEQ, dtype=torch.long),
        "mask_index": torch.full((BATCH,), SEQ - 2),
        "labels": torch.randint(6, (BATCH,), generator=generator),
    }
    verbalizer = torch.arange(6)
    if kind == "peft":
        from peft import PromptTuningConfig, TaskType, get_peft_model

        model = get_peft_model(
            backbone, PromptTuningConfig(task_type=TaskType.FEATURE_EXTRACTION, num_virtual_tokens=PROMPT)
        )
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.3)

        def step() -> None:
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            at_mask = logits[torch.arange(BATCH), batch["mask_index"] + PROMPT][:, verbalizer]  # (B, 6)
            loss = F.cross_entropy(at_mask, batch["labels"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    else:
        model = PromptedLM(backbone, SoftPrompt(PROMPT, config.hidden_size), verbalizer.tolist())
        optimizer = torch.optim.AdamW(parameter_groups(model, TrainConfig(method=kind, prompt_length=PROMPT), {}))

        def step() -> None:
            train_step(model, optimizer, batch)

    # Both frozen setups run the backbone in eval mode (no dropout), as xlprompt's spt does.
    model.train(kind == "full_ft")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS counter
    before = rss_kb("VmRSS")
    times = []
    for _ in range(STEPS + 1):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {
        "step_s": statistics.median(times[1:]),
        "memory_mb": (rss_kb("VmHWM") - before) / 1024,
        "threads": torch.get_num_threads(),
    }


def run(kind: str, shape_name: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--one", kind, shape_name], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(shape_name: str) -> dict:
    rounds = {kind: [] for kind in KINDS}
    for _ in range(ROUNDS):
        for kind in KINDS:
            rounds[kind].append(run(kind, shape_name))
    step = {k: statistics.median(r["step_s"] for r in rounds[k]) for k in KINDS}
    memory = {k: statistics.median(r["memory_mb"] for r in rounds[k]) for k in KINDS}
    ratios = {
        "spt_vs_full_ft_time": (step["spt"] / step["full_ft"], 0.70),
        "spt_vs_full_ft_memory": (memory["spt"] / memory["full_ft"], 0.60),
        "spt_vs_peft_time": (step["spt"] / step["peft"], 1.0),
        "spt_vs_peft_memory": (memory["spt"] / memory["peft"], 1.0),
    }
    return {
        "step_s": {k: round(v, 5) for k, v in step.items()},
        "training_memory_mb": {k: round(v, 1) for k, v in memory.items()},
        "ratios": {name: ratio(value, f"<= {limit}") for name, (value, limit) in ratios.items()},
        "batch": BATCH,
        "seq": SEQ,
        "prompt": PROMPT,
        "rounds": ROUNDS,
        "steps": STEPS,
        "threads": rounds["spt"][0]["threads"],
    }


def main() -> None:
    rows = {name: measure(name) for name in SHAPES}
    print(f"{'model':<45} {'ratio':<24} {'value':>7}  target   met")
    for name, r in rows.items():
        for what, v in r["ratios"].items():
            print(f"{name:<45} {what:<24} {v['ratio']:>7.3f}  {v['target']:<7}  {v['met']}")
        print(f"{'':<45} step s: {r['step_s']}, training memory MB: {r['training_memory_mb']}")
    save("spt_step_vs_full_ft_and_peft", rows)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--one":
        print(json.dumps(one(sys.argv[2], sys.argv[3])))
    else:
        main()
