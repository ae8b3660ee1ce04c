"""Whether the ``python`` that the workflow's jobs run can import this package.

Every rule runs ``python -m xlprompt <stage>`` with the first ``python`` on ``PATH``. Snakemake itself
may come from another environment (``.venv/bin/snakemake`` typed without activating ``.venv``): its
jobs would then fail one by one with ``No module named xlprompt``, and Snakemake would delete their
other outputs as incomplete. Asking that ``python`` once, when the workflow is parsed, stops the run
before any job with the fix in the message.
"""

from __future__ import annotations

import shutil
import subprocess

# Finding the package is enough (importing it would cost a second): the jobs import what it needs.
_FIND = "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('xlprompt') else 3)"


def jobs_python_problem(python: str = "python", timeout: float = 30.0) -> str | None:
    """Why ``python`` (resolved on PATH, as a job's shell resolves it) cannot run ``python -m xlprompt``,
    or None when it can."""
    path = shutil.which(python)
    if path is None:
        return f"there is no `{python}` on PATH"
    try:
        found = subprocess.run([path, "-c", _FIND], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"`{python}` on PATH ({path}) could not be run: {err}"
    if found.returncode == 3:
        return f"`{python}` on PATH ({path}) cannot import xlprompt"
    if found.returncode != 0:
        return f"`{python}` on PATH ({path}) failed: {found.stderr.strip()[-300:]}"
    return None


FIX = (
    "every job runs `python -m xlprompt`: activate the project's environment first (`source .venv/bin/activate`, "
    "then the same snakemake command), or use the make targets, which do it for you (`make run CONFIG=...`); "
    "see README.md, 'Snakemake by hand'"
)
