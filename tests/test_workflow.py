"""The workflow as a user runs it: lint, dry runs of every config, a complete smoke run."""

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from workflow_run import (
    GPU_RULES,
    GROUP_RULE,
    METHOD_TABLES,
    METHOD_TABLES_TARGET,
    REPO,
    SMOKE,
    comparable_table,
    rule_kind,
    snakemake,
    snakemake_command,
    workflow_rules,
)

from xlprompt.runtime.environment import jobs_python_problem
from xlprompt.runtime.settings import GROUP_SIZE, trains_alone

CONFIGS = sorted(p.name for p in (REPO / "config").glob("*.yaml"))


def test_lint_passes():
    result = snakemake("--lint")
    assert "Congratulations" in result.stdout + result.stderr


def test_the_rules_are_snakefmt_clean():
    """The Snakemake community's formatter (its settings in pyproject.toml) would change nothing."""
    rules = ["Snakefile", *sorted(str(p.relative_to(REPO)) for p in (REPO / "workflow").rglob("*.smk"))]
    result = subprocess.run(
        [str(Path(sys.executable).with_name("snakefmt")), "--check", *rules], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(rules) >= 9


def job_counts(dry_run_output: str) -> dict[str, int]:
    """Snakemake's "Job stats" table of a dry run: rule -> number of jobs (group rules as one)."""
    table = dry_run_output.split("Job stats:")[1].split("\n\n")[0]
    counts: dict[str, int] = {}
    for rule, count in re.findall(r"(?m)^(\w+)\s+(\d+)$", table):
        counts[rule_kind(rule)] = counts.get(rule_kind(rule), 0) + int(count)
    return counts


def job_outputs(dry_run_output: str) -> dict[str, list[list[str]]]:
    """rule -> the outputs of each of its jobs, from a dry run's job listing (group rules as one)."""
    jobs: dict[str, list[list[str]]] = {}
    for rule, outputs in re.findall(
        r"(?m)^(?:local)?rule (\w+):\n(?:    (?!output:).*\n)*    output: (.*)$", dry_run_output
    ):
        jobs.setdefault(rule_kind(rule), []).append(outputs.split(", "))
    return jobs


@pytest.mark.parametrize("name", CONFIGS)
def test_dry_run_of_every_config(name, tmp_path):
    config = yaml.safe_load((REPO / "config" / name).read_text())
    out = snakemake("-n", "--configfile", str(REPO / "config" / name), cwd=tmp_path).stdout
    counts = job_counts(out)
    # Generated world and pretrained backbone offline; downloads on the real path (data:, backbone.hub).
    first = (
        ["generate_world", "pretrain_backbone"]
        if "world" in config
        else ["download_dataset", "assemble_data", "download_backbone"]
    )
    for rule in [*first, "evaluate", "aggregate", "plot"]:
        assert counts.get(rule, 0) >= 1, (rule, counts)
    if "data" in config:  # one download per task, one backbone, one evaluation job per task
        assert counts["download_dataset"] == len(config["data"]["tasks"])
        assert counts["download_backbone"] == 1
    trained = [m for m in config["methods"] if m != "no_prompt"]
    expected = len(config["tasks"]) * (
        len(trained) * len(config["prompt"]["lengths"]) * len(config["seeds"]) + ("no_prompt" in config["methods"])
    )
    assert counts["evaluate"] == len(config["tasks"])
    # Every prompt of the grid trains once: alone where the method changes the backbone (or, deep_prompt, puts
    # prefixes into its layers), else in a group of at most group_size prompts that share backbone, length and task.
    jobs = job_outputs(out)
    grid = [
        path
        for outputs in jobs.get("train_prompt", []) + jobs.get(GROUP_RULE, [])
        for path in outputs
        if "/prompts/" in path
    ]
    assert len(grid) == len(set(grid)) == expected
    size = config.get("training", {}).get("group_size", GROUP_SIZE)
    for outputs in jobs.get(GROUP_RULE, []):
        assert 1 <= len(outputs) <= max(size, config.get("spot", {}).get("training", {}).get("group_size", size))
        assert len({(*tuple(Path(path).parts[:-3]), Path(path).parts[-2]) for path in outputs}) == 1, outputs
    variants = config.get("variants", {})
    alone = {Path(path).parts[-3] for outputs in jobs.get("train_prompt", []) for path in outputs}
    assert all(trains_alone(variants.get(m, {}).get("method", m)) for m in alone), alone


SLURM_PROFILE = ["--profile", str(REPO / "workflow" / "profiles" / "slurm")]


def test_slurm_profile_dry_run_needs_no_slurm(tmp_path):
    result = snakemake("-n", *SLURM_PROFILE, "--configfile", str(SMOKE), cwd=tmp_path)
    out = result.stdout + result.stderr
    assert "This was a dry-run" in out
    assert "train_prompt" in out


def test_slurm_profile_without_sbatch_stops_before_any_job(tmp_path):
    tools = tmp_path / "bin"  # a PATH with what Snakemake needs and certainly no sbatch
    tools.mkdir()
    for tool in ("bash", "sh", "which"):
        (tools / tool).symlink_to(shutil.which(tool))
    work = tmp_path / "work"
    work.mkdir()
    result = snakemake(
        *SLURM_PROFILE,
        "--configfile",
        str(SMOKE),
        cwd=work,
        check=False,
        extra_env={"PATH": f"{Path(sys.executable).parent}{os.pathsep}{tools}"},
        timeout=120,
    )
    assert result.returncode != 0
    assert "the slurm profile submits jobs with sbatch, which is not on PATH here" in result.stderr
    assert not (work / "resources").exists()
    assert not (work / "logs").exists()


def test_a_jobs_python_without_xlprompt_stops_the_workflow_at_parse_time(tmp_path):
    """`.venv/bin/snakemake` typed without activating .venv: the jobs' `python` is another one."""
    tools = tmp_path / "bin"
    tools.mkdir()
    # A python without this environment's packages: the base interpreter, its site-packages switched off.
    (tools / "python").write_text(f'#!/bin/sh\nexec {sys._base_executable} -I -S "$@"\n')
    (tools / "python").chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    result = snakemake(
        "--cores",
        "1",
        "--configfile",
        str(SMOKE),
        cwd=work,
        check=False,
        timeout=120,
        extra_env={"PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"},
    )
    assert result.returncode != 0
    assert f"`python` on PATH ({tools / 'python'}) cannot import xlprompt" in result.stderr
    assert "source .venv/bin/activate" in result.stderr
    assert "make run CONFIG=" in result.stderr
    assert "Building DAG" not in result.stdout + result.stderr
    assert not (work / "resources").exists()


def test_the_jobs_python_check_passes_this_environment_and_names_a_missing_python(tmp_path, monkeypatch):
    assert jobs_python_problem(sys.executable) is None
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no python at all
    assert jobs_python_problem() == "there is no `python` on PATH"


def test_bad_config_stops_snakemake_before_any_job(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "config" / "smoke.yaml").read_text().replace("methods: [", "methods: [lorra, "))
    result = snakemake("--cores", "1", "--configfile", str(bad), cwd=tmp_path, check=False)
    assert result.returncode != 0
    assert (
        "methods: unknown method 'lorra'; allowed: ['spt', 'full_ft', 'ltp', 'lora', 'bitfit', 'deep_prompt', "
        "'untrained', "
        "'no_prompt']"
    ) in result.stderr
    assert not (tmp_path / "resources").exists()
    assert not (tmp_path / "results").exists()


