"""rnnbench against baselines, measured side by side: the whole command, sweep workers, peer stacks.

    make bench                                        # after the speed grid
    python -m rnnbench.bench.baselines --parts command sweep peers --rounds 3 --sweep-rounds 1 --peer-rounds 1
    python -m rnnbench.bench.baselines --quick        # every part once at a tiny size (make bench BENCH_SIZE=quick)

command  `rnnbench run experiments/seed_simple_rnn.yaml` (a fresh store each time: start-up, data,
         store set-up, artifacts and model included) against `python -m rnnbench.bench.plain_keras`,
         the same work as a minimal plain-Keras script; alternated, `--rounds` times.
sweep    `rnnbench sweep experiments/sweep_tiny.yaml` with 1 and with 2 workers, alternated:
         runs per minute and the speed-up.
peers    steady training samples/s of rnnbench's path (`rnnbench.bench.grid`) against the plain-Keras
         script on TensorFlow and, when JAX is installed, on Keras' JAX backend, for LSTM-128
         looped and SimpleRNN-50 unrolled at batch 50.
backends `rnnbench run` with train.backend=tensorflow and =jax, alternated, one seed per round,
         for the seed SimpleRNN-50 and LSTM-128 looped (5,000 steps each): test accuracy (do they
         match?), steady samples/s and the whole command's time. Not in the default parts:
         `make bench-backends` (about 10 minutes) writes reports/bench/backends.json and .md.
Each part is a subprocess per measurement, so no process carries another's state. Ratios are
taken within a round; the median over rounds is reported. Writes reports/bench/baselines.json
and baselines.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rnnbench.backend import jax_installed
from rnnbench.bench.backends import backends_part, markdown_lines
from rnnbench.bench.commands import QUICK, ROOT, SIZE, timed

OUT = Path("reports/bench/baselines.json")

PEER_SHAPES = [("lstm", 128, False), ("simple_rnn", 50, True)]


def command_part(rounds: int) -> dict:
    rows = []
    for round_number in range(rounds):
        with tempfile.TemporaryDirectory(prefix="rnnbench-bench-") as folder:
            store = {"MLFLOW_TRACKING_URI": f"sqlite:///{folder}/mlruns/mlflow.db"}
            run_s, _ = timed(
                [sys.executable, "-m", "rnnbench", "run", str(ROOT / "experiments/seed_simple_rnn.yaml"), *SIZE["run"]],
                Path(folder),
                store,
            )
            plain_s, output = timed([sys.executable, "-m", "rnnbench.bench.plain_keras", *SIZE["plain"]], Path(folder))
        rows.append(
            {
                "round": round_number + 1,
                "rnnbench_run_s": run_s,
                "plain_keras_s": plain_s,
                "ratio": run_s / plain_s,
                "plain_test_accuracy": json.loads(output)["test_accuracy"],
            }
        )
        print(
            f"command round {round_number + 1}: rnnbench run {run_s:.1f} s, plain Keras {plain_s:.1f} s, "
            f"ratio {run_s / plain_s:.3f}",
            flush=True,
        )
    return {"rounds": rows, "median_ratio": statistics.median(row["ratio"] for row in rows)}


def sweep_part(rounds: int) -> dict:
    rows = []
    for round_number in range(rounds):
        minutes = {}
        for workers in (1, 2):
            with tempfile.TemporaryDirectory(prefix="rnnbench-bench-") as folder:
                store = {"MLFLOW_TRACKING_URI": f"sqlite:///{folder}/mlruns/mlflow.db"}
                seconds, _ = timed(
                    [
                        sys.executable,
                        "-m",
                        "rnnbench",
                        "sweep",
                        str(ROOT / "experiments/sweep_tiny.yaml"),
                        *SIZE["sweep"],
                        "--workers",
                        str(workers),
                    ],
                    Path(folder),
                    store,
                )
            minutes[workers] = seconds / 60
        from rnnbench.sweep.definition import load_sweep, plan

        runs = plan(load_sweep(ROOT / "experiments/sweep_tiny.yaml", SIZE["sweep"])).runs
        row = {
            "round": round_number + 1,
            "runs": runs,
            "one_worker_runs_per_min": runs / minutes[1],
            "two_workers_runs_per_min": runs / minutes[2],
            "speedup": minutes[1] / minutes[2],
        }
        rows.append(row)
        print(
            f"sweep round {round_number + 1}: {runs} runs, 1 worker {row['one_worker_runs_per_min']:.1f}/min, "
            f"2 workers {row['two_workers_runs_per_min']:.1f}/min, speed-up {row['speedup']:.2f}",
            flush=True,
        )
    return {"rounds": rows, "median_speedup": statistics.median(row["speedup"] for row in rows)}


def peers_part(rounds: int) -> dict:
    backends = ["tensorflow"] + (["jax"] if jax_installed() and not SIZE["run"] else [])  # --quick: TensorFlow only
    results = []
    for cell, units, unroll in PEER_SHAPES[-1:] if SIZE["run"] else PEER_SHAPES:  # --quick: the seed's shape only
        for round_number in range(rounds):
            with tempfile.TemporaryDirectory(prefix="rnnbench-bench-") as folder:
                out = Path(folder) / "speed.json"
                timed(
                    [
                        sys.executable,
                        "-m",
                        "rnnbench.bench.grid",
                        "--cells",
                        cell,
                        "--hidden-units",
                        str(units),
                        "--batch-sizes",
                        "50",
                        "--unroll",
                        "unrolled" if unroll else "looped",
                        *SIZE["grid"],
                        "--out",
                        str(out),
                    ],
                    Path(folder),
                )
                [ours] = json.loads(out.read_text())["shapes"]
            row = {
                "shape": f"{cell}-h{units}-{'unrolled' if unroll else 'looped'}",
                "round": round_number + 1,
                "rnnbench_samples_per_s": ours["train_samples_per_s"],
            }
            for backend in backends:
                command = [
                    sys.executable,
                    "-m",
                    "rnnbench.bench.plain_keras",
                    "--cell",
                    cell,
                    "--units",
                    str(units),
                    *(SIZE["plain"] or ["--steps", "1500", "--eval-every", "500"]),
                ] + ([] if unroll else ["--looped"])
                _, output = timed(command, ROOT, {"KERAS_BACKEND": backend})
                peer = json.loads(output)["train_samples_per_s"]
                row[f"plain_keras_{backend}_samples_per_s"] = peer
                row[f"plain_keras_{backend}_to_rnnbench"] = peer / ours["train_samples_per_s"]
            results.append(row)
            print(
                "peers "
                + ", ".join(
                    f"{key} {value:,.3f}" if isinstance(value, float) else f"{key} {value}" for key, value in row.items()
                ),
                flush=True,
            )
    return {"backends": backends, "rounds": results}


def markdown(record: dict) -> str:
    lines = [f"Measured {record['date']} on {record['machine']}; command: `{record['command_line']}`.", ""]
    if "command" in record:
        part = record["command"]
        lines += ["| round | `rnnbench run` seed (s) | plain-Keras script (s) | ratio |", "| --- | --- | --- | --- |"]
        lines += [
            f"| {r['round']} | {r['rnnbench_run_s']:.1f} | {r['plain_keras_s']:.1f} | {r['ratio']:.3f} |" for r in part["rounds"]
        ]
        lines += ["", f"Median ratio: {part['median_ratio']:.3f}.", ""]
    if "sweep" in record:
        part = record["sweep"]
        lines += ["| round | runs | 1 worker (runs/min) | 2 workers (runs/min) | speed-up |", "| --- | --- | --- | --- | --- |"]
        lines += [
            f"| {r['round']} | {r['runs']} | {r['one_worker_runs_per_min']:.1f} | {r['two_workers_runs_per_min']:.1f} "
            f"| {r['speedup']:.2f} |"
            for r in part["rounds"]
        ]
        lines += ["", f"Median speed-up: {part['median_speedup']:.2f}.", ""]
    if "peers" in record:
        part = record["peers"]
        header = (
            "| shape | round | rnnbench samples/s | "
            + " | ".join(f"plain Keras on {backend} (samples/s, ratio)" for backend in part["backends"])
            + " |"
        )
        lines += [header, "| " + " | ".join(["---"] * (3 + len(part["backends"]))) + " |"]
        for r in part["rounds"]:
            cells = [
                f"{r[f'plain_keras_{b}_samples_per_s']:,.0f} ({r[f'plain_keras_{b}_to_rnnbench']:.2f}x)" for b in part["backends"]
            ]
            lines.append(f"| {r['shape']} | {r['round']} | {r['rnnbench_samples_per_s']:,.0f} | " + " | ".join(cells) + " |")
        lines.append("")
    if "backends" in record:
        lines += markdown_lines(record["backends"])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--parts", nargs="+", default=["command", "sweep", "peers"], choices=["command", "sweep", "peers", "backends"]
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the command comparison")
    parser.add_argument("--sweep-rounds", type=int, default=1, help="rounds of the 1-vs-2-worker sweeps (2 minutes each)")
    parser.add_argument("--peer-rounds", type=int, default=1, help="rounds of the peer comparison")
    parser.add_argument("--backend-seeds", type=int, default=3, help="seeds (rounds) of the backend comparison")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--quick", action="store_true", help="one round of each part at a tiny size: checks it runs")
    args = parser.parse_args(argv)
    if args.quick:
        SIZE.update(QUICK)
        args.rounds = args.sweep_rounds = args.peer_rounds = args.backend_seeds = 1
    from rnnbench.bench.grid import write
    from rnnbench.provenance import cpu_description

    record: dict[str, Any] = {
        "benchmark": "baselines",
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": cpu_description(),
        "command_line": "python -m rnnbench.bench.baselines " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    parts = {
        "command": (command_part, args.rounds),
        "sweep": (sweep_part, args.sweep_rounds),
        "peers": (peers_part, args.peer_rounds),
        "backends": (backends_part, args.backend_seeds),
    }
    for part in args.parts:
        function, rounds = parts[part]
        record[part] = function(rounds)
    write(args.out, record, markdown(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
