# Helpers shared by the rules: config validation, wildcard constraints, target lists and
# the command-line arguments each rule passes to its stage.

import json
import math
import os
import shlex
import shutil
from types import SimpleNamespace

from snakemake.logging import logger

from xlprompt.data.hub_access import cache_dir as hub_cache_dir
from xlprompt.data.hub_access import hub_unreachable
from xlprompt.runtime.environment import FIX as JOBS_PYTHON_FIX
from xlprompt.runtime.environment import jobs_python_problem
from xlprompt.runtime.io import code_digest
from xlprompt.models.families import HUB_PARAMETERS_M
from xlprompt.models.memory import BASE_MB, BYTES_PER_WEIGHT, TRAINED_WEIGHT_BYTES, job_memory_mb
from xlprompt.config.checks import SPOT_BASELINES, ticket_of, validate_config

# Every default applied here is the library's (one home: xlprompt.runtime.settings; config/README.md shows them).
from xlprompt.runtime.settings import (
    GROUP_SIZE,
    LTP_FINETUNE_LANGUAGES,
    ConfigError,
    NeuronSettings,
    RunSettings,
    SpotSettings,
    is_ltp,
    trains_alone,
)
from xlprompt.runtime.settings import PRETRAIN_THREADS as DEFAULT_PRETRAIN_THREADS
from xlprompt.runtime.methods import method_of

# Schema (types, ranges, unknown keys), then relations between keys: before any job runs.
# A mistake is the user's to fix, not a bug: the message alone, without a traceback.
try:
    validate_config(config, workflow.source_path("../schemas/config.schema.yaml"))
except ConfigError as err:
    raise SystemExit(f"config error: {err}") from None


# Every job runs `python -m xlprompt`: the `python` on PATH must have the package, or each job would
# fail with "No module named xlprompt" (and Snakemake delete its other outputs). Asked once, here, in
# milliseconds; not where a software deployment method (conda, apptainer) gives each rule its own.
if not workflow.deployment_settings.deployment_method:
    _python_problem = jobs_python_problem()
    if _python_problem:
        raise SystemExit(f"{_python_problem}; {JOBS_PYTHON_FIX}")


# The slurm profile submits with sbatch: without it every job would fail at submission with
# an obscure error ("No such file or directory: 'sacctmgr'"), so say so once, before any job
# (onstart runs once the executor is known; a dry run needs no Slurm and skips it). The compute
# jobs read the Hugging Face cache that the downloads (local jobs, here) fill: sbatch passes
# HF_HOME on (--export=ALL), and it must name a folder the compute nodes share.
onstart:
    if getattr(workflow.executor_plugin, "name", None) == "slurm":
        if shutil.which("sbatch") is None:
            raise SystemExit(
                "the slurm profile submits jobs with sbatch, which is not on PATH here: run Snakemake "
                "on the cluster's login node, or locally with `snakemake --cores N` (docs/real-path.md: SLURM)"
            )
        if HUB_MODELS or HUB_TASKS:
            logger.info(
                f"Hugging Face cache: {hub_cache_dir()}; the downloads fill it here and the compute jobs read "
                "it, so it must be on a file system they share (set HF_HOME; docs/real-path.md: SLURM)"
            )


# Nothing a rule runs may reach the Hugging Face Hub unless the rule downloads. The download
# rules see HF_HUB_OFFLINE as the user set it (unset: downloads allowed), every other rule 1;
# download_dataset gets HF_DATASETS_OFFLINE set to the same value (datasets reads that one first).
HUB_OFFLINE = os.environ.get("HF_HUB_OFFLINE", "0")

DOWNLOADS_ON = HUB_OFFLINE.strip().upper() not in {"1", "ON", "YES", "TRUE"}  # as huggingface_hub reads it