def test_lora_and_bitfit_train_a_job_each_with_their_own_settings(tmp_path):
    """Backbone-changing comparison methods never join a frozen-backbone group: one train_prompt job each,
    whose command carries the method's settings block (and a changed block reruns only those jobs)."""
    cfg = yaml.safe_load(SMOKE.read_text())
    cfg["methods"] = ["spt", "lora", "bitfit"]
    cfg["lora"] = {"rank": 4, "target_modules": ["query", "key", "value"]}
    cfg["method_overrides"] = {"lora": {"backbone_lr": 5e-4}}
    path = tmp_path / "methods.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = snakemake("-n", "-p", "--configfile", str(path), cwd=tmp_path).stdout
    jobs = job_outputs(out)
    alone = sorted(Path(outputs[0]).parts[-3] for outputs in jobs["train_prompt"] if "/prompts/" in outputs[0])
    assert alone == sorted(["lora", "bitfit"] * len(cfg["tasks"]))
    grouped = {Path(path).parts[-3] for outputs in jobs.get(GROUP_RULE, []) for path in outputs if "/prompts/" in path}
    assert grouped == {"spt"}
    commands = [line for line in out.splitlines() if "python -m xlprompt train_prompt" in line]
    lora = [c for c in commands if "--method lora" in c]
    assert lora
    assert all(
        "--lora-rank 4" in c and "--lora-target-modules query key value" in c and "--backbone-lr 0.0005" in c
        for c in lora
    )
    assert all("--lora-" not in c for c in commands if "--method lora" not in c)
    assert any("--method bitfit" in c for c in commands)


