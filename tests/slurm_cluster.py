"""A private single-node Slurm cluster for tests: tests/slurm/start-cluster and stop-cluster."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent / "slurm"
TOOLS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo")
DAEMONS = ("munged", "slurmctld", "slurmd")


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


@contextmanager
def running_cluster(state: Path) -> Iterator[dict[str, str]]:
    """Start the cluster with its state in ``state``; yield the environment its clients need.

    The daemons are stopped (by the PIDs they wrote) however the block ends: an error in the
    block, a failed assertion, a start that failed half-way.
    """
    try:
        started = subprocess.run(
            [str(SCRIPTS / "start-cluster"), str(state)], capture_output=True, text=True, timeout=120
        )
        if started.returncode != 0:
            raise RuntimeError(f"start-cluster failed ({started.returncode}):\n{started.stdout}\n{started.stderr}")
        yield {"SLURM_CONF": str(state / "etc" / "slurm.conf")}
    finally:
        subprocess.run([str(SCRIPTS / "stop-cluster"), str(state)], capture_output=True, timeout=120)


def job_records(job_ids: list[str], env: dict[str, str]) -> dict[str, dict[str, str]]:
    """``scontrol show job`` of each job, as {job id: {field: value}} (one job per line with -o)."""
    records = {}
    for job_id in job_ids:
        line = subprocess.run(
            ["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True, env=env, check=True
        ).stdout
        fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
        records[job_id] = fields
    return records
