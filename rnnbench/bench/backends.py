"""The backends part of the baselines: `rnnbench run` on TensorFlow and on JAX, alternated, one seed per round.

    make bench-backends        # python -m rnnbench.bench.baselines --parts backends (writes reports/bench/backends.json)

For the seed SimpleRNN-50 and LSTM-128 looped (5,000 steps each): test accuracy (do they match?), steady samples/s
and the whole command's time.
"""

from __future__ import annotations

import re
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from rnnbench.backend import jax_installed
from rnnbench.bench.commands import ROOT, SIZE, timed

BACKEND_RUNS = {
    "simple_rnn-h50-unrolled (the seed)": ["experiments/seed_simple_rnn.yaml"],
    "lstm-h128-looped": ["experiments/seed_lstm.yaml", "model.hidden_units=128", "model.unroll=false"],
}
RUN_SUMMARY = re.compile(r"test_acc (?P<accuracy>[\d.]+)\s+(?P<speed>[\d,]+) samples/s\s+compile (?P<compile>[\d.]+)s")
"""The summary line of `rnnbench run`: test_loss 0.368  test_acc 0.9130  42,068 samples/s  compile 1.2s  training 7.8s"""


def backends_part(rounds: int) -> dict:
    if not jax_installed():
        raise SystemExit("rnnbench.bench.baselines: the backends part needs JAX: pip install -e '.[jax]'")
    results = []
    shapes = dict(list(BACKEND_RUNS.items())[:1]) if SIZE["run"] else BACKEND_RUNS  # --quick: the seed's shape only
    for shape, arguments in shapes.items():
        for seed in range(rounds):
            row: dict[str, Any] = {"shape": shape, "seed": seed}
            for backend in ("tensorflow", "jax"):
                with tempfile.TemporaryDirectory(prefix="rnnbench-bench-") as folder:
                    store = {"MLFLOW_TRACKING_URI": f"sqlite:///{folder}/mlruns/mlflow.db"}
                    command = [
                        sys.executable,
                        "-m",
                        "rnnbench",
                        "run",
                        str(ROOT / arguments[0]),
                        *arguments[1:],
                        f"train.backend={backend}",
                        f"train.seed={seed}",
                        *SIZE["run"],
                    ]
                    seconds, output = timed(command, Path(folder), store)
                line = RUN_SUMMARY.search(output)
                if line is None:
                    raise RuntimeError(f"`rnnbench run` printed no summary line: {output[-500:]}")
                row[backend] = {
                    "test_accuracy": float(line["accuracy"]),
                    "command_s": seconds,
                    "train_samples_per_s": float(line["speed"].replace(",", "")),
                    "compile_s": float(line["compile"]),
                }
            row["speed_ratio"] = row["jax"]["train_samples_per_s"] / row["tensorflow"]["train_samples_per_s"]
            row["command_ratio"] = row["jax"]["command_s"] / row["tensorflow"]["command_s"]
            results.append(row)
            print(
                f"backends {shape} seed {seed}: "
                + ", ".join(
                    f"{backend} acc {row[backend]['test_accuracy']:.4f} {row[backend]['train_samples_per_s']:,.0f}/s "
                    f"{row[backend]['command_s']:.1f} s"
                    for backend in ("tensorflow", "jax")
                ),
                flush=True,
            )
    summary = {}
    for shape in shapes:
        rows = [row for row in results if row["shape"] == shape]
        summary[shape] = {
            **{
                f"{backend}_accuracy_mean": statistics.mean(row[backend]["test_accuracy"] for row in rows)
                for backend in ("tensorflow", "jax")
            },
            **{
                f"{backend}_accuracy_sd": statistics.stdev(row[backend]["test_accuracy"] for row in rows)
                if len(rows) > 1
                else 0.0
                for backend in ("tensorflow", "jax")
            },
            "median_speed_ratio": statistics.median(row["speed_ratio"] for row in rows),
            "median_command_ratio": statistics.median(row["command_ratio"] for row in rows),
        }
    return {"rounds": results, "summary": summary}


def markdown_lines(part: dict) -> list[str]:
    """The part's lines of baselines.md: a row per shape and seed, then each shape's means and medians."""
    lines = [
        "| shape | seed | test accuracy TF / JAX | samples/s TF / JAX (ratio) | whole command TF / JAX (ratio) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in part["rounds"]:
        tf_, jax_ = r["tensorflow"], r["jax"]
        lines.append(
            f"| {r['shape']} | {r['seed']} | {tf_['test_accuracy']:.4f} / {jax_['test_accuracy']:.4f} "
            f"| {tf_['train_samples_per_s']:,.0f} / {jax_['train_samples_per_s']:,.0f} ({r['speed_ratio']:.2f}x) "
            f"| {tf_['command_s']:.1f} / {jax_['command_s']:.1f} s ({r['command_ratio']:.2f}x) |"
        )
    lines.append("")
    for shape, figures in part["summary"].items():
        lines.append(
            f"- {shape}: test accuracy {figures['tensorflow_accuracy_mean']:.4f} ± {figures['tensorflow_accuracy_sd']:.4f} "
            f"on TensorFlow, {figures['jax_accuracy_mean']:.4f} ± {figures['jax_accuracy_sd']:.4f} on JAX (mean ± sd over "
            f"seeds); JAX's steady speed {figures['median_speed_ratio']:.2f}x, whole command "
            f"{figures['median_command_ratio']:.2f}x TensorFlow's (medians)."
        )
    lines.append("")
    return lines