def job_memory(dry_run_output: str) -> dict[str, list[int]]:
    """rule -> the mem_mb each of its jobs claims, from a dry run's job listing (group rules as one)."""
    jobs: dict[str, list[int]] = {}
    for rule, mem in re.findall(
        r"(?m)^(?:local)?rule (\w+):\n(?:    (?!resources:).*\n)*    resources: .*?mem_mb=(\d+)", dry_run_output
    ):
        jobs.setdefault(rule_kind(rule), []).append(int(mem))
    return jobs


def test_the_backbone_dtype_reaches_every_stage_that_runs_the_backbone(tmp_path):
    """backbone.dtype goes to every stage that runs the backbone, not to pretraining and LTP's fine-tuning
    (float32 always); the cross model's stages get its own backbone section's."""
    cfg = yaml.safe_load(SMOKE.read_text())
    cfg["backbone"]["dtype"] = "bfloat16"
    cfg["spot"]["cross_model"]["backbone"]["dtype"] = "bfloat16"
    path = tmp_path / "dtype.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = snakemake("-n", "-p", "--configfile", str(path), cwd=tmp_path).stdout
    commands = [line.split("python -m xlprompt ", 1)[1] for line in out.splitlines() if "python -m xlprompt" in line]
    stages = {line.split()[0] for line in commands}
    runs_backbone = {
        "train_prompt",
        "evaluate",
        "evaluate_transfer",
        "prompt_activations",
        "neuron_masking",
        "train_projector",
    }
    assert runs_backbone | {"pretrain_backbone", "finetune_mlm"} <= stages
    for line in commands:
        assert ("--dtype bfloat16" in line) == (line.split()[0] in runs_backbone), line


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_the_memory_claims_follow_the_hub_backbones_size_and_dtype(dtype, tmp_path):
    """mem_mb from the pinned backbone's size: bfloat16 halves a frozen backbone's part; a backbone that
    trains (full_ft, ltp) claims 20 bytes a weight in float32, 22 in bfloat16 (xlprompt.models.memory), LTP's
    fine-tuning 20 (float32 always)."""
    cfg = yaml.safe_load((REPO / "config" / "xnli-xlmr.yaml").read_text())
    cfg["backbone"]["dtype"] = dtype
    path = tmp_path / "dtype.yaml"
    path.write_text(yaml.safe_dump(cfg))
    memory = job_memory(snakemake("-n", "--configfile", str(path), cwd=tmp_path).stdout)
    weights_mb = 278e6 / 2**20 * 1.25  # xlm-roberta-base's 278 M parameters, with 25% headroom
    frozen = 2000 + math.ceil(weights_mb * {"float32": 4, "bfloat16": 2}[dtype])
    assert set(memory[GROUP_RULE]) == {frozen}
    # full_ft and ltp train every weight of their tensors; lora, bitfit and deep_prompt a few beside the frozen ones
    trained = {"float32": 20, "bfloat16": 22}[dtype]
    assert set(memory["train_prompt"]) == {2000 + math.ceil(weights_mb * trained), frozen}
    assert set(memory["finetune_mlm"]) == {4000 + math.ceil(weights_mb * 20)}


