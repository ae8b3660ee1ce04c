"""The workflow on a real (single-node, private) Slurm cluster, through workflow/profiles/slurm.

Needs Debian's slurmctld, slurmd, slurm-client and munge: `make test` installs them when it runs
as root. Elsewhere these tests are skipped with that reason, unless XLPROMPT_REQUIRE_SLURM=1 (set
by .ci/run), where a missing tool is a failure.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import yaml
from slurm_cluster import DAEMONS, job_records, missing_tools, running_cluster
from workflow_run import (
    GPU_RULES,
    GROUP_RULE,
    METHOD_TABLES,
    METHOD_TABLES_TARGET,
    REPO,
    SMOKE,
    comparable_table,
    rule_kind,
    snakemake_command,
)

PROFILE = REPO / "workflow" / "profiles" / "slurm" / "config.yaml"
PAUSE_HOOK = REPO / "tests" / "slurm" / "pause_after_checkpoint"


@pytest.fixture
def slurm_state():
    """A short state folder (munge's socket path must stay under ~100 characters)."""
    missing = missing_tools()
    if missing:
        message = f"Slurm tools not installed: {', '.join(missing)} (make test installs them when run as root)"
        if os.environ.get("XLPROMPT_REQUIRE_SLURM") == "1":
            pytest.fail(message)
        pytest.skip(message)
    with tempfile.TemporaryDirectory(prefix="xlprompt-slurm-") as folder:
        yield Path(folder) / "state"


def test_daemons_are_stopped_even_when_the_test_inside_fails(slurm_state):
    script = f"""
import json, sys
sys.path.insert(0, {str(REPO / "tests")!r})
from pathlib import Path
from slurm_cluster import DAEMONS, running_cluster
state = Path({str(slurm_state)!r})
with running_cluster(state):
    print(json.dumps([int((state / "run" / f"{{d}}.pid").read_text()) for d in DAEMONS]), flush=True)
    raise AssertionError("a test failing while the cluster runs")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert result.returncode != 0
    assert "a test failing while the cluster runs" in result.stderr
    pids = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(pids) == len(DAEMONS)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not slurm_state.exists()
    for name in ("slurm.conf", "gres.conf"):  # the links start-cluster made are gone with it
        link = Path("/etc/slurm") / name
        assert not (link.is_symlink() and str(slurm_state) in os.readlink(link))


def test_profile_gives_every_gpu_rule_its_cpus():
    """cpus_per_gpu for all (the plugin applies it to GPU jobs only), so rules named in a loop get it too."""
    profile = yaml.safe_load(PROFILE.read_text())
    assert profile["default-resources"]["cpus_per_gpu"] >= 1
    assert "set-resources" not in profile
    assert profile["executor"] == "slurm"
    assert profile["retries"] >= 1


def profile_for_this_cluster(tmp_path: Path) -> Path:
    """The slurm profile with this one-node cluster's values (as README says a user edits it)."""
    profile = yaml.safe_load(PROFILE.read_text())
    profile["default-resources"]["cpus_per_gpu"] = 1  # a 2-CPU node
    profile["default-resources"]["mem_mb"] = 1000
    profile["slurm-init-seconds-before-status-checks"] = 2
    profile["latency-wait"] = 5
    folder = tmp_path / "profile"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


def run_until_done(cmd: list[str], env: dict, log: Path, timeout: float) -> int:
    """Run Snakemake; past ``timeout`` stop it with SIGINT (it then cancels its Slurm jobs)."""
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as err:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise AssertionError(f"the Slurm run took over {timeout} s; its log:\n{log.read_text()[-4000:]}") from err


def cancel_the_paused_job(marker: Path, checkpoints: Path, env: dict, done: threading.Event, seen: dict) -> None:
    """Preempt a training job: once it has written a checkpoint (and paused), scancel it."""
    while not done.is_set() and not marker.exists():
        time.sleep(0.2)
    time.sleep(0.2)  # the job id follows the file's creation
    if done.is_set():
        return
    seen["job"] = marker.read_text().strip()
    seen["checkpoints"] = [str(p.relative_to(checkpoints)) for p in checkpoints.rglob("latest.json")]
    seen["comment"] = subprocess.run(
        ["squeue", "-h", "-j", seen["job"], "-o", "%k"], capture_output=True, text=True, env=env
    ).stdout.strip()
    subprocess.run(["scancel", seen["job"]], env=env, check=True)


# What the Slurm run makes: the method tables (METHOD_TABLES) and every job they need. The rest of the smoke
# graph (SPoT, cross-model transfer, ON) runs the same stages through the same profile; the local smoke run
# covers it. The plugin waits 10 s more between status checks after each check that finds nothing finished,
# so each job costs far more here than locally: the whole graph took 7 minutes, this part about half.


@pytest.mark.slow
def test_smoke_config_on_slurm_equals_the_local_run(slurm_state, smoke_run, tmp_path):
    """Every job through sbatch and COMPLETED, GPU rules with a GPU each, a training job cancelled
    after its first checkpoint retried and resumed from it, and the method tables byte-identical to a
    local run's."""
    work = tmp_path / "work"
    work.mkdir()
    marker = tmp_path / "paused-job"
    with running_cluster(slurm_state) as cluster_env:
        env_extra = {
            **cluster_env,
            "XLPROMPT_TEST_PAUSE_MARKER": str(marker),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PAUSE_HOOK), os.environ.get("PYTHONPATH")])),
        }
        cmd, env = snakemake_command(
            METHOD_TABLES_TARGET,  # first: --configfile takes every word after it
            "--profile",
            str(profile_for_this_cluster(tmp_path)),
            "--configfile",
            str(SMOKE),
            cwd=work,
            extra_env=env_extra,
        )
        done, seen = threading.Event(), {}
        watcher = threading.Thread(
            target=cancel_the_paused_job, args=(marker, work / "results" / "smoke" / "checkpoints", env, done, seen)
        )
        watcher.start()
        try:
            returncode = run_until_done(cmd, env, tmp_path / "snakemake.log", timeout=1500)
        finally:
            done.set()
            watcher.join()
        log = (tmp_path / "snakemake.log").read_text()
        assert returncode == 0, log[-4000:]
        submitted = re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", log)
        records = job_records([slurm_id for _, slurm_id in submitted], env)

    # Every job of the graph went through sbatch; all completed but the one cancelled, which was
    # submitted again and completed.
    steps = int(re.findall(r"(\d+) of \1 steps \(100%\) done", log)[-1])
    assert steps >= 15
    assert len({job for job, _ in submitted}) == steps
    states = {slurm_id: record["JobState"] for slurm_id, record in records.items()}
    assert seen.get("job") in states, f"no job paused after a checkpoint: {seen}"
    assert states.pop(seen["job"]) == "CANCELLED"
    assert set(states.values()) == {"COMPLETED"}, states
    assert len(submitted) == steps + 1  # one of them twice
    cancelled_rule = rule_kind(seen["comment"].removeprefix("rule_").split("_wildcards_")[0])
    assert cancelled_rule in {"train_prompt", GROUP_RULE}, seen
    assert seen["checkpoints"], "the job was cancelled before any checkpoint existed"

    # GPU rules asked for (and got) a GPU each; the others none.
    for record in records.values():
        rule = rule_kind(record["Comment"].removeprefix("rule_").split("_wildcards_")[0])
        asked = record.get("TresPerJob", "") + record.get("TresPerNode", "")
        assert ("gpu:1" in asked) == (rule in GPU_RULES), (rule, record)

    # The cancelled job's rerun resumed from its checkpoint instead of starting over.
    resumed = [path for path in (work / "logs").rglob("*.log") if "resumed from checkpoint" in path.read_text()]
    assert len(resumed) == 1, resumed
    assert re.search(r"resumed from checkpoint .* at step 5\b", resumed[0].read_text())

    for name in METHOD_TABLES:
        local = smoke_run / "results" / "smoke" / "tables" / f"{name}.csv"
        assert comparable_table(work / "results" / "smoke" / "tables" / f"{name}.csv") == comparable_table(local), name


