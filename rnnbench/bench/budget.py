"""Where a sweep's worker-seconds go: training, compilation, validation, recording, pruned trials, waiting.

    make bench-budget                                     # the latest sweep in the store
    python -m rnnbench.bench.budget --experiment rnnbench-sweep --out reports/bench/budget
    python -m rnnbench.bench.budget --compare before=reports/bench/old after=reports/bench/budget --out docs

Read from the sweep's MLflow runs alone. A worker-second is one second of one worker process (each distinct
`rnnbench.process` tag of the sweep's runs) between the start and the end of the sweep's run. Writes
`budget.csv`, `budget.md` and `budget.png` into --out and prints the table. `--compare LABEL=FOLDER ...` reads
budgets written so (by the same sweep measured before and after a change, in one store or several) and writes
them side by side: `budget-compare.md` and `budget-compare.png`.

After the budget, the sweep's training against the machine: its FLOPs (`rnnbench.cost.flops_per_sample` times the
images each run trained on, stopped runs up to their last recorded step), the float32 matrix-product peak of one
worker's share of the cores (`rnnbench.bench.grid.matmul_peak`, measured then, on the sweep's machine only), the
sweep's time at that peak, and each shape's training rate as a share of it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from rnnbench import cost, provenance, records
from rnnbench.errors import UserError
from rnnbench.sweep import devices

PARTS = {
    "training": "the training loop's steps (finished runs)",
    "compilation": "the first execution beyond a steady one: tracing and compiling (finished runs)",
    "validation": "evaluations of the validation split during training (finished runs)",
    "outside the loop": "before and after the loop: the run's record, the test split, figures, the model (finished runs)",
    "stopped runs": "pruned, failed and killed runs, not split (they record no speed)",
    "waiting": "worker time outside any run: taking trials, waiting for a study to finish, starting and stopping",
}
"""The budget's parts, in order, with what each counts."""
SWEEP_RUN_STAGES = ("trial", "final", "timing", "reference")
"""The runs that take a worker's time (the sweep's and its studies' own runs only hold records)."""
PEAK_MATRIX_SIZE = 2048
"""The peak's matrices: on the 2-core AMD EPYC, one thread, 109.4 GFLOP/s in 1.1 s against 110.2 and 111.0 at
4096 (`make bench`'s size) in 5.5 s, measured side by side."""


def budget(runs: pd.DataFrame, sweep_start: pd.Timestamp, sweep_end: pd.Timestamp, valid_images: int) -> pd.DataFrame:
    """Worker-seconds per part (index: PARTS' keys; columns: seconds, share), from the tidy runs of one sweep.

    Args:
        runs: the sweep's trial, final and reference runs as `rnnbench.records` reads them (with the
            `params.train.eval_every_steps` column).
        sweep_start, sweep_end: the sweep's run's start and end.
        valid_images: images in the validation split.
    """
    lifetime = (runs.end_time - runs.start_time).dt.total_seconds()
    finished = runs.training_s.notna()
    loop, compiled, validation = runs.training_s[finished], runs.compile_s[finished].fillna(0), _validation_s(runs, valid_images)
    workers = runs.process.nunique()
    seconds = {
        "training": training_s(runs, valid_images).sum(),
        "compilation": compiled.sum(),
        "validation": validation.sum(),
        "outside the loop": (lifetime[finished] - loop).sum(),
        "stopped runs": lifetime[~finished].sum(),
        "waiting": workers * (sweep_end - sweep_start).total_seconds() - lifetime.sum(),
    }
    table = pd.DataFrame({"seconds": pd.Series(seconds)})
    return table.assign(share=table.seconds / table.seconds.sum())


def training_s(runs: pd.DataFrame, valid_images: int) -> pd.Series:
    """Seconds in training steps of each finished run: its loop less compilation and validation."""
    finished = runs.training_s.notna()
    return runs.training_s[finished] - runs.compile_s[finished].fillna(0) - _validation_s(runs, valid_images)


def _validation_s(runs: pd.DataFrame, valid_images: int) -> pd.Series:
    finished = runs.training_s.notna()
    evaluations = runs.steps[finished] // pd.to_numeric(runs["params.train.eval_every_steps"][finished])
    return (evaluations * valid_images / runs.eval_samples_per_s[finished]).fillna(0)


