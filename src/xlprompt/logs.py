"""Logging set-up shared by the stages, and a progress bar that only draws where it helps."""

from __future__ import annotations

import logging
import os
import sys
from typing import Iterable, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )


def progress(iterable: Iterable[T] | None = None, **kwargs) -> tqdm:
    """A tqdm bar on stderr; in a log file (Snakemake's ``> {log} 2>&1``) it redraws rarely.

    XLPROMPT_PROGRESS=0 turns it off (tests do).
    """
    disable = os.environ.get("XLPROMPT_PROGRESS", "1") == "0"
    interval = 0.5 if sys.stderr.isatty() else 15.0
    return tqdm(iterable, disable=disable, mininterval=interval, file=sys.stderr, dynamic_ncols=True, **kwargs)