def test_deep_prompt_trains_a_job_each_with_its_own_settings_and_is_evaluated_with_the_grid(tmp_path):
    """deep_prompt keeps the backbone frozen but puts prefixes into its layers: never in a frozen-backbone group, one
    train_prompt job per task, length and seed, whose command carries the deep_prompt block and none of the input
    prompt's settings; the evaluate jobs take its prompts with the others'."""
    cfg = yaml.safe_load(SMOKE.read_text())
    cfg["methods"] = ["spt", "deep_prompt", "no_prompt"]
    cfg["prompt"].update(lengths=[4, 8], reparameterization=True)
    cfg["deep_prompt"] = {"layers": [0], "reparameterization": True, "reparam_hidden": 16}
    cfg["method_overrides"] = {"deep_prompt": {"lr": 0.01}}
    path = tmp_path / "deep.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = snakemake("-n", "-p", "--configfile", str(path), cwd=tmp_path).stdout
    jobs = job_outputs(out)
    alone = sorted(Path(outputs[0]).parts[-4:] for outputs in jobs["train_prompt"] if "/prompts/" in outputs[0])
    assert alone == sorted((task, "deep_prompt", f"L{length}", "seed0") for task in cfg["tasks"] for length in (4, 8))
    grouped = {Path(path).parts[-3] for outputs in jobs.get(GROUP_RULE, []) for path in outputs if "/prompts/" in path}
    assert grouped == {"spt", "no_prompt"}
    commands = [line for line in out.splitlines() if "python -m xlprompt train_prompt" in line]
    deep = [c for c in commands if "--method deep_prompt" in c]
    assert len(deep) == len(alone)
    for command in deep:
        for flag in (
            "--deep-prompt-layers 0",
            "--deep-prompt-reparameterization",
            "--deep-prompt-reparam-hidden 16",
            "--lr 0.01",
        ):
            assert flag in command, command
        assert " --reparameterization" not in command, command
        assert "--init" not in command, command
    assert all("--deep-prompt-" not in c for c in commands if "--method deep_prompt" not in c)
    evaluate = [line for line in out.splitlines() if "python -m xlprompt evaluate " in line]
    assert len(evaluate) == len(cfg["tasks"])
    assert all("/deep_prompt/L8/seed0" in line for line in evaluate)


def test_a_limit_beyond_the_position_table_stops_a_dry_run(tmp_path):
    """Text plus prompt longer than the tiny backbone's position table: refused while parsing, not in train_prompt."""
    bad = tmp_path / "bad.yaml"
    cfg = yaml.safe_load(SMOKE.read_text())
    cfg["training"]["max_length"] = 200
    bad.write_text(yaml.safe_dump(cfg))
    result = snakemake("-n", "--configfile", str(bad), cwd=tmp_path, check=False)
    assert result.returncode != 0
    assert (
        "config error: training.max_length: 200 text tokens + a prompt of 4 (prompt.lengths) = 204, more than "
        "backbone's position table holds (backbone.max_length 64 + backbone.max_prompt_length 64 = 128 positions)"
    ) in result.stderr


