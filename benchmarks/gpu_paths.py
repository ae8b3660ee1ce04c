"""The GPU code paths of training and evaluation, against the CPU.

On a small generated world and a tiny pretrained backbone: the same spt and full_ft prompts are
trained through ``xlprompt.methods.training.train_prompt`` on the GPU (bf16 autocast, TF32, fused AdamW,
checkpoints written from the GPU) and on the CPU (float32), each evaluated on its own device
through ``evaluate_prompts``; then a tiny XGLM trains a prompt with multi-token label words on
the GPU; then the other stages of GPU rules (pretraining, evaluate_transfer with a zero-shot
label map, prompt activations alone and on task inputs, neuron masking, a projector) on both.
Records dev losses, test accuracies, their GPU - CPU differences and seconds.

    PYTHONPATH=src python benchmarks/gpu_paths.py          # on a machine with CUDA
    python benchmarks/gpu_paths.py --cpu                   # the script itself, anywhere (nothing recorded)

bf16 rounds differently from float32, so the two devices agree closely, not bit for bit.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # tiny_models: the tests' builders of tiny real architectures

from record import save
from tiny_models import build_tiny

from xlprompt.analysis.prompt_metrics import evaluate_prompts
from xlprompt.data.contract import load_labels, write_labels
from xlprompt.data.generated import generate_world
from xlprompt.data.world import LanguageSpec, WorldConfig
from xlprompt.methods.training import train_prompt
from xlprompt.models.compute import CPU, choose_compute
from xlprompt.models.pretrain import pretrain
from xlprompt.runtime.settings import BackboneShape, MLMSettings, TrainConfig

WORLD = WorldConfig(
    seed=3,
    languages=(LanguageSpec("en"), LanguageSpec("rev", word_order="reversed")),
    n_topics=3,
    corpus_documents=3000,
    train_per_class=40,
    dev_per_class=15,
    test_per_class=30,
)
SHAPE = BackboneShape(layers=2, hidden=64, heads=4, ffn=128, vocab_size=800, max_length=48, max_prompt_length=16)


def run(root: Path, backbone: Path, data: Path, cfg: TrainConfig, compute, name: str) -> dict:
    out = root / f"{name}-{compute.device.type}"
    started = time.perf_counter()
    summary = train_prompt(
        backbone, data, cfg, out, checkpoint_dir=root / f"ckpt-{name}-{compute.device.type}", compute=compute
    )
    trained = time.perf_counter() - started
    document = evaluate_prompts([out], backbone, data, None, compute=compute)[0]
    return {
        "dev_loss": summary["best_dev_loss"],
        "best_step": summary["best_step"],
        "train_s": round(trained, 2),
        "accuracy": {row["lang"]: round(row["accuracy"], 4) for row in document["rows"]},
    }


def other_stages(root: Path, world: Path, backbone: Path, prompt: Path, compute) -> dict:
    """The other GPU rules' library calls on ``compute``: what each computes, in a few numbers."""
    from xlprompt.analysis.activations import collect
    from xlprompt.analysis.masking import masking
    from xlprompt.analysis.neurons import top_neurons
    from xlprompt.analysis.transfer_metrics import evaluate_transfer
    from xlprompt.methods.projector import ProjectorConfig, train_projector

    side = compute.device.type
    started = time.perf_counter()
    model = root / f"pretrained-{side}"
    pretrain(world, model, SHAPE, MLMSettings(steps=60, batch_size=64), compute=compute)
    final_loss = json.loads((model / "pretrain_log.jsonl").read_text().splitlines()[-1])["loss"]
    names = load_labels(world / "topic").names
    transfer = evaluate_transfer(
        backbone,
        world / "topic",
        [("random", prompt)],
        [("topic", prompt)],
        {"topic": {"topic": {name: name for name in names}}},
        None,
        compute=compute,
    )
    alone = collect(backbone, [("topic", prompt)], compute=compute)
    on_task = collect(backbone, [("topic", prompt)], "task", world, 50, compute=compute)
    table = masking(backbone, world, [("topic", prompt)], alone, 0.2, None, compute=compute)
    projector = train_projector(
        prompt,
        backbone,
        [world / "topic"],
        ProjectorConfig(hidden=32, steps=40, batch_size=16, eval_every=10, max_length=48),
        root / f"projector-{side}",
        compute=compute,
    )
    key = next(iter(alone))
    return {
        "pretrain_final_loss": final_loss,
        "transfer_accuracy": {run["init"]: round(run["rows"][0]["accuracy"], 4) for run in transfer["runs"]},
        "zero_shot_loss": round(transfer["runs"][1]["rows"][0]["loss"], 5),
        "active_neurons_alone": int((alone[key] > 0).sum()),
        "active_neurons_task": int((on_task[key] > 0).sum()),
        "top_neurons": top_neurons(alone[key], 0.2).flatten().nonzero().flatten().tolist()[:20],
        "masking_accuracy": table.groupby("condition")["accuracy"].mean().round(4).to_dict(),
        "projector_dev_loss": projector["best_dev_loss"],
        "seconds": round(time.perf_counter() - started, 2),
    }


