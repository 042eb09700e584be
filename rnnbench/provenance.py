"""Provenance: where a result came from (code version, libraries, machine, process), as MLflow tags.

    python -c "from rnnbench import provenance; print(provenance.tags())"

Read without importing TensorFlow (its version comes from the package metadata), except `gpus`.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

from rnnbench import names, processes


def tags() -> dict[str, str]:
    """Where the result came from: code version, library versions, machine, and the process that records it
    (without importing TensorFlow)."""
    tags = {
        names.PROCESS: processes.this_process(),
        names.TENSORFLOW_VERSION: importlib.metadata.version("tensorflow"),
        names.KERAS_VERSION: importlib.metadata.version("keras"),
        names.PYTHON_VERSION: platform.python_version(),
        names.CPU: cpu_description(),
    }
    commit, dirty = git_state()
    if commit:
        tags[names.GIT_COMMIT] = commit
        tags[names.GIT_DIRTY] = str(dirty).lower()
    return tags


def gpus(backend: str) -> str:
    """The GPUs the run's backend uses, by name, and which of the machine's they are when `CUDA_VISIBLE_DEVICES`
    chose them (a sweep worker's share): "NVIDIA H200 (CUDA_VISIBLE_DEVICES=1)"; "none" on the CPU."""
    if backend == "jax":
        import jax

        found = [device.device_kind for device in jax.devices() if device.platform == "gpu"]
    else:
        import tensorflow as tf

        found = [
            tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
            for gpu in tf.config.list_physical_devices("GPU")
        ]
    if not found:
        return "none"
    chosen = os.environ.get("CUDA_VISIBLE_DEVICES")
    return ", ".join(found) + (f" (CUDA_VISIBLE_DEVICES={chosen})" if chosen else "")


def git_state() -> tuple[str | None, bool]:
    """The commit of the rnnbench checkout and whether its tracked files have changes."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        if commit.returncode:
            return None, False
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True, text=True, timeout=10
        )
        return commit.stdout.strip(), bool(status.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        return None, False


def cpu_description() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model} ({os.cpu_count()} logical cores)"
