"""Which accelerator each local sweep worker gets, and how it shares it: the environment a worker starts with.

    python -c "from rnnbench.sweep import devices; print(devices.visible_gpus())"

TensorFlow takes almost all of a GPU's memory when it starts and JAX 75% of it, so a second worker on the
same GPU could not start; every worker is told to allocate as it needs instead. Workers are spread over the
visible GPUs in turn (worker 1 on the first, worker 2 on the second, ...) through `CUDA_VISIBLE_DEVICES`.
On a machine without GPUs nothing changes but those two allocation settings, which only GPUs read.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping

GROW_MEMORY = {"TF_FORCE_GPU_ALLOW_GROWTH": "true", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
"""TensorFlow and JAX allocate GPU memory as they need it rather than all (or 75%) of it at start.
A value the user set in the environment is kept."""


def cpu_threads(workers: int) -> int:
    """Each of `workers` local workers' share of this machine's CPU threads (at least one): of the cores Slurm gave
    the task (`SLURM_CPUS_PER_TASK`) inside a Slurm job, since the node's others are other jobs'."""
    allocated = os.environ.get("SLURM_CPUS_PER_TASK", "")
    return max((int(allocated) if allocated.isdigit() else os.cpu_count() or 1) // workers, 1)


def visible_gpus(environment: Mapping[str, str] | None = None) -> list[str]:
    """The GPUs this machine lets a process use, as `CUDA_VISIBLE_DEVICES` entries.

    `CUDA_VISIBLE_DEVICES` when it is set (empty or -1: none); otherwise the indices `nvidia-smi -L` lists;
    none where there is no NVIDIA driver.
    """
    environment = os.environ if environment is None else environment
    if "CUDA_VISIBLE_DEVICES" in environment:
        listed = [entry.strip() for entry in environment["CUDA_VISIBLE_DEVICES"].split(",") if entry.strip()]
        return [] if not listed or listed[0] == "-1" else listed  # CUDA stops at the first invalid entry
    program = shutil.which("nvidia-smi", path=environment.get("PATH"))
    if program is None:
        return []
    try:
        listing = subprocess.run([program, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if listing.returncode:
        return []
    return [str(index) for index, line in enumerate(listing.stdout.splitlines()) if line.startswith("GPU ")]


def worker_environment(index: int, base: Mapping[str, str], gpus: list[str]) -> dict[str, str]:
    """The environment of local worker `index` (0-based): `base`, memory that grows, and its GPU when there are any."""
    environment = {**GROW_MEMORY, **base}
    if gpus:
        environment["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
    return environment
