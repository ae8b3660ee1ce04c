# Helpers shared by the rules: config validation, wildcard constraints, target lists and
# the command-line arguments each rule passes to its stage.

import json
import os

from xlprompt.checks import is_ltp, ticket_of, validate_config

# Schema (types, ranges, unknown keys), then relations between keys: before any job runs.
validate_config(config, workflow.source_path("../schemas/config.schema.yaml"))

# Nothing a rule runs may reach the Hugging Face Hub unless the rule downloads.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

EXPERIMENT = config["experiment"]
WORLD = config["world"]["name"]
MODEL = config["backbone"]["name"]
TASKS = config["tasks"]
METHODS = config["methods"]
SEEDS = config["seeds"]
LENGTHS = config["prompt"]["lengths"]
LTP = config.get("ltp", {})
TICKETS = sorted({ticket_of(m) for m in METHODS if is_ltp(m)})
THREADS = config.get("threads", 1)
PRETRAIN_THREADS = config["backbone"].get("threads", 2)


def _alternatives(values):
    return "|".join(str(v) for v in values)


wildcard_constraints:
    experiment=EXPERIMENT,
    world=WORLD,
    model=MODEL,
    task=_alternatives(TASKS),
    method=_alternatives(METHODS),
    ticket=_alternatives(TICKETS or ["default"]),
    length=r"\d+",
    seed=r"\d+",


def prompt_runs():
    """(task, method, length, seed) of every prompt the experiment trains or builds.

    no_prompt has no prompt (length 0) and nothing random, so it runs once, at the first seed.
    """
    for task in TASKS:
        for method in METHODS:
            lengths = [0] if method == "no_prompt" else LENGTHS
            seeds = SEEDS[:1] if method == "no_prompt" else SEEDS
            for length in lengths:
                for seed in seeds:
                    yield task, method, length, seed


def metrics_files(wildcards=None):
    return [
        f"results/{EXPERIMENT}/metrics/{MODEL}/{task}/{method}/L{length}/seed{seed}.json"
        for task, method, length, seed in prompt_runs()
    ]


def figure_files():
    return [f"results/{EXPERIMENT}/figures/heatmap_{task}.png" for task in TASKS] + [
        f"results/{EXPERIMENT}/figures/accuracy_vs_distance.png"
    ]


def all_targets(wildcards):
    return figure_files() + [f"results/{EXPERIMENT}/tables/per_language.csv"]


def folder_of_first_output(wildcards, output):
    """The folder a stage writes several files into (it is the folder of every output)."""
    return os.path.dirname(output[0])


def folder_of_first_input(wildcards, input):
    return os.path.dirname(input[0])


def world_spec(wildcards):
    """The world section as JSON: generation reruns exactly when it changes."""
    return json.dumps(config["world"], sort_keys=True)


def _flags(section, skip=()):
    """Command-line flags from a config section: only the keys set, so defaults stay in the library."""
    parts = []
    for key, value in sorted(section.items()):
        if key in skip:
            continue
        name = key.replace("_", "-")
        if isinstance(value, bool):
            parts.append(f"--{name}" if value else f"--no-{name}")
        else:
            parts.append(f"--{name} {value}")
    return " ".join(parts)


def pretrain_args(wildcards):
    return _flags(config["backbone"], skip=("name", "threads"))


def training_settings(method):
    """`training`, with `method_overrides.<method>` applied on top."""
    return {**config.get("training", {}), **config.get("method_overrides", {}).get(method, {})}


def train_inputs(wildcards):
    """Backbone and data; for ltp methods also the ticket they train."""
    inputs = {"backbone": f"resources/models/{wildcards.model}", "world": f"resources/data/{WORLD}"}
    if is_ltp(wildcards.method):
        inputs["ticket"] = f"results/{wildcards.experiment}/tickets/{wildcards.model}/{ticket_of(wildcards.method)}"
    return inputs


def ticket_flag(wildcards, input):
    return f"--ticket {input.ticket}/mask.safetensors" if "ticket" in input.keys() else ""


def finetune_text_files(wildcards):
    """LTP's unlabeled text: the world's corpus in the configured languages (default English)."""
    languages = LTP.get("finetune", {}).get("languages", ["en"])
    return " ".join(f"resources/data/{WORLD}/corpus/{lang}.txt" for lang in languages)


def finetune_args(wildcards):
    return _flags(LTP.get("finetune", {}), skip=("languages",))


def ticket_args(wildcards):
    return _flags(LTP.get("tickets", {}).get(wildcards.ticket, {}))


def train_args(wildcards):
    prompt = config["prompt"]
    flags = [
        f"--method {wildcards.method}",
        f"--prompt-length {wildcards.length}",
        f"--seed {wildcards.seed}",
        _flags(training_settings(wildcards.method)),
        _flags(prompt, skip=("lengths",)),
    ]
    return " ".join(f for f in flags if f)


def eval_args(wildcards):
    languages = config.get("evaluation", {}).get("languages", [])
    return f"--languages {' '.join(languages)}" if languages else ""