def efficiency(runs: pd.DataFrame, last_steps: pd.Series, trained_s: pd.Series, peak: float) -> tuple[float, pd.DataFrame]:
    """The sweep's training FLOPs, and each shape's training rate in the finished runs against `peak`.

    Args:
        runs: the sweep's trial, final and reference runs, tidy.
        last_steps: each run's last recorded step (index: run_id); it counts for the runs that stopped early.
        trained_s: `training_s` of the finished runs.
        peak: float32 FLOP/s of one worker's share of the cores.

    Returns:
        (FLOPs of all runs, a table per shape: cell, hidden_units, unroll, xla, runs, training_s, flops_per_s, of_peak).
    """
    finished = runs.training_s.notna()
    steps = runs.steps.where(finished, runs.run_id.map(last_steps)).fillna(0)
    per_image = [
        cost.flops_per_sample(cell, units, task)
        for cell, units, task in zip(runs.cell, runs.hidden_units, runs.task, strict=True)
    ]
    flops = steps * runs.batch_size * per_image
    on_cpu = runs.gpu.fillna("none") == "none"
    shapes = (
        runs.assign(xla=runs.xla & on_cpu, flops=flops, trained_s=trained_s)[finished]
        .groupby(["cell", "hidden_units", "unroll", "xla"])
        .agg(runs=("run_id", "size"), training_s=("trained_s", "sum"), flops=("flops", "sum"))
        .reset_index()
    )
    shapes["flops_per_s"] = shapes.pop("flops") / shapes.training_s
    shapes["of_peak"] = shapes.flops_per_s / peak
    return float(flops.sum()), shapes


