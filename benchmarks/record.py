"""benchmarks/results.json: each benchmark script replaces its own section; summary.py reads them all."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).with_name("results.json")


def ratio(value: float, target: str) -> dict:
    """A measured ratio with its target ("<= 0.7", ">= 3") and whether it is met."""
    op, limit = target.split()
    met = value <= float(limit) if op == "<=" else value >= float(limit)
    return {"ratio": round(value, 3), "target": target, "met": met}


def save(section: str, rows: dict) -> None:
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[section] = rows
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    tmp.replace(RESULTS)