def filled_hub_cache(cache: Path) -> None:
    """XNLI (en), AmericasNLI (aym) and an XLM-R snapshot in a Hugging Face cache: the Hub's stand-in."""
    import torch
    from hub_fixtures import model_snapshot, nli_sentence_file, snapshot_folder
    from safetensors.torch import save_file

    from xlprompt.data.hub import HUB_BACKBONES

    for split, rows in (("train", 12), ("validation", 6), ("test", 6)):
        nli_sentence_file(snapshot_folder(cache, "xnli") / "en" / f"{split}-00000-of-00001.parquet", rows, seed=rows)
    for split in ("validation", "test"):
        nli_sentence_file(snapshot_folder(cache, "americasnli") / "aym" / f"{split}-00000-of-00001.parquet", 6, seed=1)
    model = cache.parent / "model"  # download_backbone copies and checks files; it loads no weights
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "xlm-roberta"}))
    save_file({"weight": torch.zeros(2)}, str(model / "model.safetensors"))
    model_snapshot(cache, "FacebookAI/xlm-roberta-base", HUB_BACKBONES["FacebookAI/xlm-roberta-base"], model)


@pytest.mark.slow
def test_downloads_run_on_the_submit_host_and_the_rest_through_sbatch(slurm_state, tmp_path):
    """On a cluster whose compute nodes have no network, only the download rules may fetch: they are local
    jobs (localrules), and the jobs after them are submitted, offline."""
    cache = tmp_path / "hf" / "hub"
    filled_hub_cache(cache)
    config = yaml.safe_load((REPO / "config" / "xnli-xlmr.yaml").read_text())
    config["data"]["tasks"]["nli"] = [
        {"hub": "xnli", "languages": ["en"]},
        {"hub": "americasnli", "languages": ["aym"]},
    ]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    work = tmp_path / "work"
    work.mkdir()
    data, model = "resources/data/xnli-americasnli", "resources/models/xlm-roberta-base"
    with running_cluster(slurm_state) as cluster_env:
        cmd, env = snakemake_command(
            data,
            model,
            "--profile",
            str(profile_for_this_cluster(tmp_path)),
            "--configfile",
            str(tmp_path / "config.yaml"),
            cwd=work,
            extra_env={
                **cluster_env,
                "HF_HUB_CACHE": str(cache),
                "HF_DATASETS_CACHE": str(tmp_path / "datasets-cache"),
            },
        )
        returncode = run_until_done(cmd, env, tmp_path / "snakemake.log", timeout=600)
        log = (tmp_path / "snakemake.log").read_text()
        assert returncode == 0, log[-4000:]
        submitted = re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", log)
        records = job_records([slurm_id for _, slurm_id in submitted], env)
    ran_on_slurm = {rule_kind(r["Comment"].removeprefix("rule_").split("_wildcards_")[0]) for r in records.values()}
    assert ran_on_slurm == {"assemble_data"}, ran_on_slurm
    assert {r["JobState"] for r in records.values()} == {"COMPLETED"}
    for rule in ("download_dataset", "download_backbone"):  # run by Snakemake itself, on this host
        assert re.search(rf"localrule {rule}:", log), rule
    assert f"Hugging Face cache: {cache}; the downloads fill it here" in log
    assert (work / data / "languages.json").exists()
    assert (work / model / "model.safetensors").exists()
