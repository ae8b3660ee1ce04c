"""Run one xlprompt stage and SIGKILL it at a chosen point: what a preempted or OOM-killed job sees.

    python tests/kill_at.py <point> <n> <stage> [stage args...]

point:
  step        inside the n-th optimiser step (gradients computed, weights not yet updated)
  checkpoint  half-way through writing the n-th checkpoint's tensors (the file is cut short)
  artifact    half-way through writing the final artifact's prompt.safetensors
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import torch


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def kill_on_call(n: int, before=None):
    """A wrapper factory: the n-th call runs ``before(*args)`` then dies; others pass through."""
    calls = 0

    def wrap(real):
        def wrapper(*args, **kwargs):
            nonlocal calls
            calls += 1
            if calls == n:
                if before is not None:
                    before(real, *args, **kwargs)
                die()
            return real(*args, **kwargs)

        return wrapper

    return wrap


def write_half(real_save, tensors, path, *args, **kwargs) -> None:
    real_save(tensors, path, *args, **kwargs)
    path = Path(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def main() -> None:
    point, n, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    if point == "step":
        torch.optim.AdamW.step = kill_on_call(n)(torch.optim.AdamW.step)
    elif point == "checkpoint":
        import xlprompt.runtime.checkpoint as checkpoint

        checkpoint.save_file = kill_on_call(n, write_half)(checkpoint.save_file)
    elif point == "artifact":
        import xlprompt.methods.artifacts as artifacts

        real = artifacts.save_file
        wrapped = kill_on_call(1, write_half)(real)
        artifacts.save_file = lambda tensors, path, *a, **k: (
            wrapped if Path(path).name == "prompt.safetensors" else real
        )(tensors, path, *a, **k)
    else:
        raise SystemExit(f"unknown point {point!r}")
    from xlprompt.__main__ import main as xlprompt_main

    xlprompt_main(argv)


if __name__ == "__main__":
    main()
