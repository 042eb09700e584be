"""Every `make bench*` target runs to the end at its quick size (BENCH_SIZE=quick), so none can break unseen."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow


def make(target: str, *variables: str, env: dict | None = None) -> subprocess.CompletedProcess:
    if not (ROOT / ".venv" / "bin" / "python").exists():
        pytest.skip("the make targets run from the project's .venv: make install")
    return subprocess.run(
        ["make", "--no-print-directory", target, *variables],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_make_bench_runs_every_part_at_its_quick_size(tmp_path):
    result = make("bench", "BENCH_SIZE=quick", f"BENCH_OUT={tmp_path}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # the speed grid: the machine's peak, each shape without and with XLA side by side, on one thread
    speed = json.loads((tmp_path / "speed.json").read_text())
    assert speed["matmul_peak_gflop_per_s"] > 1 and speed["machine"] and speed["tensorflow"] and speed["threads"] == 1
    assert [(row["cell"], row["hidden_units"], row["unroll"], row["xla"]) for row in speed["shapes"]] == [
        ("simple_rnn", 16, False, False),
        ("simple_rnn", 16, False, True),
    ]
    assert all(row["train_samples_per_s"] > 0 and row["fraction_of_peak"] > 0 for row in speed["shapes"])
    section = (tmp_path / "speed.md").read_text()
    assert speed["machine"] in section and "| simple_rnn | 16 | looped | 50 | no |" in section
    assert "Command: `python -m rnnbench.bench.grid --quick" in section  # how to measure it again
    drift = json.loads((tmp_path / "unroll_check.json").read_text())["rows"]
    same, other = (next(row for row in drift if row["cell"] == cell) for cell in ("simple_rnn", "reversed_when_unrolled"))
    assert same["start"] < 1e-4 < other["start"]
    baselines = json.loads((tmp_path / "baselines.json").read_text())
    assert {"command", "sweep", "peers"} <= set(baselines) and baselines["command"]["median_ratio"] > 0
    assert 0.1 < baselines["command"]["rounds"][0]["plain_test_accuracy"] <= 1  # the plain-Keras script's own report
    assert baselines["sweep"]["median_speedup"] > 0 and baselines["peers"]["rounds"]
    assert (tmp_path / "baselines.md").read_text().startswith("Measured ")


def test_make_bench_backends_and_overhead_run_at_their_quick_size(tmp_path):
    backends = make("bench-backends", "BENCH_SIZE=quick", f"BENCH_OUT={tmp_path}")
    assert backends.returncode == 0, backends.stdout[-3000:] + backends.stderr[-3000:]
    record = json.loads((tmp_path / "backends.json").read_text())
    assert all(
        0 < row[backend]["test_accuracy"] <= 1 for row in record["backends"]["rounds"] for backend in ("tensorflow", "jax")
    )
    overhead = make("bench-overhead", "BENCH_SIZE=quick", f"BENCH_OUT={tmp_path}")
    assert overhead.returncode == 0, overhead.stdout[-3000:] + overhead.stderr[-3000:]
    report = json.loads((tmp_path / "overhead.json").read_text())
    assert report["steps"] == 100 and report["median_ratio_to_plain"]["full_run"] > 0
