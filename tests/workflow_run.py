"""Running Snakemake on this repository's workflow from tests, as a user would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "config" / "smoke.yaml"
# The smoke graph's method tables (rule aggregate): a target that runs every job they need, from the world and
# the backbone through LTP's ticket, every training job and the evaluations, without SPoT, cross-model
# transfer and ON (the Slurm run and the killed run make this part; the local smoke run makes everything).
METHOD_TABLES_TARGET = "results/smoke/tables/per_language.csv"
METHOD_TABLES = ("per_language", "summary", "languages", "distance_correlation", "tasks", "comparisons", "methods")
DEFAULT_PROFILE = ["--workflow-profile", str(REPO / "workflow" / "profiles" / "default")]


# The rules defined in a loop, one per group of prompts trained together (prompts.smk), are
# named train_group_<kind>_<key>_L<length>_<index>; tests know them as one rule.
GROUP_RULE = "train_group"


def workflow_rules() -> dict[str, str]:
    """Every rule of workflow/rules/*.smk: name -> its text (up to the next rule); the rules a loop
    defines (``rule:`` with a ``name:``) under :data:`GROUP_RULE`."""
    text = "\n".join(path.read_text() for path in sorted((REPO / "workflow" / "rules").glob("*.smk")))
    parts = re.split(r"(?m)^ *rule (\w+):|^ *rule:\n(?= *name:)", text)
    names = [name or GROUP_RULE for name in parts[1::2]]
    return dict(zip(names, parts[2::2]))


def rule_kind(name: str) -> str:
    """A job's rule as the tests know it: a group rule's concrete name as :data:`GROUP_RULE`."""
    return GROUP_RULE if name.startswith(GROUP_RULE + "_") else name


def rule_stage(body: str) -> str:
    """The xlprompt stage a rule's shell command runs (``python -m xlprompt <stage>``)."""
    found = re.search(r"python -m xlprompt (\w+)", body)
    if found is None:
        raise AssertionError(f"no 'python -m xlprompt <stage>' in the rule:\n{body}")
    return found.group(1)


# Rules that ask for a GPU (resources: gpu=1), read from the rules themselves so that a rule added
# later is covered too: locally they claim a device, on Slurm they get --gpus=1.
GPU_RULES = frozenset(name for name, body in workflow_rules().items() if re.search(r"(?m)^\s+gpu\s*=", body))


def snakemake_command(*args: str, cwd: Path, extra_env: dict[str, str] | None = None) -> tuple[list[str], dict]:
    """The command line and environment of ``snakemake <args>`` on this workflow, run in ``cwd``."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HF_HUB_OFFLINE": "1",
        "XLPROMPT_PROGRESS": "0",
        **(extra_env or {}),
    }
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(cwd), *DEFAULT_PROFILE, *args]
    return cmd, env


def snakemake(
    *args: str, cwd: Path = REPO, check: bool = True, extra_env: dict[str, str] | None = None, **kwargs
) -> subprocess.CompletedProcess:
    cmd, env = snakemake_command(*args, cwd=cwd, extra_env=extra_env)
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def run_smoke_locally(workdir: Path) -> Path:
    """The smoke config run from scratch in ``workdir``, as on a machine with two GPUs (fake ones:
    xlprompt.runtime.devices claims them, nothing uses CUDA)."""
    snakemake(
        "--cores",
        "2",
        "--resources",
        "gpu=2",
        "--configfile",
        str(SMOKE),
        cwd=workdir,
        extra_env={"XLPROMPT_DEVICES": "0,1"},
    )
    return workdir


# Columns that measure the machine, not the results: left out where two runs' tables are compared.
TIMING_COLUMNS = {"methods.csv": ["train_seconds"]}


def comparable_table(path: Path) -> bytes:
    """A results table as bytes, its timing columns (:data:`TIMING_COLUMNS`) left out."""
    if path.name not in TIMING_COLUMNS:
        return path.read_bytes()
    import pandas as pd

    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert set(TIMING_COLUMNS[path.name]) <= set(frame.columns), path
    return frame.drop(columns=TIMING_COLUMNS[path.name]).to_csv(index=False).encode()
