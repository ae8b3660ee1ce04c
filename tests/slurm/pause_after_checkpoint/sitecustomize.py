"""Test hook, active only where a test puts this folder on PYTHONPATH: a preempted training job.

With XLPROMPT_TEST_PAUSE_MARKER=<file> set, the first xlprompt process (of all the jobs that share
that file) to write a training checkpoint then records its Slurm job id in <file> and waits, so
that the test can cancel it after the checkpoint exists. Every other process runs as usual; the
rerun of the cancelled job finds the marker and does not wait again.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
import time

MARKER = os.environ.get("XLPROMPT_TEST_PAUSE_MARKER")


def _pausing(save_checkpoint):
    def save_then_pause(*args, **kwargs):
        save_checkpoint(*args, **kwargs)
        try:
            fd = os.open(MARKER, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return  # some job already paused once
        os.write(fd, f"{os.environ.get('SLURM_JOB_ID', 'none')}\n".encode())
        os.close(fd)
        time.sleep(3600)  # until cancelled

    return save_then_pause


class _PatchCheckpointModule(importlib.abc.MetaPathFinder):
    """Wrap xlprompt.runtime.checkpoint.save_checkpoint as soon as that module is imported."""

    def find_spec(self, name, path=None, target=None):
        if name != "xlprompt.runtime.checkpoint":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        real_exec = spec.loader.exec_module

        def exec_module(module):
            real_exec(module)
            module.save_checkpoint = _pausing(module.save_checkpoint)

        spec.loader.exec_module = exec_module
        return spec


if MARKER:
    sys.meta_path.insert(0, _PatchCheckpointModule())
