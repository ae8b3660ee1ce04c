"""Evaluating P trained prompts on every language of a data set, three ways:

- per_process: one ``python -m xlprompt evaluate`` per prompt: start-up, backbone load and
  tokenisation every time (what a rule per prompt would cost);
- one_by_one: one process for all prompts, sharing the loaded backbone and the tokenised test
  sets, the prompts evaluated one after another (``evaluate --one-by-one``);
- together: one process, and the prompts in the same forward passes (``evaluate``, what the
  workflow's evaluate rule runs).

Each way is timed as a whole command (wall clock, 2 torch threads), on the demo's shapes: a
6-language, 6-topic world with 100 test examples per class and language, the demo backbone
(3 x 128; random weights after one pretraining step: speed does not depend on them), P = 8
spt prompts of length 16. Targets: together / per_process throughput >= 3; together against
one_by_one is reported (batching across prompts should not lose). All three must write the
same accuracies.

    python benchmarks/bench_evaluation.py          # prints a table, updates benchmarks/results.json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from record import ratio, save  # benchmarks/ is on sys.path when a script runs

os.environ.setdefault("XLPROMPT_PROGRESS", "0")  # before xlprompt reads it: no bars in the table

from xlprompt.data.generated import generate_world
from xlprompt.data.world import LanguageSpec, WorldConfig
from xlprompt.methods.training import train_prompt
from xlprompt.models.pretrain import pretrain
from xlprompt.runtime.settings import BackboneShape, MLMSettings, TrainConfig

PROMPTS, LENGTH, THREADS = 8, 16, 2
WORLD = WorldConfig(
    seed=0,
    n_topics=6,
    corpus_documents=6000,
    train_per_class=10,
    dev_per_class=5,
    test_per_class=100,
    languages=(
        LanguageSpec("en"),
        LanguageSpec("sh75", shared_vocab=0.75),
        LanguageSpec("rev", word_order="reversed"),
        LanguageSpec("sh50", shared_vocab=0.5),
        LanguageSpec("sh25", shared_vocab=0.25, word_order="sov"),
        LanguageSpec("far", shared_vocab=0.0, script="greek", word_order="sov", morphology=1.0),
    ),
)
SHAPE = BackboneShape(layers=3, hidden=128, heads=4, ffn=512, vocab_size=2000)


def build(root: Path) -> tuple[Path, Path, list[Path]]:
    world, backbone = root / "world", root / "backbone"
    world.mkdir()
    generate_world(WORLD, world)
    pretrain(world, backbone, SHAPE, MLMSettings(steps=1, batch_size=8))
    prompts = []
    for seed in range(PROMPTS):
        prompts.append(root / "prompts" / f"seed{seed}")
        train_prompt(
            backbone,
            world / "topic",
            TrainConfig(method="spt", prompt_length=LENGTH, steps=2, batch_size=8, eval_every=2, seed=seed),
            prompts[-1],
        )
    return world / "topic", backbone, prompts


def evaluate_command(prompts: list[Path], outs: list[Path], backbone: Path, data: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "xlprompt",
        "evaluate",
        "--backbone",
        str(backbone),
        "--data",
        str(data),
        "--threads",
        str(THREADS),
        "--prompt",
        *map(str, prompts),
        "--out",
        *map(str, outs),
        *extra,
    ]


def timed_commands(commands: list[list[str]]) -> float:
    env = {**os.environ, "XLPROMPT_PROGRESS": "0", "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    for command in commands:
        subprocess.run(command, check=True, env=env, capture_output=True)
    return time.perf_counter() - start


def accuracies(outs: list[Path]) -> list[list[float]]:
    return [[row["accuracy"] for row in json.loads(out.read_text())["rows"]] for out in outs]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data, backbone, prompts = build(root)
        outs = {
            way: [root / way / f"{p.name}.json" for p in prompts] for way in ("per_process", "one_by_one", "together")
        }
        seconds = {
            "together": timed_commands([evaluate_command(prompts, outs["together"], backbone, data)]),
            "one_by_one": timed_commands(
                [evaluate_command(prompts, outs["one_by_one"], backbone, data, "--one-by-one")]
            ),
            "per_process": timed_commands(
                [evaluate_command([p], [o], backbone, data) for p, o in zip(prompts, outs["per_process"])]
            ),
        }
        examples = sum(json.loads(outs["together"][0].read_text())["rows"][i]["n"] for i in range(len(WORLD.languages)))
        same = accuracies(outs["together"]) == accuracies(outs["one_by_one"]) == accuracies(outs["per_process"])
    throughput = {way: PROMPTS * examples / s for way, s in seconds.items()}
    rows = {
        "prompts": PROMPTS,
        "prompt_length": LENGTH,
        "languages": len(WORLD.languages),
        "examples_per_prompt": examples,
        "threads": THREADS,
        "seconds": {way: round(s, 2) for way, s in seconds.items()},
        "examples_per_s": {way: round(t, 1) for way, t in throughput.items()},
        "together_vs_per_process": ratio(throughput["together"] / throughput["per_process"], ">= 3"),
        "together_vs_one_by_one": round(throughput["together"] / throughput["one_by_one"], 3),
        "same_accuracies": same,
    }
    print(f"{'way':<12} {'seconds':>8} {'examples/s':>11}   ({PROMPTS} prompts x {examples} test examples)")
    for way in seconds:
        print(f"{way:<12} {seconds[way]:>8.2f} {throughput[way]:>11.1f}")
    r = rows["together_vs_per_process"]
    print(
        f"together / per_process throughput {r['ratio']:.2f} (target {r['target']}: {r['met']}); "
        f"together / one_by_one {rows['together_vs_one_by_one']:.2f}; same accuracies: {same}"
    )
    save("evaluation_of_p_prompts", rows)
    if not same:
        raise SystemExit("the three ways of evaluating gave different accuracies")


if __name__ == "__main__":
    main()
