"""Training curves: the validation lines of trained prompts' ``train_log.jsonl`` as one tidy table.

Training (:func:`xlprompt.methods.training.validate`) appends one line per validation,
``{"step", "train_loss", "dev_loss", "dev_accuracy"}``; a resumed run restores the lines written
before its checkpoint, so a log never repeats a step. A method that does not train (untrained,
no_prompt) logs only ``{"step": 0, "dev_loss"}``: no validation lines, so no curve.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from xlprompt.runtime.io import read_json

logger = logging.getLogger(__name__)

KEYS = ["model", "task", "method", "prompt_length", "seed"]
CURVE_METRICS = ["dev_loss", "dev_accuracy", "train_loss"]
COLUMNS = [*KEYS, "step", "metric", "value"]


def run_identity(prompt_dir: Path, model: str) -> dict:
    """model, task, method, prompt_length and seed of a trained prompt, from its meta.json (as
    ``evaluate`` names its metrics: a config variant by its own name, e.g. spt_reparam)."""
    meta = read_json(Path(prompt_dir) / "meta.json")
    cfg = meta["config"]
    return {
        "model": model,
        "task": meta["task"],
        "method": meta.get("method_name", cfg["method"]),
        "prompt_length": cfg["prompt_length"],
        "seed": cfg["seed"],
    }


def validation_lines(log_path: Path) -> list[dict]:
    """The lines of a train_log.jsonl written at a validation during training (those with
    ``dev_accuracy``); none where the file is missing or empty."""
    if not log_path.exists():
        return []
    lines = []
    for number, text in enumerate(log_path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{log_path}: line {number} is not JSON ({err.msg}): {text[:80]!r}") from None
        if "dev_accuracy" in row:
            missing = [key for key in ["step", *CURVE_METRICS] if key not in row]
            if missing:
                raise ValueError(f"{log_path}: line {number} lacks {missing}: {text[:80]!r}")
            lines.append(row)
    return lines


def training_curves(prompt_dirs: Iterable[Path], model: str) -> pd.DataFrame:
    """One row per run, validation step and metric (:data:`COLUMNS`); runs that did not train
    (no validation lines) are left out, and logged."""
    rows = []
    for prompt_dir in prompt_dirs:
        prompt_dir = Path(prompt_dir)
        lines = validation_lines(prompt_dir / "train_log.jsonl")
        if not lines:
            logger.info("%s: no validation during training (a method that does not train): no curve", prompt_dir)
            continue
        identity = run_identity(prompt_dir, model)
        rows += [
            {**identity, "step": line["step"], "metric": metric, "value": line[metric]}
            for line in lines
            for metric in CURVE_METRICS
        ]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.sort_values([*KEYS, "metric", "step"], kind="stable").reset_index(drop=True)
