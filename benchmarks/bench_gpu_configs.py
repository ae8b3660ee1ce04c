"""What the papers' configs cost on one GPU: measured step and scoring times.

The Hub is out of reach where this runs, so each backbone is its real architecture and shape
with random weights (time does not depend on the values): XLM-R base for config/xnli-xlmr.yaml
and XGLM-564M for config/sib200-xglm.yaml. Through the library's own code (PromptedLM,
DeepPromptedLM, attach_lora, train_step: bf16 autocast, fused AdamW, SDPA attention) it times one
training step of every (method, prompt length) the config trains (ltp as full_ft: on the CPU an ltp
step costs a full_ft step to within 7%, benchmarks/README.md), at its batch size and at the full max_length (128
tokens: an upper bound, real batches are shorter), LTP's masked-LM fine-tuning step, and scoring
throughput (rows per second, batch 128). The config's cost is then those times x its steps and test rows: the
arithmetic is in the output; job start-up and model loading (seconds per job) are not included.

With grouping (training.group_size, xlprompt.methods.training.train_prompts) the frozen-backbone prompts of
one length train together: ``training_s_grouped`` times one joint step of such a group (every
frozen method x seed of a length, at most GROUP_SIZE prompts) x the config's steps, in place of
their one-prompt steps x seeds.

    PYTHONPATH=src python benchmarks/bench_gpu_configs.py      # on a machine with CUDA
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from record import save
from shapes import prompted_for
from transformers import XGLMConfig, XGLMForCausalLM, XLMRobertaConfig, XLMRobertaForMaskedLM

from xlprompt.methods.trainable import parameter_groups
from xlprompt.methods.training import joint_train_step, train_step
from xlprompt.models.compute import choose_compute, place
from xlprompt.models.mlm import train_masked_lm
from xlprompt.models.prompting import PromptedLM, SoftPrompt
from xlprompt.runtime.settings import GROUP_SIZE, MLMSettings, TrainConfig

SEQ = 128
# Test rows each trained prompt is scored on: XNLI 15 x 5,010 + AmericasNLI 7,486; SIB-200 205 x 204.
CONFIGS = {
    "xnli-xlmr": {
        "arch": "xlm-roberta-base",
        "batch": 8,
        "steps": 1000,
        "lengths": [16],
        "seeds": 4,
        "mlm_steps": 2000,
        "mlm_batch": 32,
        "methods": {
            "spt": "spt",
            "ltp": "full_ft",
            "full_ft": "full_ft",
            "deep_prompt": "deep_prompt",
            "lora": "lora",
            "bitfit": "bitfit",
        },
        "test_rows": 15 * 5010 + 7486,
    },
    "sib200-xglm": {
        "arch": "xglm-564M",
        "batch": 8,
        "steps": 1400,
        "lengths": [10, 20, 50],
        "seeds": 4,
        "methods": {"spt": "spt", "spt_reparam": "spt", "full_ft": "full_ft", "full_ft_reparam": "full_ft"},
        "test_rows": 205 * 204,
    },
}


def backbone_of(arch: str, prompt_room: int) -> torch.nn.Module:
    torch.manual_seed(0)
    if arch == "xlm-roberta-base":
        return XLMRobertaForMaskedLM(
            XLMRobertaConfig(
                num_hidden_layers=12,
                hidden_size=768,
                num_attention_heads=12,
                intermediate_size=3072,
                vocab_size=250_002,
                max_position_embeddings=SEQ + prompt_room + 2,
                type_vocab_size=1,
            )
        )
    return XGLMForCausalLM(
        XGLMConfig(
            num_layers=24,
            d_model=1024,
            attention_heads=16,
            ffn_dim=4096,
            vocab_size=256_008,
            max_position_embeddings=2048,
        )
    )


def synthetic_batch(batch: int, vocab: int, device: torch.device) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    rows = {
        "input_ids": torch.randint(5, vocab, (batch, SEQ), generator=generator),
        "attention_mask": torch.ones(batch, SEQ, dtype=torch.long),
        "mask_index": torch.full((batch,), SEQ - 2),
        "labels": torch.randint(7, (batch,), generator=generator),
    }
    return {key: value.to(device) for key, value in rows.items()}


def seconds_per_step(backbone, method: str, length: int, batch: int, compute, steps: int) -> float:
    model, cfg = prompted_for(backbone, method, length, list(range(5, 12)))
    place(model, compute)
    optimizer = compute.optimizer(parameter_groups(model, cfg, {}), 0.0)
    data = synthetic_batch(batch, backbone.config.vocab_size, compute.device)
    for _ in range(3):  # warm-up: kernels, allocator, optimizer state
        train_step(model, optimizer, data)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        train_step(model, optimizer, data)
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def seconds_per_joint_step(
    backbone, methods: list[str], seeds: int, length: int, batch: int, compute, steps: int
) -> tuple[float, int]:
    """One joint step of the frozen-backbone prompts of one length (each its own batch); and how many."""
    dim = backbone.get_input_embeddings().weight.shape[1]
    n = min(len(methods) * seeds, GROUP_SIZE)
    models = [
        place(PromptedLM(backbone, SoftPrompt(length, dim), list(range(5, 12))), compute).eval() for _ in range(n)
    ]
    optimizers = [compute.optimizer(parameter_groups(m, TrainConfig(prompt_length=length), {}), 0.0) for m in models]
    batches = [synthetic_batch(batch, backbone.config.vocab_size, compute.device) for _ in range(n)]
    for _ in range(3):
        joint_train_step(models, optimizers, batches, 1)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        joint_train_step(models, optimizers, batches, 1)
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps, n


@torch.no_grad()
def rows_per_second(backbone, length: int, compute, batches: int = 10, batch: int = 128) -> float:
    model = place(
        PromptedLM(backbone, SoftPrompt(length, backbone.get_input_embeddings().weight.shape[1]), list(range(5, 12))),
        compute,
    ).eval()
    data = synthetic_batch(batch, backbone.config.vocab_size, compute.device)
    with compute.autocast():
        model(data["input_ids"], data["attention_mask"], data["mask_index"])
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(batches):
            model(data["input_ids"], data["attention_mask"], data["mask_index"])
        torch.cuda.synchronize()
    return batches * batch / (time.perf_counter() - start)


class _Vocabulary:
    """What train_masked_lm asks of a tokenizer, for synthetic token ids."""

    def __init__(self, size: int) -> None:
        self.size, self.all_special_ids, self.pad_token_id, self.mask_token_id = size, [0, 1, 2, 3], 1, size - 1

    def __len__(self) -> int:
        return self.size


def mlm_seconds_per_step(backbone, compute, batch: int, length: int, steps: int) -> float:
    """LTP's masked-LM fine-tuning (finetune_mlm's loop), timed after 3 warm-up steps."""
    vocab = backbone.config.vocab_size
    generator = torch.Generator().manual_seed(0)
    corpus = torch.randint(5, vocab - 1, (256, length), generator=generator).tolist()
    backbone.requires_grad_(True)
    warm = MLMSettings(steps=3, batch_size=batch, checkpoint_every=10**9)
    train_masked_lm(backbone, _Vocabulary(vocab), corpus, warm, compute=compute)
    torch.cuda.synchronize()
    start = time.perf_counter()
    train_masked_lm(backbone, _Vocabulary(vocab), corpus, MLMSettings(steps=steps, batch_size=batch), compute=compute)
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per (method, length)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("bench_gpu_configs: no CUDA device here; nothing measured")
        return
    compute = choose_compute("auto")
    results = {"device": torch.cuda.get_device_name(0), "seq": SEQ}
    for name, spec in CONFIGS.items():
        backbone = backbone_of(spec["arch"], max(spec["lengths"]))
        times, train_s, grouped_s, joint = {}, 0.0, 0.0, {}
        for listed, method in spec["methods"].items():
            for length in spec["lengths"]:
                backbone.requires_grad_(False)
                # LoRA's adapters stay in the backbone they are attached to: a fresh one for them.
                model = backbone_of(spec["arch"], max(spec["lengths"])) if method == "lora" else backbone
                step = seconds_per_step(model, method, length, spec["batch"], compute, args.steps)
                del model
                times[f"{listed}/L{length}"] = round(step, 5)
                train_s += step * spec["steps"] * spec["seeds"]
                if method != "spt":  # weights change (or deep prompts): a job per prompt, grouped or not
                    grouped_s += step * spec["steps"] * spec["seeds"]
        frozen = [listed for listed, method in spec["methods"].items() if method == "spt"]
        for length in spec["lengths"]:
            backbone.requires_grad_(False)
            step, n = seconds_per_joint_step(
                backbone, frozen, spec["seeds"], length, spec["batch"], compute, args.steps
            )
            joint[f"L{length}"] = {"prompts": n, "joint_step_s": round(step, 5)}
            grouped_s += step * spec["steps"] * math.ceil(len(frozen) * spec["seeds"] / n)
        scoring = {f"L{length}": round(rows_per_second(backbone, length, compute), 1) for length in spec["lengths"]}
        mlm = {}
        if "mlm_steps" in spec:  # LTP's theta_MLM: finetune_mlm at the config's batch size, max_length 64
            mlm["mlm_step_s"] = round(mlm_seconds_per_step(backbone, compute, spec["mlm_batch"], 64, args.steps), 5)
            train_s += mlm["mlm_step_s"] * spec["mlm_steps"]
            grouped_s += mlm["mlm_step_s"] * spec["mlm_steps"]
        prompts = len(spec["methods"]) * spec["seeds"]
        eval_s = sum(prompts * spec["test_rows"] / scoring[f"L{length}"] for length in spec["lengths"])
        results[name] = {
            "arch": spec["arch"],
            "batch": spec["batch"],
            "steps": spec["steps"],
            "step_s": times,
            **mlm,
            "scoring_rows_per_s": scoring,
            "training_s": round(train_s, 1),
            "joint_steps": joint,
            "training_s_grouped": round(grouped_s, 1),
            "evaluation_s": round(eval_s, 1),
            "arithmetic": f"sum over (method, length) of step_s x {spec['steps']} steps x {spec['seeds']} "
            f"seeds (+ mlm_step_s x {spec.get('mlm_steps', 0)}); {prompts} prompts per "
            f"length x {spec['test_rows']} test rows / rows_per_s",
        }
        print(name, results[name], flush=True)
        del backbone
        torch.cuda.empty_cache()
    save("gpu_paper_configs", results)


if __name__ == "__main__":
    main()
