"""The speed benchmark (`make bench`): its arithmetic, and real measurements of a tiny shape."""

from __future__ import annotations

import json
import sys

import pytest
from conftest import ROOT

from rnnbench import cost
from rnnbench.bench import grid
from rnnbench.config import DataConfig
from rnnbench.data import load_dataset


def test_flops_per_sample_is_the_documented_count():
    # an LSTM training sample costs about 3 x 28 x 8 x H x (28 + H) FLOPs: 13.4 MFLOP for H = 128
    assert cost.flops_per_sample("lstm", 128) == 3 * 28 * 8 * 128 * (28 + 128)
    assert round(cost.flops_per_sample("lstm", 128) / 1e6, 1) == 13.4
    assert cost.flops_per_sample("gru", 64) == 3 / 4 * cost.flops_per_sample("lstm", 64)


def test_a_measurement_reports_every_figure():
    dataset = load_dataset(DataConfig())
    row = grid.measure("simple_rnn", 16, False, 50, 0.3, dataset)
    assert row["steps"] % (2 * row["steps_per_execution"]) == 0
    assert row["train_samples_per_s"] > 0 and row["eval_samples_per_s"] > 0 and row["compile_s"] >= 0
    assert row["gflop_per_s"] == pytest.approx(row["train_samples_per_s"] * cost.flops_per_sample("simple_rnn", 16) / 1e9)
    assert row["peak_memory_mib"] > 100 and row["memory_growth_mib"] >= 0  # the process, TensorFlow included


@pytest.mark.slow
def test_the_command_writes_one_record_per_shape(tmp_path):
    import subprocess

    out = tmp_path / "speed.json"
    result = subprocess.run(
        [sys.executable, "-m", "rnnbench.bench.grid", "--cells", "simple_rnn", "--hidden-units", "16", "--batch-sizes", "50",
         "--seconds", "0.3", "--threads", "1", "--xla-on-cpu", "none", "all", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(out.read_text())
    assert record["matmul_peak_gflop_per_s"] > 1
    # small chained products cannot beat the large product's rate (what the LSTM target's note rests on)
    assert 0 < record["lstm128_b50_products_gflop_per_s"] < 1.5 * record["matmul_peak_gflop_per_s"]
    assert record["machine"] and record["tensorflow"] and record["date"] and record["threads"] == 1
    assert [(row["unroll"], row["xla"]) for row in record["shapes"]] == [
        (False, False), (False, True), (True, False), (True, True)]  # each shape with and without XLA, side by side
    assert all(0 < row["fraction_of_peak"] < 2 for row in record["shapes"])
    section = (tmp_path / "speed.md").read_text()
    assert record["machine"] in section and "| simple_rnn | 16 | looped | 50 | no |" in section
    assert "Command: `python -m rnnbench.bench.grid --cells simple_rnn --hidden-units 16" in section  # how to measure it again
    assert "| simple_rnn | 16 | unrolled | 50 | yes |" in section