EXPERIMENT = config["experiment"]
# The data folder, resources/data/<WORLD>/: a generated world (world:) or downloaded data sets (data:).
DATA = config.get("data")
WORLD = config["world"]["name"] if DATA is None else DATA["name"]
DATA_TASKS = list(DATA["tasks"]) if DATA else []
HUB_TASKS = [task for task in DATA_TASKS if any("hub" in source for source in DATA["tasks"][task])]
MODEL = config["backbone"]["name"]
TASKS = config["tasks"]
METHODS = config["methods"]
VARIANTS = config.get("variants", {})  # a method under another name, with other prompt settings


def base_method(name):
    """The method a listed name trains: a variant's own method, else the name itself."""
    return VARIANTS[name]["method"] if name in VARIANTS else name


SEEDS = config["seeds"]
LENGTHS = config["prompt"]["lengths"]
LTP = config.get("ltp", {})
TICKETS = sorted({ticket_of(base_method(m)) for m in METHODS if is_ltp(base_method(m))})
THREADS = config.get("threads", RunSettings.threads)
PRETRAIN_THREADS = config["backbone"].get("threads", DEFAULT_PRETRAIN_THREADS)
TRAIN_LANGUAGE = config.get("training", {}).get("train_language", "en")
SPOT = config.get("spot", {})
SPOT_SOURCES = SPOT.get("sources", {})
SPOT_TARGETS = SPOT.get("targets", [])
TARGET_LANGUAGE = SPOT.get("training", {}).get("train_language", TRAIN_LANGUAGE)  # targets train in it
EMBEDDING_STEP = SPOT.get("embedding_step", SpotSettings.embedding_step)
SPOT_INITS = list(SPOT_BASELINES) + sorted(SPOT_SOURCES)
CROSS = SPOT.get("cross_model", {})  # cross-model transfer into a second backbone
CROSS_MODEL = CROSS["backbone"]["name"] if CROSS else None
MODELS = [MODEL] + ([CROSS_MODEL] if CROSS else [])


def backbone_section(model):
    return CROSS["backbone"] if model == CROSS_MODEL else config["backbone"]


# Backbones from the Hub (backbone.hub) are downloaded; the others are pretrained on the world.
HUB_MODELS = [name for name in MODELS if "hub" in backbone_section(name)]
PRETRAINED_MODELS = [name for name in MODELS if name not in HUB_MODELS]
NEURONS = config.get("neurons", {})  # activated-neuron overlap of SPoT's sources and targets

# With downloads on, a Hub that cannot be reached stops the workflow now, in about a second, rather
# than at its first download job (on a cluster: after the queue). Only where something is still to fetch.
_to_fetch = [f"resources/models/{name}" for name in HUB_MODELS]
_to_fetch += [f"resources/downloads/{WORLD}/{task}" for task in HUB_TASKS]
if DOWNLOADS_ON and not all(os.path.exists(path) for path in _to_fetch):
    _unreachable = hub_unreachable()
    if _unreachable:
        raise SystemExit(
            f"{_unreachable} (checked before any job because downloads are on, HF_HUB_OFFLINE={HUB_OFFLINE})"
        )
# From here on, this process and every job it starts are offline (the download rules set their own value).
os.environ.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})


def _alternatives(values):
    return "|".join(str(v) for v in values)


def source_language(name):
    return SPOT_SOURCES[name].get("language", TRAIN_LANGUAGE)


def reuses_main_prompt(name):
    """A single-task source in the training language is the spt prompt the experiment trains anyway."""
    tasks = SPOT_SOURCES[name]["tasks"]
    return len(tasks) == 1 and tasks[0] in TASKS and "spt" in METHODS and source_language(name) == TRAIN_LANGUAGE


TRAINED_SOURCES = sorted(name for name in SPOT_SOURCES if not reuses_main_prompt(name))


wildcard_constraints:
    experiment=EXPERIMENT,
    world=WORLD,
    dataset=_alternatives(DATA_TASKS or ["no-dataset"]),
    model=_alternatives(MODELS),
    task=_alternatives(TASKS),
    target=_alternatives(SPOT_TARGETS or ["no-target"]),
    init=_alternatives(SPOT_INITS + (["projector"] if CROSS else [])),
    source=_alternatives(TRAINED_SOURCES or ["no-source"]),
    source_name=_alternatives([CROSS["source"]] if CROSS else ["no-source"]),
    method=_alternatives(METHODS),
    ticket=_alternatives(TICKETS or ["default"]),
    length=r"\d+",
    seed=r"\d+",