@pytest.mark.slow
def test_smoke_config_runs_the_whole_graph(smoke_run):
    results = smoke_run / "results" / "smoke"
    for table in ("per_language", "summary", "languages", "distance_correlation"):
        assert (results / "tables" / f"{table}.csv").stat().st_size > 0
    for figure in (
        "heatmap_topic",
        "heatmap_nli",
        "heatmap_paraphrase",
        "accuracy_vs_distance",
        "comparisons_topic",
        "training_topic",
        "training_nli",
        "training_paraphrase",
    ):
        assert (results / "figures" / f"{figure}.png").stat().st_size > 0
    assert (smoke_run / "logs" / "smoke" / "aggregate.log").exists()
    # every rule writes a benchmark file (benchmarks/bench_workflow.py tabulates them)...
    runs = smoke_run / "benchmarks" / "runs"
    benchmarked = {p.name for p in (runs / "smoke").iterdir()} | {p.name for p in runs.iterdir()} - {"smoke"}
    rules = set(workflow_rules())
    rules -= {"download_dataset", "assemble_data", "download_backbone"}  # the real path's (tests/test_real_path.py)
    assert {name.removesuffix(".tsv") for name in benchmarked} == rules
    # ...every GPU job claimed a device of its own...
    gpu_logs = [
        log
        for log in (smoke_run / "logs").rglob("*.log")
        if GPU_RULES & {*log.relative_to(smoke_run / "logs").parts[:-1], log.stem}
    ]
    assert len(gpu_logs) > 30
    for log in gpu_logs:
        assert re.search(r"running on device [01] \(lock ", log.read_text()), log
    # ...and every job that tokenises logs how long it took
    assert (
        "time in tokenising"
        in (smoke_run / "logs" / "smoke" / "evaluate" / "tiny-xlmr-smoke" / "topic.log").read_text()
    )


@pytest.mark.slow
def test_smoke_run_transfers_prompts_between_tasks_and_languages(smoke_run):
    import pandas as pd

    tables = smoke_run / "results" / "smoke" / "tables"
    everything = pd.read_csv(tables / "transfer.csv")
    transfer = everything[everything.model == "tiny-xlmr-smoke"]
    runs = transfer[transfer.applicable].groupby(["target", "init"])["source"].agg(lambda s: sorted(set(s)))
    for target in ("domain", "rte"):
        assert runs[(target, "transfer")] == ["mix", "topic", "topic_rev"]
        assert runs[(target, "random")] == runs[(target, "label_words")] == ["none"]
    # zero-shot where a label map exists: topic (and the mix holding topic) on domain, the mix's nli on rte
    assert runs[("domain", "zero_shot")] == ["mix", "topic", "topic_rev"]
    assert runs[("rte", "zero_shot")] == ["mix"]
    assert set(transfer.loc[~transfer.applicable, "source"]) == {"topic", "topic_rev"}
    assert set(transfer.loc[transfer.source == "topic_rev", "source_language"]) == {"rev"}
    assert (transfer.loc[transfer.init == "random", "gain"] == 0).all()
    retrieval = pd.read_csv(tables / "retrieval.csv")
    assert set(retrieval.similarity) == {
        "avg_cos",
        "tok_cos",
        "flat_cos",
        "euclidean",
        "euclidean_sim",
        "on",
        "jaccard",
    }
    assert set(retrieval.target) == {"domain", "rte", "mean"}
    assert (retrieval.oracle >= retrieval.best_of_top3).all()
    assert (retrieval.best_of_top3 >= retrieval.top1).all()
    assert (smoke_run / "results" / "smoke" / "figures" / "transfer_gain.png").stat().st_size > 0
    # cross-model: the small backbone's targets start from prompts projected from the main one
    cross = everything[everything.model == "tiny-xlmr-smoke-small"]
    assert set(cross.init) == {"random", "label_words", "projector", "projector_zero_shot"}
    assert set(cross.loc[cross.init.str.startswith("projector"), "source"]) == {"tiny-xlmr-smoke"}
    assert set(cross.target) == {"domain", "rte"}
    assert cross.applicable.all()
    # activated-neuron overlap, correlation with transfer, and the masking check
    similarity = pd.read_csv(tables / "similarity.csv")
    assert {"snapshot", "final", "activations"} == set(similarity.embedding)
    assert {"on", "jaccard"} <= set(similarity.metric)
    assert similarity["value"].notna().all()
    correlation = pd.read_csv(tables / "correlation.csv")
    assert {"gain_en", "gain_mean", "zero_shot_en"} == set(correlation.outcome)
    masking = pd.read_csv(tables / "neuron_masking.csv")
    assert set(masking.condition) == {"all_on", "top_off", "random_off"}
    assert set(masking.name) == {"topic", "topic_rev"}  # the mixture has no single task to test
    for figure in ("similarity_vs_transfer", "neuron_masking"):
        assert (smoke_run / "results" / "smoke" / "figures" / f"{figure}.png").stat().st_size > 0
    # the single-task English source is the experiment's own spt prompt, not trained twice
    assert not (smoke_run / "results" / "smoke" / "sources" / "tiny-xlmr-smoke" / "topic").exists()


