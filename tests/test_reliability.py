"""Reliability: bad configs cost seconds, killed jobs resume, loading is safe, full disks are clear."""

from __future__ import annotations

import copy
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from test_config import BAD, smoke  # the same mistakes, now through Snakemake
from workflow_run import REPO, snakemake

from xlprompt.__main__ import main as xlprompt_main
from xlprompt.methods.artifacts import load_trained
from xlprompt.models.backbone import load_backbone

STAGE_ENV = {**os.environ, "XLPROMPT_PROGRESS": "0", "HF_HUB_OFFLINE": "1"}


def test_every_bad_config_stops_a_dry_run_with_one_clear_message(tmp_path):
    """Each mistake of test_config.BAD, as a user makes it: `snakemake -n --configfile bad.yaml`."""

    def dry_run(case):
        name, change, _message = case
        folder = tmp_path / name
        folder.mkdir()
        (folder / "bad.yaml").write_text(yaml.safe_dump(change(copy.deepcopy(smoke()))))
        return case, folder, snakemake("-n", "--configfile", str(folder / "bad.yaml"), cwd=folder, check=False)

    assert len(BAD) >= 15
    with ThreadPoolExecutor(max_workers=2) as pool:
        for (name, _, message), folder, result in pool.map(dry_run, BAD):
            assert result.returncode != 0, name
            errors = [line for line in result.stderr.splitlines() if line.startswith("config error: ")]
            assert len(errors) == 1, (name, result.stderr[-2000:])
            assert re.search(message, errors[0]), (name, result.stderr[-2000:])
            assert "Traceback" not in result.stderr, name
            assert 'File "' not in result.stderr, name
            assert "Job stats" not in result.stdout + result.stderr, name  # no job was even planned
            assert sorted(p.name for p in folder.iterdir() if p.name != ".snakemake") == ["bad.yaml"], name


def train_args(world_dir: Path, backbone_dir: Path, out: Path, checkpoints: Path) -> list[str]:
    return [
        "train_prompt",
        "--backbone",
        str(backbone_dir),
        "--data",
        str(world_dir / "topic"),
        "--out",
        str(out),
        "--checkpoint-dir",
        str(checkpoints),
        "--method",
        "spt",
        "--prompt-length",
        "4",
        "--steps",
        "12",
        "--batch-size",
        "8",
        "--eval-every",
        "4",
        "--checkpoint-every",
        "4",
        "--lr",
        "0.3",
        "--max-length",
        "48",
        "--threads",
        "1",
    ]