def prompt_runs():
    """(task, method, length, seed) of every prompt the experiment trains or builds.

    no_prompt has no prompt (length 0) and nothing random, so it runs once, at the first seed; a variant
    with `prompt: false` (lora, bitfit without a prompt) runs at length 0, once per seed.
    """
    for task in TASKS:
        for method in METHODS:
            no_prompt = method_of(base_method(method)).prompt == "none"
            promptless = no_prompt or VARIANTS.get(method, {}).get("prompt") is False
            lengths = [0] if promptless else LENGTHS
            seeds = SEEDS[:1] if no_prompt else SEEDS
            for length in lengths:
                for seed in seeds:
                    yield task, method, length, seed


# What every task trains: "<method>/L<length>/seed<seed>" (the same list for each task).
TASK_RUNS = [f"{method}/L{length}/seed{seed}" for task, method, length, seed in prompt_runs() if task == TASKS[0]]


def metrics_files(wildcards=None):
    return [
        f"results/{EXPERIMENT}/metrics/{MODEL}/{task}/{method}/L{length}/seed{seed}.json"
        for task, method, length, seed in prompt_runs()
    ]


def predictions_files(wildcards=None):
    return [
        f"results/{EXPERIMENT}/predictions/{MODEL}/{task}/{method}/L{length}/seed{seed}.parquet"
        for task, method, length, seed in prompt_runs()
    ]


def figure_files():
    per_task = [
        f"results/{EXPERIMENT}/figures/{kind}_{task}.png"
        for kind in ("heatmap", "comparisons", "training")
        for task in TASKS
    ]
    return per_task + [f"results/{EXPERIMENT}/figures/{name}.png" for name in ("accuracy_vs_distance", "methods")]


def grid_prompts(wildcards):
    """Every prompt folder of the main method grid (what the evaluate jobs take), all tasks."""
    return [f"results/{wildcards.experiment}/prompts/{MODEL}/{task}/{run}" for task in TASKS for run in TASK_RUNS]


def all_targets(wildcards):
    targets = figure_files() + [
        f"results/{EXPERIMENT}/tables/{name}.csv" for name in ("per_language", "training_curves")
    ]
    if SPOT:
        targets += [
            f"results/{EXPERIMENT}/tables/{name}.csv"
            for name in ("transfer", "transfer_comparisons", "retrieval", "similarity", "correlation", "neuron_masking")
        ]
        targets += [
            f"results/{EXPERIMENT}/figures/{name}.png"
            for name in ("transfer_gain", "similarity_vs_transfer", "neuron_masking")
        ]
    return targets


def folder_of_first_output(wildcards, output):
    """The folder a stage writes several files into (it is the folder of every output)."""
    return os.path.dirname(output[0])


def folder_of_first_input(wildcards, input):
    return os.path.dirname(input[0])


def world_spec(wildcards):
    """The world section as JSON: generation reruns exactly when it changes."""
    return json.dumps(config["world"], sort_keys=True)


def world_code_version(wildcards):
    """A digest of the code that generates worlds (the world's model and the writer of its files): a new
    version of either regenerates the world; reformatting them, or editing comments and docstrings, does not
    (xlprompt.runtime.io.code_digest)."""
    import hashlib

    import xlprompt.data.generated
    import xlprompt.data.world

    files = (xlprompt.data.world.__file__, xlprompt.data.generated.__file__)
    return hashlib.sha256("".join(code_digest(path) for path in files).encode()).hexdigest()[:16]