@pytest.mark.slow
def test_every_accuracy_and_macro_f1_is_recomputed_from_the_saved_predictions(smoke_run):
    """per_language.csv from the per-example predictions, with scikit-learn, to the last printed digit."""
    import numpy as np
    import pandas as pd
    from sklearn.metrics import accuracy_score, f1_score

    results = smoke_run / "results" / "smoke"
    keys = ["model", "task", "method", "prompt_length", "source", "seed", "lang"]
    table = pd.read_csv(results / "tables" / "per_language.csv", dtype={"value": str}, keep_default_na=False)
    printed = {tuple(str(part) for part in (*row[keys], row.metric)): row.value for _, row in table.iterrows()}
    checked = set()
    for path in sorted((results / "predictions").rglob("*.parquet")):
        frame = pd.read_parquet(path)
        labels = [column.removeprefix("score_") for column in frame.columns if column.startswith("score_")]
        scores = frame[[f"score_{label}" for label in labels]].to_numpy()
        assert (frame["pred"].to_numpy() == np.array(labels)[scores.argmax(axis=1)]).all(), path
        assert not frame.duplicated(["lang", "example_id"]).any(), path
        for key, group in frame.groupby(keys):
            key = tuple(str(part) for part in key)
            recomputed = {
                "accuracy": accuracy_score(group.gold, group.pred),
                "macro_f1": f1_score(group.gold, group.pred, labels=labels, average="macro", zero_division=0),
            }
            for metric, value in recomputed.items():
                assert printed[(*key, metric)] == f"{value:.6g}", (key, metric)
                checked.add((*key, metric))
    assert checked == {tuple(str(part) for part in key) for key in printed}  # every row of the table