def _against_peak(runs: pd.DataFrame, recorded: records.Recorded, trained_s: pd.Series, wall: float, folder: Path) -> list[str]:
    """Markdown: the sweep's training FLOPs, the peak, the sweep's time at the peak, its training loops alone and
    measured, and the shapes' rates, furthest from the peak first (also as `folder`/peak.csv); or why there is nothing
    to compare with."""
    machines, here = set(runs.cpu.dropna()), provenance.cpu_description()
    if runs.gpu.fillna("none").ne("none").any():
        return ["The sweep trained on a GPU: it is not compared with the CPU's peak."]
    if machines != {here}:
        return [
            f"The sweep ran on {', '.join(sorted(machines)) or 'a machine it did not record'}, not on this one ({here}): "
            "run this there to compare it with its machine's peak."
        ]
    from rnnbench import backend

    workers = runs.process.nunique()
    threads = devices.cpu_threads(workers)
    backend.load("tensorflow", threads)
    from rnnbench.bench.grid import matmul_peak

    peak = matmul_peak(PEAK_MATRIX_SIZE, repeats=5)
    flops, shapes = efficiency(runs, recorded.curves.groupby("run_id").step.max(), trained_s, peak)
    times = {"at that peak": flops / (peak * workers), "its training steps alone": trained_s.sum() / workers, "measured": wall}
    rows = [
        f"| {row.cell}-{row.hidden_units} {'unrolled' if row.unroll else 'looped'} | {'yes' if row.xla else 'no'} | {row.runs} "
        f"| {row.training_s:,.0f} | {row.flops_per_s / 1e9:.1f} | {row.of_peak:.1%} |"
        for row in shapes.sort_values("of_peak").itertuples()
    ]
    shapes.to_csv(folder / "peak.csv", index=False)
    return [
        "## Training against the machine's peak",
        "",
        f"- Training FLOPs: {flops / 1e12:.1f} TFLOP (`rnnbench.cost.flops_per_sample` times the images each run trained "
        "on; stopped runs up to their last recorded step).",
        f"- Peak: {peak / 1e9:.1f} GFLOP/s per worker: float32 {PEAK_MATRIX_SIZE} x {PEAK_MATRIX_SIZE} matrix products on "
        f"{threads} thread(s), a "
        f"worker's share of {here}, measured now.",
        f"- The sweep on {workers} worker(s): "
        + "; ".join(f"{what} {seconds / 60:.1f} min" for what, seconds in times.items())
        + ".",
        "",
        "| model | XLA | finished runs | training seconds | GFLOP/s per worker | of peak |",
        "| --- | --- | --- | --- | --- | --- |",
        *rows,
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", help="the sweep's MLflow experiment (default: the latest sweep)")
    parser.add_argument("--out", default="reports/bench/budget")
    parser.add_argument(
        "--compare",
        nargs="+",
        metavar="LABEL=FOLDER",
        help="budgets written earlier by this command, drawn side by side (no store is read)",
    )
    args = parser.parse_args(argv)
    try:
        if args.compare:
            budgets = _written_budgets(args.compare)
        else:
            experiment, recorded, sweep = _ended_sweep(args.experiment)
        folder = Path(args.out)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UserError(f"cannot write to {folder}: {error.strerror}; choose another --out") from None
    except UserError as error:
        print(f"rnnbench: error: {error}", file=sys.stderr)
        return 2
    if args.compare:
        return _compare(budgets, folder)
    runs = recorded.runs[recorded.runs.stage.isin(SWEEP_RUN_STAGES)]
    valid_images = records.validation_images(recorded.runs)
    if valid_images is None:
        print(f"rnnbench: error: no run of '{experiment}' recorded its data splits; re-run the sweep", file=sys.stderr)
        return 2
    table = budget(runs, sweep.start_time, sweep.end_time, valid_images)
    table.to_csv(folder / "budget.csv", index_label="part")
    workers = runs.process.nunique()
    wall = (sweep.end_time - sweep.start_time).total_seconds()
    heading = (
        f"{experiment}: {len(runs)} runs, {workers} worker(s) x {wall:.0f} s = {workers * wall:.0f} "
        f"worker-seconds ({runs.cpu.dropna().iloc[0] if runs.cpu.notna().any() else 'machine not recorded'})"
    )
    lines = [heading, "", "| part | worker-seconds | share | what it counts |", "| --- | --- | --- | --- |"]
    lines += [f"| {part} | {row.seconds:,.0f} | {row.share:.1%} | {PARTS[part]} |" for part, row in table.iterrows()]
    lines += ["", *_against_peak(runs, recorded, training_s(runs, valid_images), wall, folder)]
    (folder / "budget.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    _figure(table, heading, folder / "budget.png")
    return 0


def _ended_sweep(experiment: str | None) -> tuple[str, records.Recorded, pd.Series]:
    """(experiment, its tidy runs, its sweep run), for the named or the latest sweep.

    Raises:
        UserError: no such experiment, no runs, or no sweep run that has ended.
    """
    experiment = experiment or records.latest_sweep_experiment()
    recorded = records.read(experiment, curves=True)
    sweep = recorded.sweep_run
    if sweep is None or pd.isna(sweep.end_time):
        raise UserError(
            f"'{experiment}' has no ended sweep run; give --experiment a finished sweep's name, or let the sweep end first"
        )
    return experiment, recorded, sweep


def _written_budgets(compared: list[str]) -> dict[str, tuple[str, pd.DataFrame]]:
    """{label: (the budget's heading, its table)} for `LABEL=FOLDER` entries, in order.

    Raises:
        UserError: an entry without `=`, or a folder without this command's budget.csv and budget.md.
    """
    budgets = {}
    for entry in compared:
        label, separator, folder = entry.partition("=")
        if not separator or not label or not folder:
            raise UserError(f"--compare: received {entry!r}, expected LABEL=FOLDER (e.g. before=reports/bench/old)")
        try:
            heading = (Path(folder) / "budget.md").read_text().splitlines()[0]
            table = pd.read_csv(Path(folder) / "budget.csv", index_col="part")
        except (OSError, IndexError, ValueError) as error:
            raise UserError(
                f"--compare: {folder} has no budget written by this command ({error}); run it with --out {folder}"
            ) from None
        budgets[label] = (heading, table)
    return budgets


def _compare(budgets: dict[str, tuple[str, pd.DataFrame]], folder: Path) -> int:
    """Writes and prints the budgets side by side: worker-seconds and shares per part, and the figure."""
    columns = " | ".join(f"{label}: worker-seconds | share" for label in budgets)
    lines = [f"- {label}: {heading}" for label, (heading, _) in budgets.items()] + [""]
    lines += [f"| part | {columns} |", "| --- |" + " --- | --- |" * len(budgets)]
    for part in PARTS:
        cells = " | ".join(f"{table.seconds[part]:,.0f} | {table.share[part]:.1%}" for _, table in budgets.values())
        lines.append(f"| {part} | {cells} |")
    totals = " | ".join(f"{table.seconds.sum():,.0f} | 100%" for _, table in budgets.values())
    lines.append(f"| all | {totals} |")
    (folder / "budget-compare.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    tidy = pd.concat({label: table for label, (_, table) in budgets.items()}, names=["sweep", "part"]).reset_index()
    _figure(tidy, "Where the sweep's worker-seconds went: " + ", ".join(budgets), folder / "budget-compare.png", hue="sweep")
    return 0


def _figure(table: pd.DataFrame, title: str, path: Path, hue: str | None = None) -> None:
    """Worker-seconds per part as horizontal bars, each labelled with its share; one bar per sweep with `hue`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.container import BarContainer

    if hue is None:
        table = table.rename_axis("part").reset_index()
    # one total per hue level, in seaborn's order (first appearance): a sweep's bars, or the whole table's
    totals = table.groupby(hue, sort=False).seconds.sum().tolist() if hue else [table.seconds.sum()] * len(table)
    figure, axis = plt.subplots(figsize=(9, 1.2 + 0.35 * len(PARTS) * (len(totals) if hue else 1)))
    sns.barplot(table, x="seconds", y="part", hue=hue or "part", palette="muted", legend=bool(hue), ax=axis)
    for total, container in zip(totals, axis.containers, strict=True):  # one container per hue level
        assert isinstance(container, BarContainer)
        axis.bar_label(container, labels=[f"{bar.get_width() / total:.1%}" for bar in container], padding=4)
    axis.set(xlabel="worker-seconds", ylabel="", title=title)
    axis.title.set_fontsize(9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


if __name__ == "__main__":
    raise SystemExit(main())