def _flags(section, skip=(), prefix=""):
    """Command-line flags from a config section: only the keys set, so defaults stay in the library.

    ``prefix``: the section's name in the stage's flags (lora: rank -> --lora-rank); a list
    becomes one flag with several values."""
    parts = []
    for key, value in sorted(section.items()):
        if key in skip:
            continue
        name = f"{prefix}{key}".replace("_", "-")
        if isinstance(value, bool):
            parts.append(f"--{name}" if value else f"--no-{name}")
        elif isinstance(value, list):
            parts.append(f"--{name} " + " ".join(shlex.quote(str(v)) for v in value))
        else:
            parts.append(f"--{name} {value}")
    return " ".join(parts)


def pretrain_args(wildcards):
    return _flags(backbone_section(wildcards.model), skip=("name", "threads", "dtype"))


def dtype_flag(model):
    """The --dtype of a backbone's compute stages (backbone.dtype; unset: the library's float32)."""
    dtype = backbone_section(model).get("dtype")
    return f"--dtype {dtype}" if dtype else ""


def memory_mb(model, weights="frozen", base_mb=BASE_MB):
    """What a job on ``model`` claims: its weights once in the backbone's type (``frozen``), twice
    (``two_copies``: an evaluation that loads a full_ft artifact's own backbone beside the shared one),
    every weight training (``trained``), or two float32 copies and their difference (``float32x3``: the
    ticket selection), by the pinned Hub backbone's size (xlprompt.models.memory). A backbone xlprompt
    pretrains is a few MB; a Hub model without a pin has no known size (warned about below)."""
    section = backbone_section(model)
    parameters_m = HUB_PARAMETERS_M.get(section.get("hub"), 0)
    dtype = section.get("dtype", "float32")
    per_weight = {
        "frozen": BYTES_PER_WEIGHT[dtype],
        "two_copies": 2 * BYTES_PER_WEIGHT[dtype],
        "trained": TRAINED_WEIGHT_BYTES[dtype],
        "trained_float32": TRAINED_WEIGHT_BYTES["float32"],  # LTP's fine-tuning: float32 whatever backbone.dtype
        "float32x3": 3 * BYTES_PER_WEIGHT["float32"],
    }[weights]
    return job_memory_mb(parameters_m, per_weight, base_mb)


for _name in HUB_MODELS:
    if backbone_section(_name)["hub"] not in HUB_PARAMETERS_M:
        logger.warning(
            f"{backbone_section(_name)['hub']}: its size is not known before the download, so its jobs claim "
            f"mem_mb for a small model ({BASE_MB} MB); give the real need with --set-resources "
            "(e.g. train_prompt:mem_mb=40000) or add the model to HUB_PARAMETERS_M in src/xlprompt/models/families.py"
        )


def train_memory_mb(wildcards):
    """train_prompt's claim: every weight training for full_ft and ltp (a ticket's tensors train whole)."""
    trains_all = method_of(base_method(wildcards.method)).backbone in ("all", "ticket")
    return memory_mb(wildcards.model, "trained" if trains_all else "frozen")


def download_backbone_args(wildcards):
    section = backbone_section(wildcards.model)
    revision = f" --revision {shlex.quote(section['revision'])}" if "revision" in section else ""
    return f"--hub {shlex.quote(section['hub'])}{revision}"


def dataset_sources(wildcards):
    """One task's sources (data.tasks.<task>) as JSON: a changed source refetches that task."""
    return json.dumps(DATA["tasks"][wildcards.dataset], sort_keys=True)


def assemble_args(wildcards, input):
    return " ".join(f"--task {task}={shlex.quote(folder)}" for task, folder in zip(DATA_TASKS, input))


# Job-level settings of a training section: how jobs are formed, not how a prompt trains.
JOB_SETTINGS = ("group_size",)


def _prompt_settings(*sections):
    """Training sections merged left to right, without the job-level keys (a prompt's own settings)."""
    merged = {key: value for section in sections for key, value in section.items()}
    return {key: value for key, value in merged.items() if key not in JOB_SETTINGS}


def training_settings(method):
    """`training`, with `method_overrides.<method>` applied on top."""
    return _prompt_settings(config.get("training", {}), config.get("method_overrides", {}).get(method, {}))


