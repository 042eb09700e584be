"""How far apart the two unroll settings of one model drift in training: the measurements behind the sweep's check.

    make bench                                          # runs it after the speed grid
    python -m rnnbench.bench.unroll_check --cells lstm gru --hidden-units 64 --learning-rates 0.003 0.03

For each model and learning rate, the same seed trains looped (with XLA, as sweeps train looped models) and
unrolled (on the graph), and the relative difference of the two is measured: of the untrained models' loss and
gradient (`train.starting_point`, what the sweep's check compares), and of their training loss (the mean over the
evaluation window ending there) and validation loss at each of `--steps`. A cell whose unrolled
path reads the rows backwards stands for a different function. The figures show why the sweep's check
(`rnnbench.sweep.unroll`) compares the untrained models, and justify its tolerance. Writes
reports/bench/unroll_check.json and .md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

OUT = Path("reports/bench/unroll_check.json")
REVERSED = "reversed_when_unrolled"
"""The stand-in for a cell whose unrolled path computes another function."""


def _reversed_when_unrolled(units, unroll=False, **options):
    import keras

    return keras.layers.SimpleRNN(units, unroll=unroll, go_backwards=unroll, **options)


def measure(cell: str, units: int, learning_rate: float, steps: list[int], dataset) -> list[dict]:
    """Both settings from seed 0, evaluated every min(`steps`) steps up to the last: one row per step count in `steps`
    with the relative differences of the two settings' losses (the training loss: the mean over the window ending
    there)."""
    import math

    from rnnbench.config import load_config
    from rnnbench.sweep import unroll
    from rnnbench.train import train

    window = math.gcd(*steps)
    runs = []
    for setting in ("false", "true"):
        config = load_config(
            None,
            [
                f"model.cell={cell}",
                f"model.hidden_units={units}",
                f"model.unroll={setting}",
                f"train.steps={max(steps)}",
                f"train.eval_every_steps={window}",
                f"train.learning_rate={learning_rate}",
                "train.xla_on_cpu=looped",
                f"train.steps_per_execution={math.gcd(window, 10)}",
            ],
        )
        runs.append(train(config, dataset, probe_start=True))

    first_start, second_start = runs[0].start, runs[1].start
    if first_start is None or second_start is None:
        raise RuntimeError("train(probe_start=True) recorded no starting point")

    def apart(first: float, second: float) -> float:
        return abs(first - second) / max(abs(first), abs(second))

    looped, unrolled = ({evaluation.step: evaluation for evaluation in run.evaluations} for run in runs)
    return [
        {
            "cell": cell,
            "hidden_units": units,
            "learning_rate": learning_rate,
            "steps": step,
            "start": unroll.difference(first_start, second_start),
            "train_loss": apart(looped[step].train_loss, unrolled[step].train_loss),
            "val_loss": apart(looped[step].val_loss, unrolled[step].val_loss),
        }
        for step in steps
    ]


def markdown(record: dict) -> str:
    lines = [
        f"Measured {record['date']} on {record['machine']}; command: `{record['command_line']}`.",
        "",
        "| model | learning rate | steps | untrained loss and gradient | training loss | validation loss |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {row['cell']}-h{row['hidden_units']} | {row['learning_rate']:g} | {row['steps']} | {row['start']:.1e} "
        f"| {row['train_loss']:.1e} | {row['val_loss']:.1e} |"
        for row in record["rows"]
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+", default=["simple_rnn", "lstm", "gru", REVERSED])
    parser.add_argument("--hidden-units", nargs="+", type=int, default=[32, 128])
    parser.add_argument("--learning-rates", nargs="+", type=float, default=[0.003, 0.03])
    parser.add_argument("--steps", nargs="+", type=int, default=[10, 50, 250])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--quick", action="store_true", help="SimpleRNN-16 and the reversed cell, 10 steps: checks it runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.cells, args.hidden_units, args.learning_rates, args.steps = ["simple_rnn", REVERSED], [16], [0.03], [10]

    from rnnbench import backend

    backend.load()
    import keras

    from rnnbench import cells
    from rnnbench.bench.grid import write
    from rnnbench.config import DataConfig
    from rnnbench.data import load_dataset
    from rnnbench.provenance import cpu_description

    cells.CELLS[REVERSED] = cells.Cell("Reversed when unrolled", "ReversedWhenUnrolled", 1, "#000000")
    keras.layers.ReversedWhenUnrolled = _reversed_when_unrolled
    dataset = load_dataset(DataConfig())
    rows = []
    for cell in args.cells:
        for units in args.hidden_units:
            for learning_rate in args.learning_rates:
                for row in measure(cell, units, learning_rate, sorted(args.steps), dataset):
                    rows.append(row)
                    print(
                        f"{cell}-h{units} lr {learning_rate:g} {row['steps']} steps: untrained {row['start']:.1e}, "
                        f"training {row['train_loss']:.1e}, validation {row['val_loss']:.1e}",
                        flush=True,
                    )
    record = {
        "benchmark": "unroll_check",
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": cpu_description(),
        "command_line": "python -m rnnbench.bench.unroll_check " + " ".join(argv if argv is not None else sys.argv[1:]),
        "rows": rows,
    }
    write(args.out, record, markdown(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
