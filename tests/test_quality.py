"""The quality gates as a contributor meets them: pre-commit's own code reads the configuration, and a
commit in a copy of this repository passes the hooks when clean and is stopped by a lint error."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from workflow_run import REPO

VENV_BIN = Path(sys.executable).parent


def run(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_pre_commit_configuration_is_valid_and_every_hook_is_local():
    result = subprocess.run(
        [str(VENV_BIN / "pre-commit"), "validate-config", ".pre-commit-config.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = (REPO / ".pre-commit-config.yaml").read_text()
    assert "repo: local" in text
    assert "https://" not in text  # a commit needs no network


@pytest.mark.slow
def test_a_commit_passes_the_hooks_when_clean_and_is_stopped_by_a_lint_error(tmp_path):
    copy = tmp_path / "repo"
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in tracked:
        if (REPO / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, copy / name)
    (copy / ".venv").symlink_to(VENV_BIN.parent)  # the hooks run .venv's tools, as in a checkout after make setup
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }
    for args in (["git", "init", "-q"], ["git", "add", "-A"], [str(VENV_BIN / "pre-commit"), "install"]):
        done = run(*args, cwd=copy, env=env)
        assert done.returncode == 0, (args, done.stdout + done.stderr)
    clean = run("git", "commit", "-q", "-m", "clean", cwd=copy, env=env)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    module = copy / "src" / "xlprompt" / "runtime" / "io.py"
    module.write_text(module.read_text().replace("import contextlib\n", "import contextlib\nimport sys\n", 1))
    run("git", "add", "-A", cwd=copy, env=env)
    stopped = run("git", "commit", "-q", "-m", "an unused import", cwd=copy, env=env)
    assert stopped.returncode != 0
    report = stopped.stdout + stopped.stderr  # git hands a hook's output to stderr
    assert "F401" in report, report
    assert "`sys` imported but unused" in report, report