def target_settings():
    """SPoT's targets: `training` with `spot.training` on top."""
    return _prompt_settings(config.get("training", {}), SPOT.get("training", {}))


def shares_backbone(method):
    """Methods whose prompts train in groups (train_group_* rules): frozen backbone, input-level prompts.
    full_ft, ltp, lora and bitfit change weights, deep_prompt puts prefixes into every layer: one per job
    (train_prompt; xlprompt.runtime.settings.trains_alone)."""
    return not trains_alone(base_method(method))


def train_inputs(wildcards):
    """Backbone and data; for ltp methods also the ticket they train."""
    inputs = {"backbone": f"resources/models/{wildcards.model}", "world": f"resources/data/{WORLD}"}
    method = base_method(wildcards.method)
    if is_ltp(method):
        inputs["ticket"] = f"results/{wildcards.experiment}/tickets/{wildcards.model}/{ticket_of(method)}"
    return inputs


def ticket_flag(wildcards, input):
    return f"--ticket {input.ticket}/mask.safetensors" if "ticket" in input.keys() else ""


def finetune_text_files(wildcards):
    """LTP's unlabeled text: the world's corpus in the configured languages (default English)."""
    languages = LTP.get("finetune", {}).get("languages", list(LTP_FINETUNE_LANGUAGES))
    return " ".join(f"resources/data/{WORLD}/corpus/{lang}.txt" for lang in languages)


def finetune_args(wildcards):
    return _flags(LTP.get("finetune", {}), skip=("languages",))


def ticket_args(wildcards):
    return _flags(LTP.get("tickets", {}).get(wildcards.ticket, {}))


# Methods with a settings block of their own (xlprompt.runtime.settings.LoraSettings, BitFitSettings, DeepPromptSettings).
METHOD_SECTIONS = ("lora", "bitfit", "deep_prompt")
# The prompt block's keys that shape an input-level prompt, which deep_prompt has not (it has its own block).
INPUT_PROMPT_KEYS = (
    "init",
    "vocab_top_k",
    "vocab_source",
    "position",
    "reparameterization",
    "reparam_hidden",
    "reparam_norm_affine",
    "space",
)


def method_section(method):
    """A method's own settings block, as flags; deep_prompt's `layers: all` is the default (no flag)."""
    section = dict(config.get(method, {}))
    if method == "deep_prompt" and section.get("layers") == "all":
        del section["layers"]
    return _flags(section, prefix=f"{method}_")


def train_args(wildcards):
    prompt = {**config["prompt"], **VARIANTS.get(wildcards.method, {})}  # a variant's prompt settings on top
    method = base_method(wildcards.method)
    if method == "deep_prompt":
        prompt = {key: value for key, value in prompt.items() if key not in INPUT_PROMPT_KEYS}
    flags = [
        f"--method {method}",
        f"--name {wildcards.method}" if wildcards.method in VARIANTS else "",
        f"--prompt-length {wildcards.length}",
        f"--seed {wildcards.seed}",
        _flags(training_settings(wildcards.method)),
        _flags(prompt, skip=("lengths", "method", "prompt")),
    ]
    if SPOT and wildcards.method == "spt":
        flags.append(f"--snapshot-step {EMBEDDING_STEP}")  # spt prompts may serve as SPoT sources
    if method in METHOD_SECTIONS:  # a method's own settings: only its jobs rerun when they change
        flags.append(method_section(method))
    return " ".join(f for f in flags if f)


# --- SPoT ------------------------------------------------------------------------------


def source_prompt(name, length, seed):
    """Where source ``name``'s prompt is: the experiment's own spt prompt, or a source run."""
    if reuses_main_prompt(name):
        task = SPOT_SOURCES[name]["tasks"][0]
        return f"results/{EXPERIMENT}/prompts/{MODEL}/{task}/spt/L{length}/seed{seed}"
    return f"results/{EXPERIMENT}/sources/{MODEL}/{name}/L{length}/seed{seed}"


def source_data(wildcards):
    return " ".join(f"resources/data/{WORLD}/{task}" for task in SPOT_SOURCES[wildcards.source]["tasks"])