@pytest.fixture(scope="module")
def uninterrupted(world_dir, backbone_dir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("uninterrupted")
    subprocess.run(
        [sys.executable, "-m", "xlprompt", *train_args(world_dir, backbone_dir, root / "out", root / "ck")],
        check=True,
        env=STAGE_ENV,
        capture_output=True,
    )
    return root / "out"


@pytest.mark.parametrize(
    ("point", "n", "resumes_at"),
    [("step", 7, 4), ("checkpoint", 2, 4), ("artifact", 1, 8)],
    ids=["during-a-step", "writing-a-checkpoint", "writing-the-artifact"],
)
def test_a_killed_training_job_resumes_and_ends_like_an_uninterrupted_run(
    point, n, resumes_at, world_dir, backbone_dir, uninterrupted, tmp_path
):
    out, checkpoints = tmp_path / "out", tmp_path / "ck"
    args = train_args(world_dir, backbone_dir, out, checkpoints)
    killed = subprocess.run(
        [sys.executable, str(REPO / "tests" / "kill_at.py"), point, str(n), *args],
        env=STAGE_ENV,
        capture_output=True,
        text=True,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not out.exists()  # nothing that looks finished

    rerun = subprocess.run([sys.executable, "-m", "xlprompt", *args], env=STAGE_ENV, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"at step {resumes_at}" in rerun.stderr  # resumed, not started over
    ours, reference = load_file(out / "prompt.safetensors"), load_file(uninterrupted / "prompt.safetensors")
    assert ours.keys() == reference.keys()
    assert all(torch.equal(ours[k], reference[k]) for k in ours)
    assert (out / "train_log.jsonl").read_text() == (uninterrupted / "train_log.jsonl").read_text()
    assert not checkpoints.exists()  # a finished job removes its checkpoints
    assert not [p for p in tmp_path.rglob("*") if ".partial-" in p.name]  # and no half-written leftovers


def test_no_pickle_in_the_package():
    """Every tensor is read and written with safetensors; nothing unpickles a file."""
    source = "\n".join(p.read_text() for p in (REPO / "src" / "xlprompt").rglob("*.py"))
    for pattern in (
        r"(?m)^\s*(import|from)\s+(pickle|cPickle|dill|joblib|cloudpickle)\b",
        r"\bpickle\.loads?\(",
        r"torch\.load\(",
        r"\.from_pretrained\([^)]*trust_remote_code=True",
    ):
        assert not re.search(pattern, source), pattern


def test_backbones_load_without_remote_code_and_from_safetensors_only(backbone_dir, tmp_path, monkeypatch):
    from transformers import AutoModelForMaskedLM

    seen = {}
    real = AutoModelForMaskedLM.from_pretrained
    monkeypatch.setattr(
        AutoModelForMaskedLM, "from_pretrained", lambda *args, **kwargs: seen.update(kwargs) or real(*args, **kwargs)
    )
    load_backbone(backbone_dir)
    assert seen["trust_remote_code"] is False
    assert seen["use_safetensors"] is True
    # A folder holding only pickled weights is refused before anything is read.
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (pickled / name).write_bytes((backbone_dir / name).read_bytes())
    (pickled / "pytorch_model.bin").write_bytes(b"not read")
    with pytest.raises(ValueError, match=r"pickled.*no model.safetensors.*pickle"):
        load_backbone(pickled)


@pytest.mark.parametrize("damage", ["truncated", "tampered"])
def test_a_damaged_prompt_file_is_rejected_naming_it(damage, world_dir, backbone_dir, uninterrupted, tmp_path):
    artifact = shutil.copytree(uninterrupted, tmp_path / "artifact")
    tensors = artifact / "prompt.safetensors"
    data = bytearray(tensors.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:
        data[-3] ^= 0xFF  # one byte of a tensor: still a well-formed file, with other numbers
    tensors.write_bytes(bytes(data))
    message = "not a complete safetensors file" if damage == "truncated" else "sha256 differs from the one recorded"
    with pytest.raises(ValueError, match=message) as err:
        load_trained(artifact, backbone_dir)
    assert str(tensors) in str(err.value)


def test_a_truncated_backbone_is_rejected_naming_the_file(backbone_dir, tmp_path):
    copy_dir = shutil.copytree(backbone_dir, tmp_path / "backbone")
    weights = copy_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ValueError, match=f"{re.escape(str(weights))}: not a complete safetensors file"):
        load_backbone(copy_dir)


@pytest.mark.parametrize(
    "failure", [errno.ENOSPC, errno.EROFS, errno.EACCES], ids=["disk-full", "read-only", "no-permission"]
)
def test_an_unwritable_results_folder_fails_clearly_and_leaves_nothing(
    failure, world_dir, backbone_dir, tmp_path, monkeypatch, caplog
):
    """The final write fails (as a full or read-only disk makes it): one clear line, no partial output."""
    import xlprompt.methods.artifacts as artifacts

    def refuse(tensors, path, *args, **kwargs):
        Path(path).write_bytes(b"\0" * 10)  # some bytes got out before the disk said no
        raise OSError(failure, os.strerror(failure), str(path))

    monkeypatch.setattr(artifacts, "save_file", refuse)
    out = tmp_path / "results" / "prompt"
    with pytest.raises(SystemExit) as exit_info:
        xlprompt_main([*train_args(world_dir, backbone_dir, out, tmp_path / "ck")[:-2], "--steps", "2"])
    message = str(exit_info.value.code)
    assert os.strerror(failure) in message
    assert "nothing was kept" in message
    assert str(tmp_path / "results") in message
    assert not out.exists()
    assert not [p for p in (tmp_path / "results").rglob("*") if ".partial-" in p.name]


def test_every_artifact_records_how_it_was_made(uninterrupted):
    meta = json.loads((uninterrupted / "meta.json").read_text())
    assert {"config", "seed", "versions", "git_commit", "inputs_sha256", "files_sha256"} <= set(meta)
    assert {"torch", "transformers", "safetensors", "python"} <= set(meta["versions"])
    assert (
        meta["files_sha256"]["prompt.safetensors"]
        == __import__("hashlib").sha256((uninterrupted / "prompt.safetensors").read_bytes()).hexdigest()
    )
