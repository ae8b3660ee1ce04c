"""Logging set-up shared by the stages, and a progress bar that only draws where it helps."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
logger = logging.getLogger(__name__)

# Seconds spent per section in this process (see timed); each stage logs them as it exits, so
# a job's log says, e.g., how much of it went into tokenising (benchmarks/bench_workflow.py
# sums them over a run).
_SECTION_SECONDS: dict[str, float] = defaultdict(float)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )


def progress(iterable: Iterable[T], **kwargs: Any) -> tqdm[T]:
    """A tqdm bar on stderr; in a log file (Snakemake's ``> {log} 2>&1``) it redraws rarely.

    XLPROMPT_PROGRESS=0 turns it off (tests do).
    """
    disable = os.environ.get("XLPROMPT_PROGRESS", "1") == "0"
    interval = 0.5 if sys.stderr.isatty() else 15.0
    return tqdm(iterable, disable=disable, mininterval=interval, file=sys.stderr, dynamic_ncols=True, **kwargs)


@contextmanager
def timed(section: str) -> Iterator[None]:
    """Add the wall time of the ``with`` block to ``section``'s total for this process."""
    start = time.perf_counter()
    try:
        yield
    finally:
        _SECTION_SECONDS[section] += time.perf_counter() - start


def section_seconds() -> dict[str, float]:
    return dict(_SECTION_SECONDS)


def log_section_times() -> None:
    """One line per section, ``time in <section>: <seconds> s``, for the job's log."""
    for section, seconds in sorted(_SECTION_SECONDS.items()):
        logger.info("time in %s: %.3f s", section, seconds)