def source_args(wildcards):
    settings = {**training_settings("spt"), "train_language": source_language(wildcards.source)}
    flags = [
        f"--method spt --prompt-length {wildcards.length} --seed {wildcards.seed}",
        f"--snapshot-step {EMBEDDING_STEP}",
        _flags(settings),
        _flags(config["prompt"], skip=("lengths",)),
    ]
    return " ".join(f for f in flags if f)


def projected_prompt(wildcards, seed=None):
    """A target's random-init prompt of the main backbone, mapped into the cross model."""
    return (
        f"results/{wildcards.experiment}/projected/{CROSS_MODEL}/{wildcards.target}/L{wildcards.length}/"
        f"seed{wildcards.seed if seed is None else seed}"
    )


def transfer_inputs(wildcards):
    inputs = {"backbone": f"resources/models/{wildcards.model}", "world": f"resources/data/{WORLD}"}
    if wildcards.init == "projector":
        if wildcards.model != CROSS_MODEL:
            raise ValueError(f"init projector applies to the cross model {CROSS_MODEL}, not {wildcards.model}")
        inputs["source"] = projected_prompt(wildcards)
    elif wildcards.init not in SPOT_BASELINES:
        if wildcards.model != MODEL:
            raise ValueError(
                f"SPoT sources are prompts of {MODEL}; {wildcards.model} takes random, label_words, projector"
            )
        inputs["source"] = source_prompt(wildcards.init, wildcards.length, wildcards.seed)
    return inputs


def transfer_args(wildcards, input):
    """Target training: `training` with `spot.training` on top; the init names the start."""
    if wildcards.init == "random":
        init = f"--init {SPOT.get('random_init', SpotSettings.random_init)}"
    elif wildcards.init == "label_words":
        init = "--init label_words"
    else:
        init = f"--init source --source {input.source}"
    settings = target_settings()
    flags = [
        f"--method spt --prompt-length {wildcards.length} --seed {wildcards.seed}",
        init,
        f"--snapshot-step {EMBEDDING_STEP}",
        _flags(settings),
        _flags(config["prompt"], skip=("lengths", "init")),
    ]
    return " ".join(f for f in flags if f)


def transfer_runs(wildcards):
    """Every target prompt of one target task, model and length: each init, each seed.

    The main backbone's targets start from every source; the cross model's from a projected
    prompt (tuned: projector; as it is: projector_zero_shot).
    """
    inits = SPOT_INITS if wildcards.model == MODEL else list(SPOT_BASELINES) + ["projector"]
    runs = {
        f"{init}={path}": path
        for init in inits
        for seed in SEEDS
        for path in [
            f"results/{wildcards.experiment}/transfer/{wildcards.model}/{wildcards.target}/{init}/L{wildcards.length}/seed{seed}"
        ]
    }
    if wildcards.model == CROSS_MODEL:
        runs.update(
            {f"projector_zero_shot={path}": path for seed in SEEDS for path in [projected_prompt(wildcards, seed)]}
        )
    return runs


def source_runs(wildcards):
    if wildcards.model != MODEL:
        return {}
    return {
        f"{name}={source_prompt(name, wildcards.length, seed)}": source_prompt(name, wildcards.length, seed)
        for name in sorted(SPOT_SOURCES)
        for seed in SEEDS
    }


def evaluate_transfer_inputs(wildcards):
    return {
        "runs": list(transfer_runs(wildcards).values()),
        "sources": list(source_runs(wildcards).values()),
        "backbone": f"resources/models/{wildcards.model}",
        "world": f"resources/data/{WORLD}",
    }


def evaluate_transfer_args(wildcards):
    cross = f" --source-model {MODEL}" if wildcards.model == CROSS_MODEL else ""
    return (
        f"--runs {' '.join(transfer_runs(wildcards))} --sources {' '.join(source_runs(wildcards))} "
        f"--label-maps {shlex.quote(json.dumps(SPOT.get('zero_shot', {}), sort_keys=True))} "
        f"{eval_args(wildcards)}{cross}"
    )