def main() -> None:
    check_only = "--cpu" in sys.argv[1:]  # both sides on the CPU: checks this script, measures nothing
    if not torch.cuda.is_available() and not check_only:
        print("gpu_paths: no CUDA device here; nothing measured")
        return
    gpu = CPU if check_only else choose_compute("auto")
    root = Path(tempfile.mkdtemp(prefix="xlprompt-gpu-"))
    try:
        world = root / "world"
        world.mkdir()
        generate_world(WORLD, world)
        backbone = root / "backbone"
        pretrain(world, backbone, SHAPE, MLMSettings(steps=150, batch_size=64))
        rows = {
            "device": "cpu" if check_only else torch.cuda.get_device_name(0),
            "bf16": gpu.bf16,
            "torch": torch.__version__,
        }
        for method, extra in (("spt", {}), ("full_ft", {"backbone_lr": 1e-4})):
            cfg = TrainConfig(
                method=method,
                prompt_length=8,
                steps=120,
                batch_size=16,
                eval_every=20,
                checkpoint_every=40,
                lr=0.3,
                max_length=48,
                seed=0,
                **extra,
            )
            on_gpu = run(root, backbone, world / "topic", cfg, gpu, method)
            on_cpu = run(root, backbone, world / "topic", cfg, CPU, method)
            rows[method] = {
                "gpu": on_gpu,
                "cpu": on_cpu,
                "dev_loss_difference": round(on_gpu["dev_loss"] - on_cpu["dev_loss"], 5),
                "accuracy_difference": {
                    lang: round(on_gpu["accuracy"][lang] - on_cpu["accuracy"][lang], 4) for lang in on_cpu["accuracy"]
                },
            }
            print(method, json.dumps(rows[method]), flush=True)
        # A causal LM with label words of several tokens (each spelled in pieces by this tokenizer).
        xglm = build_tiny("xglm", world, root / "xglm")
        data = root / "topic-words"
        shutil.copytree(world / "topic", data)
        labels = load_labels(data)
        write_labels(
            data,
            type(labels)(labels.task, labels.names, {**labels.verbalizers, "causal_lm": ["alpha", "beta", "gamma"]}),
        )
        cfg = TrainConfig(method="spt", prompt_length=8, steps=60, batch_size=16, eval_every=20, lr=0.3, max_length=48)
        rows["xglm_multi_token"] = {
            "gpu": run(root, xglm, data, cfg, gpu, "xglm"),
            "cpu": run(root, xglm, data, cfg, CPU, "xglm"),
        }
        print("xglm", json.dumps(rows["xglm_multi_token"]), flush=True)
        spt_prompt = root / "spt-cpu"  # trained above; every stage below reads the same prompt
        rows["other_stages"] = {
            "gpu": other_stages(root, world, backbone, spt_prompt, gpu),
            "cpu": other_stages(root, world, backbone, spt_prompt, CPU),
        }
        print("other stages", json.dumps(rows["other_stages"]), flush=True)
        if not check_only:
            save("gpu_paths", rows)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
