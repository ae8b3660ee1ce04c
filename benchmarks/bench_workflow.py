"""The cost of a whole workflow run, fresh in a temporary folder:

- wall time of the graph on 2 cores, then of a second ``snakemake`` call with nothing to do
  (target: under 10 s; it parses the rules and checks every output's timestamp);
- time per rule from the ``benchmark:`` file every job writes (jobs, total, mean and max
  seconds, peak RSS);
- tokenising against training: the seconds each job spent tokenising (every stage logs
  ``time in tokenising: ... s`` as it exits) summed over the run, against the summed wall
  time of the jobs that train (pretraining, LTP fine-tuning, prompts, sources, transfers,
  projectors). Each data set is tokenised once per job that reads it, by the same fast
  tokenizer; the share says whether a tokenisation cache across jobs would pay.

    python benchmarks/bench_workflow.py                                 # smoke graph, ~3 min (make bench)
    python benchmarks/bench_workflow.py --config config/config.yaml     # the demo graph, ~19 min
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml
from record import RESULTS, save  # benchmarks/ is on sys.path when a script runs

REPO = Path(__file__).resolve().parents[1]
TRAINING_RULES = ("pretrain_backbone", "finetune_mlm", "train_prompt", "train_group", "train_projector")
SHARED_RULES = ("generate_world", "pretrain_backbone")  # resources shared by experiments: no experiment folder
TOKENISING = re.compile(r"time in tokenising: ([0-9.]+) s")


def snakemake(workdir: Path, config: Path, cores: int) -> tuple[float, str]:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HF_HUB_OFFLINE": "1",
        "XLPROMPT_PROGRESS": "0",
    }
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(workdir),
        "--workflow-profile",
        str(REPO / "workflow" / "profiles" / "default"),
        "--cores",
        str(cores),
        "--configfile",
        str(config),
    ]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return seconds, result.stdout + result.stderr


def rule_of(tsv: Path, runs: Path) -> str:
    parts = tsv.relative_to(runs).parts
    name = parts[0] if parts[0] in SHARED_RULES else parts[1]
    return name.removesuffix(".tsv")


def per_rule_table(runs: Path) -> pd.DataFrame:
    rows = []
    for tsv in sorted(runs.rglob("*.tsv")):
        bench = pd.read_csv(tsv, sep="\t")
        rows.append(
            {
                "rule": rule_of(tsv, runs),
                "s": float(bench["s"].iloc[0]),
                "max_rss_mb": pd.to_numeric(bench["max_rss"], errors="coerce").iloc[0],
            }
        )
    jobs = pd.DataFrame(rows)
    table = jobs.groupby("rule").agg(
        jobs=("s", "size"),
        total_s=("s", "sum"),
        mean_s=("s", "mean"),
        max_s=("s", "max"),
        max_rss_mb=("max_rss_mb", "max"),
    )
    return table.sort_values("total_s", ascending=False).round(2)


def tokenising_seconds(logs: Path) -> float:
    return sum(float(m.group(1)) for log in logs.rglob("*.log") for m in TOKENISING.finditer(log.read_text()))


def measure(config: Path, cores: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        wall, _ = snakemake(workdir, config, cores)
        noop, out = snakemake(workdir, config, cores)
        if "Nothing to be done" not in out:
            raise SystemExit(f"the second snakemake call had work to do:\n{out[-3000:]}")
        table = per_rule_table(workdir / "benchmarks" / "runs")
        tokenising = tokenising_seconds(workdir / "logs")
    training = float(table.loc[table.index.isin(TRAINING_RULES), "total_s"].sum())
    return {
        "config": str(config.relative_to(REPO)) if config.is_relative_to(REPO) else str(config),
        "measured_on": datetime.date.today().isoformat(),
        "cores": cores,
        "wall_s": round(wall, 1),
        "jobs": int(table["jobs"].sum()),
        "job_seconds": round(float(table["total_s"].sum()), 1),
        "noop_s": round(noop, 2),
        "noop": {"value": round(noop, 2), "target": "< 10 s", "met": noop < 10},
        "tokenising_s": round(tokenising, 2),
        "training_jobs_s": round(training, 1),
        "tokenising_share_of_training": round(tokenising / training, 5),
        "per_rule": table.reset_index().to_dict("records"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=REPO / "config" / "smoke.yaml")
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    config = args.config.resolve()
    rows = measure(config, args.cores)
    print(
        f"{rows['config']}: {rows['jobs']} jobs in {rows['wall_s']:.1f} s wall on {rows['cores']} cores "
        f"({rows['job_seconds']:.1f} job-seconds); nothing-to-do call {rows['noop_s']:.2f} s (target < 10 s: "
        f"{rows['noop']['met']})"
    )
    print(
        f"tokenising {rows['tokenising_s']:.2f} s against {rows['training_jobs_s']:.1f} s of training jobs "
        f"({100 * rows['tokenising_share_of_training']:.2f}%)"
    )
    print(pd.DataFrame(rows["per_rule"]).to_string(index=False))
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    experiment = yaml.safe_load(config.read_text())["experiment"]
    save("workflow", {**results.get("workflow", {}), experiment: rows})


if __name__ == "__main__":
    main()