def activation_prompts(wildcards):
    """Every prompt whose activated neurons are compared: SPoT's sources and targets."""
    sources, targets = similarity_prompts(wildcards)
    return {**sources, **targets}


def activation_args(wildcards, input):
    mode = NEURONS.get("mode", NeuronSettings.mode)
    flags = f"--mode {mode}"
    if "layout" in NEURONS:  # only when set: a config without it runs (and reruns) as before
        flags += f" --layout {NEURONS['layout']}"
    if mode == "task":
        flags += f" --data-root {input.world} --examples {NEURONS.get('examples', NeuronSettings.examples)}"
    return flags


def similarity_prompts(wildcards):
    """Task embeddings: every source prompt and every target's random-init prompt, each seed and length."""
    sources = {
        f"{name}={source_prompt(name, length, seed)}": source_prompt(name, length, seed)
        for name in sorted(SPOT_SOURCES)
        for length in LENGTHS
        for seed in SEEDS
    }
    targets = {
        f"{target}={path}": path
        for target in SPOT_TARGETS
        for length in LENGTHS
        for seed in SEEDS
        for path in [f"results/{wildcards.experiment}/transfer/{MODEL}/{target}/random/L{length}/seed{seed}"]
    }
    return sources, targets


def transfer_metric_files(wildcards):
    return [
        f"results/{wildcards.experiment}/transfer_metrics/{model}/{target}/L{length}.json"
        for model in MODELS
        for target in SPOT_TARGETS
        for length in LENGTHS
    ]


def transfer_prediction_files(wildcards):
    return [
        f"results/{wildcards.experiment}/transfer_predictions/{model}/{target}/L{length}.parquet"
        for model in MODELS
        for target in SPOT_TARGETS
        for length in LENGTHS
    ]


def projector_inputs(wildcards):
    return {
        "source": source_prompt(CROSS["source"], wildcards.length, wildcards.seed),
        "backbone": f"resources/models/{wildcards.model}",
        "world": f"resources/data/{WORLD}",
    }


def projector_data(wildcards):
    return " ".join(f"resources/data/{WORLD}/{task}" for task in SPOT_SOURCES[CROSS["source"]]["tasks"])


def projector_args(wildcards):
    settings = {
        key: value
        for key, value in {**config.get("training", {}), **CROSS.get("training", {})}.items()
        if key in ("steps", "batch_size", "lr", "warmup_ratio", "eval_every", "max_length")
    }
    settings.update({key: CROSS[key] for key in ("hidden", "activation", "output_norm") if key in CROSS})
    return f"--seed {wildcards.seed} {_flags(settings)}"


def project_inputs(wildcards):
    return {
        "projector": f"results/{wildcards.experiment}/projectors/{wildcards.model}/{CROSS['source']}/"
        f"L{wildcards.length}/seed{wildcards.seed}",
        "source": f"results/{wildcards.experiment}/transfer/{MODEL}/{wildcards.target}/random/"
        f"L{wildcards.length}/seed{wildcards.seed}",
        "backbone": f"resources/models/{wildcards.model}",
    }


def eval_args(wildcards):
    languages = config.get("evaluation", {}).get("languages", [])
    return f"--languages {' '.join(languages)}" if languages else ""


# --- Prompts trained together ------------------------------------------------------------
# Frozen-backbone prompts share everything but the prompt: those of one backbone, prompt length
# and task (a source, a target) train in one job, each step one backbone pass over all of
# their batches (xlprompt.methods.training.train_prompts). A group is a rule of its own (train_group_*),
# whose outputs are its prompts' usual folders: nothing downstream knows about groups.


