"""Where the time of one evaluation process goes (what limits bench_evaluation.py's ratio):
start-up (imports), backbone load, reading and tokenising the test sets, and scoring the P
prompts in shared forward passes, with torch.profiler's top operators for the scoring. The
world, backbone and prompts are built first (as bench_evaluation.py builds them); the split
is measured in a fresh process, as an evaluate job starts.

    python benchmarks/profile_evaluation.py        # prints the split and the operator table
"""

from __future__ import annotations

import time

started = time.perf_counter()
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from xlprompt.analysis.evaluation import TestSets, score_together
from xlprompt.methods.artifacts import load_trained
from xlprompt.models.backbone import load_backbone
from xlprompt.runtime.settings import TrainConfig

imported = time.perf_counter()


def measure(root: Path, threads: int) -> None:
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    shared = load_backbone(root / "backbone")
    t1 = time.perf_counter()
    tests = TestSets(root / "world" / "topic", shared[1], None, family="masked_lm")
    max_length = TrainConfig.max_length  # what the prompts were trained (and are evaluated) with
    for lang in tests.languages:
        tests.encoded(lang, max_length)
    t2 = time.perf_counter()
    models = [load_trained(p, root / "backbone", shared=shared)[0] for p in sorted((root / "prompts").iterdir())]
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        for lang in tests.languages:
            score_together(models, tests.encoded(lang, max_length), shared[1].pad_token_id, len(tests.labels.names))
    t3 = time.perf_counter()
    print(
        f"imports {imported - started:.2f} s, backbone load {t1 - t0:.2f} s, reading and tokenising the test sets "
        f"{t2 - t1:.2f} s, scoring {len(models)} prompts {t3 - t2:.2f} s ({(t3 - t2) / len(models):.2f} s each, "
        "under the profiler)"
    )
    print(profile.key_averages().table(sort_by="self_cpu_time_total", row_limit=8))


def main() -> None:
    from bench_evaluation import THREADS, build  # benchmarks/ is on sys.path when a script runs

    os.environ.setdefault("XLPROMPT_PROGRESS", "0")
    with tempfile.TemporaryDirectory() as tmp:
        build(Path(tmp))
        # A fresh process: nothing imported yet that an evaluate job would import itself.
        subprocess.run([sys.executable, __file__, "--measure", tmp, str(THREADS)], check=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--measure":
        measure(Path(sys.argv[2]), int(sys.argv[3]))
    else:
        main()
