"""Where a sweep's worker-seconds go: training, compilation, validation, recording, pruned trials, waiting.

    make bench-budget                                     # the latest sweep in the store
    python -m rnnbench.bench.budget --experiment rnnbench-sweep --out reports/bench/budget

Read from the sweep's MLflow runs alone. A worker-second is one second of one worker process (each distinct
`rnnbench.process` tag of the sweep's runs) between the start and the end of the sweep's run. Writes
`budget.csv`, `budget.md` and `budget.png` into --out and prints the table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from rnnbench.errors import UserError
from rnnbench.report import tables

PARTS = {
    "training": "the training loop's steps (finished runs)",
    "compilation": "the first execution beyond a steady one: tracing and compiling (finished runs)",
    "validation": "evaluations of the validation split during training (finished runs)",
    "outside the loop": "before and after the loop: the run's record, the test split, figures, the model (finished runs)",
    "stopped runs": "pruned, failed and killed runs, not split (they record no speed)",
    "waiting": "worker time outside any run: taking trials, waiting for a study to finish, starting and stopping",
}
"""The budget's parts, in order, with what each counts."""


def budget(runs: pd.DataFrame, sweep_start: pd.Timestamp, sweep_end: pd.Timestamp, valid_images: int) -> pd.DataFrame:
    """Worker-seconds per part (index: PARTS' keys; columns: seconds, share), from the tidy runs of one sweep.

    Args:
        runs: the sweep's trial, final and reference runs as `rnnbench.report.tables` reads them (with the
            `params.train.eval_every_steps` column).
        sweep_start, sweep_end: the sweep's run's start and end.
        valid_images: images in the validation split.
    """
    lifetime = (runs.end_time - runs.start_time).dt.total_seconds()
    finished = runs.training_s.notna()
    loop, compiled = runs.training_s[finished], runs.compile_s[finished].fillna(0)
    evaluations = runs.steps[finished] // pd.to_numeric(runs["params.train.eval_every_steps"][finished])
    validation = (evaluations * valid_images / runs.eval_samples_per_s[finished]).fillna(0)
    workers = runs.process.nunique()
    seconds = {
        "training": (loop - compiled - validation).sum(),
        "compilation": compiled.sum(),
        "validation": validation.sum(),
        "outside the loop": (lifetime[finished] - loop).sum(),
        "stopped runs": lifetime[~finished].sum(),
        "waiting": workers * (sweep_end - sweep_start).total_seconds() - lifetime.sum(),
    }
    table = pd.DataFrame({"seconds": pd.Series(seconds)})
    return table.assign(share=table.seconds / table.seconds.sum())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", help="the sweep's MLflow experiment (default: the latest sweep)")
    parser.add_argument("--out", default="reports/bench/budget")
    args = parser.parse_args(argv)
    try:
        experiment, recorded, sweep = _ended_sweep(args.experiment)
        folder = Path(args.out)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UserError(f"cannot write to {folder}: {error.strerror}; choose another --out") from None
    except UserError as error:
        print(f"rnnbench: error: {error}", file=sys.stderr)
        return 2
    runs = recorded.runs[recorded.runs.stage.isin(["trial", "final", "reference"])]
    table = budget(runs, sweep.start_time, sweep.end_time, tables.validation_images(recorded.runs))
    table.to_csv(folder / "budget.csv", index_label="part")
    workers = runs.process.nunique()
    wall = (sweep.end_time - sweep.start_time).total_seconds()
    heading = (f"{experiment}: {len(runs)} runs, {workers} worker(s) x {wall:.0f} s = {workers * wall:.0f} "
               f"worker-seconds ({runs.cpu.dropna().iloc[0] if runs.cpu.notna().any() else 'machine not recorded'})")
    lines = [heading, "", "| part | worker-seconds | share | what it counts |", "| --- | --- | --- | --- |"]
    lines += [f"| {part} | {row.seconds:,.0f} | {row.share:.1%} | {PARTS[part]} |" for part, row in table.iterrows()]
    (folder / "budget.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    _figure(table, heading, folder / "budget.png")
    return 0


def _ended_sweep(experiment: str | None) -> tuple[str, tables.Recorded, pd.Series]:
    """(experiment, its tidy runs, its sweep run), for the named or the latest sweep.

    Raises:
        UserError: no such experiment, no runs, or no sweep run that has ended.
    """
    experiment = experiment or tables.latest_sweep_experiment()
    recorded = tables.read(experiment, curves=False)
    sweep = recorded.sweep_run
    if sweep is None or pd.isna(sweep.end_time):
        raise UserError(f"'{experiment}' has no ended sweep run; give --experiment a finished sweep's name, or let the "
                        "sweep end first")
    return experiment, recorded, sweep


def _figure(table: pd.DataFrame, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    figure, axis = plt.subplots(figsize=(9, 3.2))
    sns.barplot(x=table.seconds, y=table.index, hue=table.index, palette="muted", legend=False, ax=axis)
    for position, (_, row) in enumerate(table.iterrows()):
        axis.annotate(f"{row.share:.1%}", (row.seconds, position), xytext=(4, 0), textcoords="offset points", va="center")
    axis.set(xlabel="worker-seconds", ylabel="", title=title)
    axis.title.set_fontsize(9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


if __name__ == "__main__":
    raise SystemExit(main())
