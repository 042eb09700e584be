"""The speed benchmark (`make bench`): its arithmetic, and real measurements of a tiny shape (the whole command runs in
tests/test_bench_targets.py)."""

from __future__ import annotations

import pytest

from rnnbench import cost
from rnnbench.bench import grid
from rnnbench.config import DataConfig
from rnnbench.data import load_dataset


def test_flops_per_sample_is_the_documented_count():
    # an LSTM training sample costs about 3 x 28 x 8 x H x (28 + H) FLOPs: 13.4 MFLOP for H = 128
    assert cost.flops_per_sample("lstm", 128) == 3 * 28 * 8 * 128 * (28 + 128)
    assert round(cost.flops_per_sample("lstm", 128) / 1e6, 1) == 13.4
    assert cost.flops_per_sample("gru", 64) == 3 / 4 * cost.flops_per_sample("lstm", 64)


@pytest.mark.slow
def test_a_measurement_reports_every_figure():
    dataset = load_dataset(DataConfig())
    row = grid.measure("simple_rnn", 16, False, 50, 0.3, dataset)
    assert row["steps"] % (2 * row["steps_per_execution"]) == 0
    assert row["train_samples_per_s"] > 0 and row["eval_samples_per_s"] > 0 and row["compile_s"] >= 0
    assert row["gflop_per_s"] == pytest.approx(row["train_samples_per_s"] * cost.flops_per_sample("simple_rnn", 16) / 1e9)
    assert row["peak_memory_mib"] > 100 and row["memory_growth_mib"] >= 0  # the process, TensorFlow included
