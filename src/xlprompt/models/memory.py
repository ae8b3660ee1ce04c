"""The host memory a workflow job claims (Snakemake's ``mem_mb``, Slurm's ``--mem``) from its backbone's size
and weight type, before anything is downloaded (importable without torch: the Snakefile asks it).

A backbone of N parameters takes N x 4 bytes in float32 and N x 2 in bfloat16 or float16 (config
``backbone.dtype``). A weight that trains takes more: in float32 itself, its gradient, AdamW's two moments and
the copy of the best state so far (4 + 4 + 8 + 4 = 20 bytes); in 16 bits itself, its gradient and its best
copy (2 + 2 + 2), its fp32 master with the master's gradient and the two fp32 moments (4 + 4 + 8;
xlprompt.methods.precision): 22 bytes. On a GPU the same numbers are the device memory the
backbone's part needs; ``mem_mb`` is what the job's process holds in host memory while it loads the weights
or, on the CPU, while it computes.
"""

from __future__ import annotations

import math

BYTES_PER_WEIGHT = {"float32": 4, "bfloat16": 2, "float16": 2}
TRAINED_WEIGHT_BYTES = {"float32": 20, "bfloat16": 22, "float16": 22}  # a trained weight: the module docstring
# What a job holds besides the backbone (Python, torch, transformers, tokenizer, data; a tiny backbone's
# activations), and the share of the weights' size added for activations at the configs' batch sizes.
BASE_MB = 2000
HEADROOM = 1.25


def job_memory_mb(parameters_m: float, bytes_per_weight: float, base_mb: int = BASE_MB) -> int:
    """``base_mb`` plus the weights' part: ``parameters_m`` million parameters of ``bytes_per_weight`` each,
    with :data:`HEADROOM` (0 parameters: a backbone xlprompt pretrains, a few MB)."""
    return base_mb + math.ceil(HEADROOM * parameters_m * 1e6 * bytes_per_weight / 2**20)
