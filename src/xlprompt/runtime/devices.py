"""Which GPU a job runs on when one machine runs several GPU jobs at once.

``snakemake --cores N --resources gpu=K`` lets at most K GPU jobs run at the same time, but
does not tell a job which of the K devices is its own. Each GPU job therefore claims one:
it takes an exclusive, non-blocking ``flock`` on the lock file of a device
(``<lock_dir>/gpu-<id>.lock``), trying the visible devices in order, and keeps it for the
rest of its life; then it restricts itself to that device (``CUDA_VISIBLE_DEVICES``) before
CUDA starts. The kernel drops a lock when its process ends, however it ends (``kill -9``
too), so a crashed job never leaves a device claimed.

On SLURM the scheduler already gives each job its own GPU, and with cgroup device
constraints every job may see its GPU as device 0: inside a Slurm job (``SLURM_JOB_ID`` set)
nothing is claimed. Tests and CPU machines describe devices with
``XLPROMPT_DEVICES`` (e.g. ``0,1``): the same claims, no CUDA.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

logger = logging.getLogger(__name__)

DEFAULT_LOCK_DIR = Path(tempfile.gettempdir()) / "xlprompt-devices"


@dataclass
class DeviceClaim:
    """A device this process holds until it exits (or :meth:`release`)."""

    device: str  # the id as CUDA_VISIBLE_DEVICES names it
    lock_file: Path
    handle: IO[str]

    def release(self) -> None:
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


def visible_devices() -> list[str]:
    """Device ids this process may use: XLPROMPT_DEVICES, else CUDA_VISIBLE_DEVICES, else
    every CUDA device torch sees (none on a CPU machine)."""
    for variable in ("XLPROMPT_DEVICES", "CUDA_VISIBLE_DEVICES"):
        value = os.environ.get(variable)
        if value is not None:
            return [d.strip() for d in value.split(",") if d.strip() and d.strip() != "-1"]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def claim_device(
    devices: list[str] | None = None,
    lock_dir: Path = DEFAULT_LOCK_DIR,
    timeout_s: float | None = None,
    poll_s: float = 0.5,
) -> DeviceClaim | None:
    """Claim the first free device of ``devices`` (default: :func:`visible_devices`).

    Returns None when there is no device (the job runs on the CPU). While every device is
    claimed (more GPU jobs at once than devices: a run without ``--resources gpu=K``, or two
    runs sharing a machine) the job waits its turn, saying so in its log every minute; with
    ``timeout_s`` it gives up after that long, naming the lock files.
    """
    if "SLURM_JOB_ID" in os.environ:
        logger.info("in Slurm job %s: the scheduler assigned the devices", os.environ["SLURM_JOB_ID"])
        return None
    devices = visible_devices() if devices is None else devices
    if not devices:
        return None
    lock_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    next_note = started + 60
    while True:
        for device in devices:
            lock_file = lock_dir / f"gpu-{device}.lock"
            handle = open(lock_file, "a+")  # noqa: SIM115 (kept open: the lock lives as long as the claim)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")  # who holds it, for a human looking at the folder
            handle.flush()
            os.environ["CUDA_VISIBLE_DEVICES"] = device
            logger.info("running on device %s (lock %s)", device, lock_file)
            return DeviceClaim(device, lock_file, handle)
        waited = time.monotonic() - started
        if timeout_s is not None and waited > timeout_s:
            raise RuntimeError(
                f"every device {devices} stayed claimed for {timeout_s:.0f} s "
                f"(locks in {lock_dir}): run fewer GPU jobs at once (--resources gpu=K)"
            )
        if time.monotonic() > next_note:
            logger.info(
                "waiting %.0f s for a free device of %s (locks in %s; --resources gpu=K runs at most K "
                "GPU jobs at once)",
                waited,
                devices,
                lock_dir,
            )
            next_note += 60
        time.sleep(poll_s)