@pytest.mark.slow
def test_every_table_row_has_an_interval_and_every_pair_of_methods_a_paired_test(smoke_run):
    import itertools

    import pandas as pd

    tables = smoke_run / "results" / "smoke" / "tables"
    per_language, summary = pd.read_csv(tables / "per_language.csv"), pd.read_csv(tables / "summary.csv")
    for table, value in ((per_language, "value"), (summary, "mean")):
        assert table[["low", "high"]].notna().all().all()
        assert ((table["low"] <= table[value] + 1e-6) & (table[value] <= table["high"] + 1e-6)).all()
    comparisons = pd.read_csv(tables / "comparisons.csv", keep_default_na=False)
    smoke = yaml.safe_load(SMOKE.read_text())
    languages = {language["code"] for language in smoke["world"]["languages"]} | {"all"}
    for task in smoke["tasks"]:
        rows = comparisons[comparisons.task == task]
        assert set(zip(rows.method_a, rows.method_b, rows.lang)) == {
            (a, b, lang) for a, b in itertools.combinations(smoke["methods"], 2) for lang in languages
        }
    # each side's accuracy is the summary's mean over seeds on the same examples
    means = summary[summary.metric == "accuracy"].set_index(["task", "method", "lang"])["mean"]
    for row in comparisons[comparisons.lang != "all"].itertuples():
        assert row.accuracy_a == pytest.approx(means[(row.task, row.method_a, row.lang)], abs=1e-5)
        assert row.accuracy_b == pytest.approx(means[(row.task, row.method_b, row.lang)], abs=1e-5)
        assert row.low <= row.difference <= row.high
        assert row.p_value <= row.p_holm <= 1
    # SPoT's inits of each target likewise, each side's accuracy the mean over seeds in transfer.csv
    transfer = pd.read_csv(tables / "transfer.csv")
    transfer = transfer[(transfer.metric == "accuracy") & transfer.applicable]
    arm = transfer["init"].where(
        ~transfer["init"].isin(["transfer", "zero_shot"]),
        transfer["source"].where(transfer["init"] == "transfer", "zero_shot:" + transfer["source"]),
    )
    means = transfer.assign(arm=arm).groupby(["model", "target", "arm", "lang"])["value"].mean()
    inits = pd.read_csv(tables / "transfer_comparisons.csv", keep_default_na=False)
    assert set(inits.model) == set(means.index.get_level_values("model"))
    assert len(inits)
    for row in inits[inits.lang != "all"].itertuples():
        assert row.accuracy_a == pytest.approx(means[(row.model, row.task, row.arm_a, row.lang)], abs=1e-5)
        assert row.accuracy_b == pytest.approx(means[(row.model, row.task, row.arm_b, row.lang)], abs=1e-5)
    arms = means.groupby(["model", "target"]).apply(lambda group: group.index.get_level_values("arm").nunique())
    pairs = inits[inits.lang == "all"].groupby(["model", "task"]).size()
    assert pairs.to_dict() == {key: n * (n - 1) // 2 for key, n in arms.items()}  # every pair of inits


@pytest.mark.slow
def test_training_curves_hold_every_validation_of_every_trained_grid_prompt(smoke_run):
    """training_curves.csv against the prompts' own train_log.jsonl: one point per validation line
    and metric, with its numbers; the controls, which do not train, have no curve."""
    import pandas as pd

    results = smoke_run / "results" / "smoke"
    curves = pd.read_csv(results / "tables" / "training_curves.csv")
    config = yaml.safe_load(SMOKE.read_text())
    prompts = results / "prompts" / config["backbone"]["name"]
    trained = 0
    for log in sorted(prompts.glob("*/*/L*/seed*/train_log.jsonl")):
        task, method, length, seed = log.relative_to(prompts).parts[:4]
        run = curves[
            (curves.task == task)
            & (curves.method == method)
            & (curves.prompt_length == int(length[1:]))
            & (curves.seed == int(seed.removeprefix("seed")))
        ]
        validations = [row for row in map(json.loads, log.read_text().splitlines()) if "dev_accuracy" in row]
        if method in ("untrained", "no_prompt"):
            assert not validations, log
            assert run.empty, log
            continue
        trained += 1
        assert validations, log
        for metric in ("dev_accuracy", "dev_loss", "train_loss"):
            points = run[run.metric == metric]
            assert len(points) == len(validations), (log, metric)
            assert points["step"].tolist() == [row["step"] for row in validations], (log, metric)
            assert points["value"].tolist() == pytest.approx([row[metric] for row in validations], rel=1e-5)
    assert trained == len(config["tasks"]) * 3 * len(config["prompt"]["lengths"]) * len(config["seeds"])
    assert len(curves) == 3 * len(curves[curves.metric == "dev_accuracy"])
    assert set(curves.method) == {"spt", "full_ft", "ltp"}
    assert set(curves.model) == {config["backbone"]["name"]}
    for task in config["tasks"]:
        assert (results / "figures" / f"training_{task}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_report_gathers_every_figure_with_its_caption(smoke_run):
    report = smoke_run / "results" / "smoke" / "report.html"
    snakemake("--configfile", str(SMOKE), "--report", str(report), cwd=smoke_run)
    html = report.read_text(encoding="utf-8")
    for figure in (
        "heatmap_topic",
        "accuracy_vs_distance",
        "transfer_gain",
        "similarity_vs_transfer",
        "neuron_masking",
        "training_topic",
    ):
        assert f"{figure}.png" in html, figure
    for caption in (
        "Soft prompt transfer (SPoT)",
        "Does prompt similarity predict transfer?",
        "Neuron masking check",
        "Training curves of every prompt of the method grid",
    ):
        assert caption in html, caption


@pytest.mark.slow
def test_second_run_has_nothing_to_do(smoke_run):
    result = snakemake("--cores", "2", "--configfile", str(SMOKE), cwd=smoke_run)
    assert "Nothing to be done" in result.stdout + result.stderr


@pytest.mark.slow
def test_a_changed_target_setting_reruns_only_the_target_groups(smoke_run, tmp_path):
    """SPoT's target training changes: the groups of targets train again, no other prompt does."""
    changed = yaml.safe_load(SMOKE.read_text())
    changed["spot"]["training"]["lr"] = changed["spot"]["training"].get("lr", 0.3) / 2
    (tmp_path / "changed.yaml").write_text(yaml.safe_dump(changed))
    jobs = job_outputs(snakemake("-n", "--configfile", str(tmp_path / "changed.yaml"), cwd=smoke_run).stdout)
    assert "train_prompt" not in jobs, jobs.keys()
    assert jobs[GROUP_RULE], jobs.keys()
    assert all("/transfer/" in path for outputs in jobs[GROUP_RULE] for path in outputs), jobs[GROUP_RULE]
    assert {"pretrain_backbone", "finetune_mlm", "select_ticket", "evaluate"}.isdisjoint(jobs), jobs.keys()


@pytest.mark.slow
def test_killed_run_leaves_nothing_that_looks_complete_and_reruns_to_the_same_tables(smoke_run, tmp_path):
    """kill -9 the run of the method tables (and every job they need), started from scratch, while prompts
    train; the rerun finishes with tables byte-identical to the smoke run's (the training seconds of
    methods.csv aside): reproducible from the world and backbone on, and resumable."""
    workdir = tmp_path / "killed"
    workdir.mkdir()
    run = (METHOD_TABLES_TARGET, "--cores", "2", "--configfile", str(SMOKE))  # the target first: see METHOD_TABLES
    cmd, env = snakemake_command(*run, cwd=workdir)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    prompts = workdir / "results" / "smoke" / "prompts"
    deadline = time.time() + 300
    while time.time() < deadline and not list(prompts.rglob("meta.json")):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for artifact in prompts.glob("*/*/*/*/seed*"):
        assert (artifact / "meta.json").exists(), artifact
        assert (artifact / "prompt.safetensors").exists(), artifact
    assert not (workdir / METHOD_TABLES_TARGET).exists()

    # As README says: a killed Snakemake keeps its lock; unlock, then run the same command again
    # (the profile's rerun-incomplete redoes the job that was killed).
    snakemake("--unlock", "--configfile", str(SMOKE), cwd=workdir)
    snakemake(*run, cwd=workdir)
    for name in METHOD_TABLES:
        table = smoke_run / "results" / "smoke" / "tables" / f"{name}.csv"
        rerun = workdir / "results" / "smoke" / "tables" / table.name
        assert comparable_table(rerun) == comparable_table(table), table.name


@pytest.mark.slow
def test_every_artifact_records_how_it_was_made(smoke_run):
    """Every trained artifact (backbones, prompts, sources, transfers, projectors, tickets)."""
    records = [*smoke_run.rglob("meta.json"), *smoke_run.rglob("ticket.json")]
    kinds = {path.relative_to(smoke_run).parts[:3] for path in records}
    assert {
        ("resources", "models", "tiny-xlmr-smoke"),
        ("results", "smoke", "prompts"),
        ("results", "smoke", "tickets"),
        ("results", "smoke", "transfer"),
        ("results", "smoke", "projectors"),
        ("results", "smoke", "projected"),
        ("results", "smoke", "mlm"),
        ("results", "smoke", "sources"),
    } <= kinds, kinds
    for path in records:
        meta = json.loads(path.read_text())
        assert {"config", "seed", "versions", "git_commit", "inputs_sha256"} <= set(meta), path
        assert meta["inputs_sha256"], path
        assert {"torch", "transformers", "python"} <= set(meta["versions"]), path
