"""What every figure shares: the order methods appear in, and how a figure is written (atomically, as PNG)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never open a window

import matplotlib.pyplot as plt  # noqa: E402

from xlprompt.runtime.io import atomic_file  # noqa: E402
from xlprompt.runtime.settings import METHODS  # noqa: E402

METHOD_ORDER = list(METHODS)  # the library's order of methods: every figure lists them so


def ordered_methods(values: Iterable[str]) -> list[str]:
    """The methods among ``values`` in the library's order, then any others (variants) alphabetically."""
    present = set(values)
    known = [m for m in METHOD_ORDER if m in present]
    return known + sorted(present - set(known))


def save(fig, path: Path) -> None:
    """Write ``fig`` to ``path`` as PNG (under a temporary name until complete) and close it."""
    with atomic_file(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=130, bbox_inches="tight")
    plt.close(fig)
