"""Training speed per model shape on this machine, through rnnbench's own training path.

    make bench                                        # the whole grid, about 10 minutes on 2 cores
    python -m rnnbench.bench.grid --cells lstm --hidden-units 128 --batch-sizes 50 --seconds 2
    python -m rnnbench.bench.grid --threads 1 --xla-on-cpu none all    # a sweep worker's share of 2 cores, XLA or not

For each cell x hidden size x unroll x batch size: `train()` runs a short real training on
mnist5k, exactly as `rnnbench run` does (same model, optimizer, data pipeline, callbacks and
`train.steps_per_execution`), and reports its steady-state training samples per second, the
FLOP rate that implies, that rate as a fraction of the machine's float32 matrix-product peak
(measured first), the compile and warm-up time, evaluation samples per second, and the peak
resident memory of the process while it ran, also as growth over what it held before. Writes
reports/bench/speed.json, the same as a Markdown section in reports/bench/speed.md (what
the docs' results page quotes), and prints a table.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path

from rnnbench.config import XLA_ON_CPU, xla_on_cpu_for
from rnnbench.cost import flops_per_sample, modelled_speed

OUT = Path("reports/bench/speed.json")


def matmul_peak(size: int = 4096, repeats: int = 5) -> float:
    """The best float32 FLOP/s of a size x size matrix product in TensorFlow on this machine."""
    import tensorflow as tf

    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    tf.matmul(a, b).numpy()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        tf.matmul(a, b).numpy()
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best


def recurrent_product_rate(batch_size: int = 50, hidden_units: int = 128, gates: int = 4, repeats: int = 3) -> float:
    """FLOP/s of the matrix products of one recurrent layer's forward pass alone: 28 chained
    (batch, 28 + H) x (28 + H, gates x H) products, LSTM-128 at batch 50 by default. The most an
    RNN step made of such products can reach here, however little else it does."""
    import tensorflow as tf

    width = 28 + hidden_units
    state = tf.random.normal((batch_size, width))
    kernel = tf.random.normal((width, gates * hidden_units)) * 0.05

    @tf.function
    def time_steps(state):
        for _ in range(28):
            state = tf.tanh(tf.matmul(state, kernel)[:, :width])
        return state

    time_steps(state).numpy()  # traces
    calls, best = 100, float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            time_steps(state).numpy()
        best = min(best, time.perf_counter() - started)
    return calls * 28 * 2 * batch_size * width * gates * hidden_units / best


def peak_memory_reset() -> None:
    """Linux: starts a new peak of the process's resident memory (VmHWM)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def memory_mib(field: str) -> float | None:
    """Linux: VmRSS (resident now) or VmHWM (its peak) of this process, in MiB; None elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def measure(
    cell: str, hidden_units: int, unroll: bool, batch_size: int, seconds: float, dataset, xla_on_cpu: str = "none"
) -> dict:
    """One shape: a real training of about `seconds` of steady steps, with two validations (`train.xla_on_cpu`)."""
    from rnnbench.config import TrainConfig, load_config
    from rnnbench.train import train

    spe = TrainConfig().steps_per_execution
    guess = modelled_speed(cell, hidden_units, unroll, batch_size).train_samples_per_second
    window = max(spe, round(seconds * guess / batch_size / 2 / spe) * spe)  # steps per validation
    config = load_config(
        None,
        [
            f"model.cell={cell}",
            f"model.hidden_units={hidden_units}",
            f"model.unroll={unroll}",
            f"train.batch_size={batch_size}",
            f"train.steps={2 * window}",
            f"train.eval_every_steps={window}",
            f"train.xla_on_cpu={xla_on_cpu}",
        ],
    )
    peak_memory_reset()
    before = memory_mib("VmRSS")
    speed = train(config, dataset).speed
    peak = memory_mib("VmHWM")
    rate = speed.train_samples_per_second
    return {
        "cell": cell,
        "hidden_units": hidden_units,
        "unroll": unroll,
        "batch_size": batch_size,
        "steps": 2 * window,
        "steps_per_execution": spe,
        "xla": xla_on_cpu_for(xla_on_cpu, unroll),
        "train_samples_per_s": rate,
        "gflop_per_s": rate * flops_per_sample(cell, hidden_units) / 1e9,
        "compile_s": speed.compile_seconds,
        "eval_samples_per_s": speed.eval_samples_per_second,
        "peak_memory_mib": peak,
        # The peak over what the process held when the shape started: roughly what this shape needed
        # (the process keeps memory of earlier shapes, so its peak alone grows along the grid).
        # Clamped at 0: the kernel's resident-set counters are kept per thread and synced lazily, so a
        # peak read after a shape that needed nothing more can be a few pages under the RSS read before it.
        "memory_growth_mib": None if peak is None or before is None else max(peak - before, 0.0),
    }


def markdown(record: dict) -> str:
    """The record as a results-page section: where and how it was measured, then one row per shape."""
    size = record.get("peak_size", 4096)
    lines = [
        f"Measured {record['date']} on {record['machine']}, Python {record['python']}, TensorFlow "
        f"{record['tensorflow']}, Keras {record['keras']}; float32 matrix-product peak "
        f"{record['matmul_peak_gflop_per_s']:,.0f} GFLOP/s ({size} x {size}); the LSTM-128 batch-50 forward pass's own "
        f"products, 28 chained 50 x 156 by 156 x 512 with nothing else, "
        f"{record.get('lstm128_b50_products_gflop_per_s', float('nan')):,.0f} GFLOP/s. "
        f"Command: `{record['command_line'].strip()}`.",
        "",
        "| cell | hidden units | unroll | batch | XLA | samples/s | GFLOP/s | of peak | compile s | eval samples/s "
        "| memory growth MiB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in record["shapes"]:
        lines.append(
            f"| {row['cell']} | {row['hidden_units']} | {'unrolled' if row['unroll'] else 'looped'} | {row['batch_size']} "
            f"| {'yes' if row.get('xla') else 'no'} "
            f"| {row['train_samples_per_s']:,.0f} | {row['gflop_per_s']:.1f} | {row['fraction_of_peak']:.1%} "
            f"| {row['compile_s']:.1f} | {row['eval_samples_per_s']:,.0f} | {max(row['memory_growth_mib'] or 0, 0):,.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+", default=["simple_rnn", "lstm", "gru"])
    parser.add_argument("--hidden-units", nargs="+", type=int, default=[32, 64, 128, 256])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[50, 250])
    parser.add_argument(
        "--unroll", nargs="+", choices=["looped", "unrolled"], default=["looped", "unrolled"], help="the unroll settings"
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="steady training time per shape")
    parser.add_argument("--peak-size", type=int, default=4096, help="the square matrix product that measures the peak")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (default: all; a sweep worker gets its share)")
    parser.add_argument(
        "--xla-on-cpu",
        nargs="+",
        choices=XLA_ON_CPU,
        default=["none"],
        help="train.xla_on_cpu values, each shape measured with each in turn (none all: both ways)",
    )
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one tiny shape (SimpleRNN-16 looped, batch 50, 0.3 s, one thread, without and with XLA): checks it runs",
    )
    args = parser.parse_args(argv)
    if args.quick:  # one tiny looped shape, measured without and with XLA on one thread, and a smaller peak's product
        args.cells, args.hidden_units, args.batch_sizes, args.seconds = ["simple_rnn"], [16], [50], 0.3
        args.threads, args.xla_on_cpu, args.peak_size, args.unroll = args.threads or 1, ["none", "all"], 1024, ["looped"]
    unrolls = [setting == "unrolled" for setting in args.unroll]

    from rnnbench import backend
    from rnnbench.errors import UserError

    try:
        backend.load(threads=args.threads or None)
    except UserError as error:
        print(f"rnnbench: error: --{error}", file=sys.stderr)
        return 2
    import tensorflow as tf

    from rnnbench.config import DataConfig
    from rnnbench.data import load_dataset
    from rnnbench.provenance import cpu_description

    dataset = load_dataset(DataConfig())
    peak = matmul_peak(args.peak_size)
    print(f"float32 matrix-product peak: {peak / 1e9:,.0f} GFLOP/s ({cpu_description()})", flush=True)
    lstm_products = recurrent_product_rate()
    print(f"LSTM-128 batch-50 step's products alone: {lstm_products / 1e9:,.0f} GFLOP/s", flush=True)
    rows = []
    print(f"{'shape':<32}{'samples/s':>11}{'GFLOP/s':>9}{'of peak':>9}{'compile s':>10}{'eval/s':>10}{'+MiB':>8}")
    for batch_size in args.batch_sizes:
        for cell in args.cells:
            for hidden_units in args.hidden_units:
                for unroll, xla_on_cpu in itertools.product(unrolls, args.xla_on_cpu):
                    row = measure(cell, hidden_units, unroll, batch_size, args.seconds, dataset, xla_on_cpu)
                    row["fraction_of_peak"] = row["gflop_per_s"] * 1e9 / peak
                    rows.append(row)
                    shape = f"{cell}-h{hidden_units}-{'unrolled' if unroll else 'looped'} b{batch_size}{' XLA' * row['xla']}"
                    print(
                        f"{shape:<32}{row['train_samples_per_s']:>11,.0f}{row['gflop_per_s']:>9.1f}"
                        f"{row['fraction_of_peak']:>9.1%}{row['compile_s']:>10.1f}{row['eval_samples_per_s']:>10,.0f}"
                        f"{max(row['memory_growth_mib'] or 0, 0):>8,.0f}",
                        flush=True,
                    )
    record = {
        "benchmark": "speed",
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": cpu_description(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": __import__("keras").__version__,
        "threads": args.threads or os.cpu_count(),
        "command_line": "python -m rnnbench.bench.grid " + " ".join(argv if argv is not None else sys.argv[1:]),
        "matmul_peak_gflop_per_s": peak / 1e9,
        "peak_size": args.peak_size,
        "lstm128_b50_products_gflop_per_s": lstm_products / 1e9,
        "shapes": rows,
    }
    write(args.out, record, markdown(record))
    return 0


def write(out: Path, record: dict, section: str) -> None:
    """A benchmark's record as JSON at `out`, and as the Markdown section the results page quotes beside it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    out.with_suffix(".md").write_text(section)
    print(f"written: {out} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    raise SystemExit(main())
