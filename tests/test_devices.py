"""GPU-ready workers, as far as a machine without a GPU can test them: the environment each worker starts with."""

from __future__ import annotations

import json
import sys

import pytest

from rnnbench.sweep import devices
from rnnbench.sweep.pool import Workers


@pytest.mark.parametrize("visible, gpus", [("0,1", ["0", "1"]), ("2", ["2"]), ("", []), ("-1", []), (" 3 , 1 ", ["3", "1"])])
def test_cuda_visible_devices_decides_which_gpus_a_sweep_may_use(visible, gpus):
    assert devices.visible_gpus({"CUDA_VISIBLE_DEVICES": visible}) == gpus


def test_without_cuda_visible_devices_the_gpus_are_those_nvidia_smi_lists(tmp_path):
    assert devices.visible_gpus({"PATH": str(tmp_path)}) == []  # no NVIDIA driver: no nvidia-smi
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H200 (UUID: GPU-a)'\necho 'GPU 1: NVIDIA H200 (UUID: GPU-b)'\n")
    fake.chmod(0o755)
    assert devices.visible_gpus({"PATH": f"{tmp_path}:/usr/bin:/bin"}) == ["0", "1"]


def test_workers_are_spread_over_the_gpus_in_turn_and_grow_their_memory(tmp_path):
    """Four workers on two GPUs: 0, 1, 0, 1, each allocating as it needs so that two fit on one GPU; a setting the
    user made is kept; without GPUs no worker is pinned. Checked in the environment real worker processes see."""
    base = {"PATH": "/usr/bin:/bin", "XLA_PYTHON_CLIENT_PREALLOCATE": "true"}
    show = (
        "import json, os; print(json.dumps({k: os.environ.get(k) for k in ('CUDA_VISIBLE_DEVICES', "
        "'TF_FORCE_GPU_ALLOW_GROWTH', 'XLA_PYTHON_CLIENT_PREALLOCATE')}))"
    )
    workers = Workers.start(
        [sys.executable, "-c", show],
        [devices.worker_environment(index, base, ["0", "1"]) for index in range(4)],
        tmp_path / "sweep",
    )
    for process in workers.processes:
        process.wait(timeout=60)
    seen = [json.loads(log.read_text()) for log in workers.logs]
    assert [worker["CUDA_VISIBLE_DEVICES"] for worker in seen] == ["0", "1", "0", "1"]
    assert all(worker["TF_FORCE_GPU_ALLOW_GROWTH"] == "true" for worker in seen)
    assert all(worker["XLA_PYTHON_CLIENT_PREALLOCATE"] == "true" for worker in seen)  # the user's choice
    assert "CUDA_VISIBLE_DEVICES" not in devices.worker_environment(0, base, [])