class TrainGroup:
    """Prompt runs (out, checkpoints, flags, source) one job trains together."""

    def __init__(self, kind, model, key, length, index, runs):
        self.runs = runs
        where = f"{kind}/{model}/{key}/L{length}/group{index}"
        # A rule name of the group (the model's too where it is not the main one).
        parts = [kind, key, f"L{length}", str(index)] + ([model] if model != MODEL else [])
        self.name = "train_group_{}".format("_".join(parts).replace("-", "_"))
        self.log = f"logs/{EXPERIMENT}/train_group/{where}.log"
        self.benchmark = f"benchmarks/runs/{EXPERIMENT}/train_group/{where}.tsv"
        self.model = model

    @property
    def outputs(self):
        return [run["out"] for run in self.runs]

    @property
    def sources(self):
        return [run["source"] for run in self.runs if run["source"]]

    @property
    def flags(self):
        """Each run's flags behind its own --run (the stage's several-prompts form)."""
        return " ".join(f"--run {shlex.quote(run['flags'])}" for run in self.runs)


def _run(out, checkpoints, data, args, source=None):
    flags = f"--data {data} --out {out} --checkpoint-dir {checkpoints} {args}"
    return {"out": out, "flags": flags, "source": source}


def _wildcards(**values):
    return SimpleNamespace(experiment=EXPERIMENT, **values)


def frozen_runs():
    """Every frozen-backbone prompt, as ((kind, model, key, length, group size), run) in a stable order."""
    size = config.get("training", {}).get("group_size", GROUP_SIZE)
    for task, method, length, seed in prompt_runs():
        if not shares_backbone(method):
            continue
        w = _wildcards(model=MODEL, task=task, method=method, length=length, seed=seed)
        where = f"{MODEL}/{task}/{method}/L{length}/seed{seed}"
        # Prompts laid out differently (a variant's position) cannot share a backbone pass.
        position = {**config["prompt"], **VARIANTS.get(method, {})}.get("position", "")
        key = task if not position else f"{task}_{position}"
        yield ("prompts", MODEL, key, length, size), _run(
            f"results/{EXPERIMENT}/prompts/{where}",
            f"results/{EXPERIMENT}/checkpoints/{where}",
            f"resources/data/{WORLD}/{task}",
            train_args(w),
        )
    for source in TRAINED_SOURCES:
        for length in LENGTHS:
            for seed in SEEDS:
                w = _wildcards(model=MODEL, source=source, length=length, seed=seed)
                where = f"{MODEL}/{source}/L{length}/seed{seed}"
                yield ("sources", MODEL, source, length, size), _run(
                    f"results/{EXPERIMENT}/sources/{where}",
                    f"results/{EXPERIMENT}/checkpoints/sources/{where}",
                    source_data(w),
                    source_args(w),
                )
    target_size = SPOT.get("training", {}).get("group_size", size)
    for model in MODELS if SPOT else []:
        inits = SPOT_INITS if model == MODEL else list(SPOT_BASELINES) + ["projector"]
        for target in SPOT_TARGETS:
            for length in LENGTHS:
                for init in inits:
                    for seed in SEEDS:
                        w = _wildcards(model=model, target=target, init=init, length=length, seed=seed)
                        source = transfer_inputs(w).get("source")
                        where = f"{model}/{target}/{init}/L{length}/seed{seed}"
                        yield ("transfer", model, target, length, target_size), _run(
                            f"results/{EXPERIMENT}/transfer/{where}",
                            f"results/{EXPERIMENT}/checkpoints/transfer/{where}",
                            f"resources/data/{WORLD}/{target}",
                            transfer_args(w, SimpleNamespace(source=source)),
                            source,
                        )


def train_groups():
    """The frozen-backbone runs, split into groups of at most their section's group_size (sizes
    differ by at most one, so that groups of one key take about as long as each other)."""
    by_key = {}
    for key, run in frozen_runs():
        by_key.setdefault(key, []).append(run)
    groups = []
    for (kind, model, key, length, size), runs in by_key.items():
        n_groups = math.ceil(len(runs) / size)
        bounds = [round(i * len(runs) / n_groups) for i in range(n_groups + 1)]
        groups += [
            TrainGroup(kind, model, key, length, i, runs[start:stop])
            for i, (start, stop) in enumerate(zip(bounds, bounds[1:]))
        ]
    return groups
