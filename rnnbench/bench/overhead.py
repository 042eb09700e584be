"""Tracking overhead: the same training with and without MLflow, alternated in one process.

    make bench-overhead                       # or: python -m rnnbench.bench.overhead --repeats 3

Three variants of one config (default: the seed SimpleRNN, 5,000 steps), run in turn so that
machine noise falls on all of them alike:
    plain     load the data, train(), evaluate the test split: the run with nothing recorded;
    metrics   the same with every evaluation logged to MLflow (what tracking costs during training);
    full_run  run_experiment(): the whole tracked run, dataset, artifacts and model included.
Ratios to `plain` are taken within each round, then the median over rounds is reported. The
training loop itself varies by several percent from run to run on a shared machine, so the
time each variant spends outside its loop (the fixed cost of recording) is reported too.
Writes reports/bench/overhead.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="experiments/seed_simple_rnn.yaml")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="reports/bench/overhead.json")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    parser.add_argument("--quick", action="store_true", help="one round of 100 steps: checks it runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.overrides = 1, ["train.steps=100", "train.eval_every_steps=50", *args.overrides]

    from rnnbench import backend
    from rnnbench.config import load_config

    config = load_config(args.config, [*args.overrides, "tracking.experiment=bench-overhead"])
    backend.load(config.train.backend)
    from rnnbench import provenance, tracking
    from rnnbench.data import load_dataset
    from rnnbench.runner import run_experiment
    from rnnbench.train import evaluate, train

    with tempfile.TemporaryDirectory(prefix="rnnbench-bench-") as folder:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder}/mlflow.db"
        client = tracking.open_store()

        def plain():
            dataset = load_dataset(config.data)
            result = train(config, dataset)
            evaluate(result.model, dataset.test)
            return result.speed

        def metrics():
            dataset = load_dataset(config.data)
            run_id = tracking.start_run(client, config, stage="bench")
            result = train(config, dataset, on_evaluation=lambda e: tracking.log_evaluation(client, run_id, e))
            evaluate(result.model, dataset.test)
            tracking.end_run(client, run_id, "FINISHED")
            return result.speed

        def full_run():
            return run_experiment(config, stage="bench").result.speed

        variants = {"plain": plain, "metrics": metrics, "full_run": full_run}
        seconds: dict[str, list[float]] = {name: [] for name in variants}
        loop_seconds: dict[str, list[float]] = {name: [] for name in variants}
        for round_number in range(args.repeats):
            for name, variant in variants.items():
                started = time.perf_counter()
                speed = variant()
                seconds[name].append(time.perf_counter() - started)
                loop_seconds[name].append(speed.wall_seconds)
                print(
                    f"round {round_number + 1}/{args.repeats}  {name:9s} {seconds[name][-1]:7.2f}s "
                    f"(training loop {speed.wall_seconds:.2f}s, {speed.train_samples_per_second:,.0f} samples/s)",
                    flush=True,
                )

    ratios = {
        name: statistics.median(value / base for value, base in zip(seconds[name], seconds["plain"], strict=True))
        for name in ("metrics", "full_run")
    }
    outside = {
        name: statistics.median(t - loop for t, loop in zip(seconds[name], loop_seconds[name], strict=True)) for name in variants
    }
    fixed_cost = {name: (outside[name] - outside["plain"]) / statistics.median(seconds["plain"]) for name in ratios}
    report = {
        "config": args.config,
        "overrides": args.overrides,
        "steps": config.train.steps,
        "seconds": seconds,
        "training_loop_seconds": loop_seconds,
        "median_ratio_to_plain": ratios,
        "median_seconds_outside_training_loop": outside,
        "fixed_cost_fraction_of_plain": fixed_cost,
        "machine": f"{platform.machine()}: {provenance.cpu_description()}",
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"\nmetrics logged during training: {ratios['metrics']:.3f}x plain training")
    print(f"the whole tracked run:          {ratios['full_run']:.3f}x plain training")
    for name in ratios:
        print(
            f"{name}: {outside[name] - outside['plain']:.3f} s more outside the training loop "
            f"= {fixed_cost[name]:.1%} of a plain run"
        )
    print(f"figures in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
