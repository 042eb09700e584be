"""The baselines of `make bench`: the plain-Keras yardstick does the same work as `rnnbench run` (the whole command runs
in tests/test_bench_targets.py)."""

from __future__ import annotations

import numpy as np

from rnnbench.bench import baselines, plain_keras
from rnnbench.config import DataConfig
from rnnbench.data import load_dataset


def test_the_plain_script_trains_on_exactly_rnnbenchs_default_splits():
    ours = load_dataset(DataConfig())
    for (images, labels), split in zip(plain_keras.splits(), (ours.train, ours.valid, ours.test), strict=True):
        assert np.array_equal(images, split.images) and np.array_equal(labels, split.labels)


def test_the_markdown_states_each_round_and_the_median():
    record = {
        "date": "2026-11-29",
        "machine": "a test machine",
        "command_line": "python -m rnnbench.bench.baselines",
        "command": {
            "rounds": [{"round": 1, "rnnbench_run_s": 17.0, "plain_keras_s": 16.0, "ratio": 17 / 16}],
            "median_ratio": 17 / 16,
        },
        "sweep": {
            "rounds": [
                {"round": 1, "runs": 10, "one_worker_runs_per_min": 10.0, "two_workers_runs_per_min": 15.0, "speedup": 1.5}
            ],
            "median_speedup": 1.5,
        },
    }
    text = baselines.markdown(record)
    assert "a test machine" in text and "`python -m rnnbench.bench.baselines`" in text
    assert "| 1 | 17.0 | 16.0 | 1.062 |" in text and "Median ratio: 1.062." in text
    assert "| 1 | 10 | 10.0 | 15.0 | 1.50 |" in text and "Median speed-up: 1.50." in text


def test_the_backend_comparison_states_accuracy_per_seed_and_its_spread():
    rounds = [
        {
            "shape": "lstm-h128-looped",
            "seed": seed,
            "speed_ratio": 1.0 + seed / 10,
            "command_ratio": 1.02,
            **{
                backend: {"test_accuracy": accuracy, "train_samples_per_s": 5000.0, "command_s": 60.0, "compile_s": 1.0}
                for backend, accuracy in (("tensorflow", 0.94 + seed / 100), ("jax", 0.95))
            },
        }
        for seed in (0, 1)
    ]
    record = {
        "date": "2026-11-29",
        "machine": "a test machine",
        "command_line": "python -m rnnbench.bench.baselines --parts backends",
        "backends": {
            "rounds": rounds,
            "summary": {
                "lstm-h128-looped": {
                    "tensorflow_accuracy_mean": 0.945,
                    "tensorflow_accuracy_sd": 0.00707,
                    "jax_accuracy_mean": 0.95,
                    "jax_accuracy_sd": 0.0,
                    "median_speed_ratio": 1.05,
                    "median_command_ratio": 1.02,
                }
            },
        },
    }
    text = baselines.markdown(record)
    assert "| lstm-h128-looped | 1 | 0.9500 / 0.9500 | 5,000 / 5,000 (1.10x) | 60.0 / 60.0 s (1.02x) |" in text
    assert "test accuracy 0.9450 ± 0.0071 on TensorFlow, 0.9500 ± 0.0000 on JAX" in text
