"""Local GPU jobs: each claims its own device, never two on one (fake devices, on the CPU)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time

import pytest

from xlprompt.runtime.devices import claim_device, visible_devices

OUTSIDE_SLURM = {k: v for k, v in os.environ.items() if k != "SLURM_JOB_ID"}  # where claims happen

# Claim a device, hold it for a while, report when: what each GPU job of a run does.
HOLD = """
import json, os, sys, time
from pathlib import Path
from xlprompt.runtime.devices import claim_device
claim = claim_device(lock_dir=Path(sys.argv[1]), poll_s=0.05)
start = time.time()
time.sleep(float(sys.argv[2]))
print(json.dumps({"device": claim.device, "cuda": os.environ["CUDA_VISIBLE_DEVICES"], "start": start,
                  "end": time.time()}))
"""


def test_concurrent_jobs_each_get_their_own_device_and_the_extra_one_waits(tmp_path):
    env = {**OUTSIDE_SLURM, "XLPROMPT_DEVICES": "0,1"}
    jobs = [
        subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path), "1.5"], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    runs = [json.loads(job.communicate(timeout=60)[0]) for job in jobs]
    assert all(run["device"] == run["cuda"] for run in runs)  # the job only sees its own device
    assert {run["device"] for run in runs} == {"0", "1"}
    for device in ("0", "1"):  # on one device, one job at a time
        held = sorted((run["start"], run["end"]) for run in runs if run["device"] == device)
        assert all(earlier[1] <= later[0] for earlier, later in itertools.pairwise(held)), held
    first_end = min(run["end"] for run in runs)
    assert sorted(run["start"] for run in runs)[-1] >= first_end - 0.05  # the third waited for a free device


def test_a_killed_job_frees_its_device(tmp_path, monkeypatch):
    # A claim in this process narrows CUDA_VISIBLE_DEVICES. setenv first, so that monkeypatch
    # records the variable's state and restores it (delenv of an unset variable records
    # nothing): a leaked "7" makes every later workflow test's GPU jobs queue for one device.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    env = {**OUTSIDE_SLURM, "XLPROMPT_DEVICES": "7"}
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path), "60"], env=env, stdout=subprocess.PIPE)
    deadline = time.time() + 30
    while time.time() < deadline and not (tmp_path / "gpu-7.lock").exists():
        time.sleep(0.05)
    time.sleep(1.0)  # the holder has its lock now
    with pytest.raises(RuntimeError, match=r"every device \['7'\] stayed claimed"):
        claim_device(["7"], tmp_path, timeout_s=0.3, poll_s=0.05)
    holder.kill()  # SIGKILL: no cleanup code runs, the kernel drops the lock
    holder.wait()
    claim = claim_device(["7"], tmp_path, timeout_s=5, poll_s=0.05)
    assert claim is not None
    assert claim.device == "7"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "7"
    claim.release()


def test_the_device_tests_leave_the_environment_as_they_found_it():
    """Runs after the claims above (file order): nothing leaked into later tests' jobs."""
    assert os.environ.get("CUDA_VISIBLE_DEVICES") != "7"


def test_visible_devices_and_no_device(monkeypatch, tmp_path):
    monkeypatch.delenv("XLPROMPT_DEVICES", raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert visible_devices() == ["2", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_devices() == []
    assert claim_device() is None
    # Inside a Slurm job the scheduler isolates devices (each job may see its GPU as "0").
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    assert claim_device(lock_dir=tmp_path) is None
    assert not list(tmp_path.iterdir())
