"""The report's figures, drawn with seaborn from the tidy tables of `rnnbench.report.tables`.

    rnnbench report --experiment rnnbench-sweep      # draws all six into reports/<experiment>/figures/

Each function returns a `Figure`: its files, title and the sentence that says what to read from
it, or, when the experiment lacks what it needs, `missing`: what is absent and how to get it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import matplotlib.ticker as ticker
import numpy as np
import pandas as pd
import seaborn as sns

from rnnbench import names
from rnnbench.cells import CELLS
from rnnbench.tasks import TASKS


def palette() -> dict[str, str]:
    """Each cell's display name -> its colour, the same in every figure (read from rnnbench.cells)."""
    return {cell.name: cell.colour for cell in CELLS.values()}


def cell_names() -> dict[str, str]:
    return {key: cell.name for key, cell in CELLS.items()}


UNROLL_NAMES = {False: "looped", True: "unrolled"}
UNROLL_SHADES = {"looped": "#a9b4c2", "unrolled": "#3d4a5c"}
"""Greys, so that bars of unroll settings are not mistaken for the colours of the cells."""
STATES = {"COMPLETE": ("#1f77b4", "o"), "PRUNED": ("#999999", "v"), "FAIL": ("#d62728", "X"), "RUNNING": ("#ff7f0e", "s")}
BAND = ("ci", 95)
"""Seaborn's 95% bootstrap confidence interval of the mean across seeds."""


def band_note(seeds: int) -> str:
    """What a bootstrap interval over this many seeds is worth, said once in each caption that shows one."""
    if seeds < 2:
        return "one seed: no interval"
    note = f"95% bootstrap confidence intervals of the mean over {seeds} seeds"
    return note + (f" (with {seeds} seeds, little more than their range)" if seeds <= 3 else "")


@dataclasses.dataclass
class Figure:
    key: str
    title: str
    caption: str = ""
    paths: list[Path] = dataclasses.field(default_factory=list)
    missing: str | None = None


def labelled(runs: pd.DataFrame) -> pd.DataFrame:
    """Adds the display columns the figures group and colour by."""
    return runs.assign(
        cell_name=runs.cell.map(cell_names()),
        unroll_name=runs.unroll.map(UNROLL_NAMES),
        model=runs.cell.map(cell_names()) + "-" + runs.hidden_units.astype(str),
    )


def accuracy_curves(compared: pd.DataFrame, curves: pd.DataFrame, folder: Path) -> Figure:
    figure = Figure("curves", "Validation accuracy during training")
    points = curves[curves.metric == names.VAL_ACCURACY].merge(labelled(compared), on="run_id")
    if points.empty:
        figure.missing = "no finished final run (or single run) with a validation curve yet"
        return figure
    seeds = int(compared.groupby("group").seed.nunique().max())
    by_cell = compared.group.nunique() == compared.groupby(["cell", "hidden_units"]).ngroups
    grid = sns.relplot(
        points,
        kind="line",
        x="step",
        y="value",
        col="hidden_units",
        style="unroll_name",
        hue="cell_name" if by_cell else "group",
        palette=palette() if by_cell else None,
        errorbar=BAND if seeds > 1 else None,
        n_boot=1000,
        seed=0,
        height=3.6,
        aspect=1.05,
        style_order=["looped", "unrolled"],
        facet_kws={"sharey": True},
    )
    grid.set_axis_labels("optimizer step", "validation accuracy (fraction correct)")
    grid.set_titles("{col_name} hidden units")
    _legend_titles(grid.legend, {"cell_name": "cell", "unroll_name": "unroll", "group": "runs"})
    figure.caption = (
        f"Mean validation accuracy of each model at every evaluation, one panel per hidden size (bands: {band_note(seeds)}). "
        "Read which cell learns fastest and ends highest at each size. The line's style is the unroll setting the runs "
        "trained in (solid looped, dashed unrolled): a speed setting, not a different model."
    )
    return save(figure, grid, folder)


def accuracy_by_size(compared: pd.DataFrame, reference: pd.DataFrame, folder: Path) -> Figure:
    figure = Figure("size", "Test accuracy against hidden size")
    if compared.empty:
        figure.missing = "no finished final run (or single run) with a test accuracy yet"
        return figure
    runs = labelled(compared)
    grid = sns.catplot(
        runs,
        kind="point",
        x="hidden_units",
        y="test_accuracy",
        hue="cell_name",
        palette=palette(),
        errorbar=BAND,
        n_boot=1000,
        seed=0,
        capsize=0.08,
        height=3.8,
        aspect=1.6,
        dodge=0.3 if runs.cell.nunique() > 1 else False,  # seaborn divides by (cells - 1)
    )
    grid.set_axis_labels("hidden units", "test accuracy (fraction correct)")
    _legend_titles(grid.legend, {"cell_name": "cell"})
    seed_note = "no reference: the experiment has no finished run of the seed tutorial (`make run` records one)"
    if not reference.empty:
        mean = reference.test_accuracy.mean()
        for axis in grid.axes.flat:
            axis.axhline(mean, color="black", linestyle=":", linewidth=1.4)
            if len(reference) > 1:
                axis.axhspan(reference.test_accuracy.min(), reference.test_accuracy.max(), color="black", alpha=0.07)
            axis.annotate(
                f"seed tutorial (SimpleRNN-50, 5,000 steps): {mean:.1%}",
                (0.99, mean),
                xycoords=("axes fraction", "data"),
                xytext=(0, -4),
                textcoords="offset points",
                fontsize=8.5,
                ha="right",
                va="top",
            )
        spread = ", grey: its range" if len(reference) > 1 else ""
        seed_note = f"dotted: the seed tutorial's SimpleRNN-50, mean of {len(reference)} run(s){spread}"
    seeds = int(compared.groupby("group").seed.nunique().max())
    figure.caption = (
        f"Mean test accuracy per cell and size ({band_note(seeds)}); {seed_note}. "
        "Read how much each cell gains from more units, and which beat the seed tutorial."
    )
    return save(figure, grid, folder)


def speed(runs: pd.DataFrame, speeds: pd.DataFrame, folder: Path) -> Figure:
    """Each model's speed in each unroll setting, from its final and timing runs (or single runs): `tables.speeds`."""
    figure = Figure("speed", "Speed in each unroll setting")
    measured = runs[runs.stage.isin(["final", "timing", "run"]) & (runs.status == "FINISHED")].dropna(
        subset=["cell", "hidden_units", "unroll", "train_samples_per_s"]
    )
    if measured.empty:
        figure.missing = "no finished final, timing or single run with speed measurements yet"
        return figure
    measured = labelled(measured).sort_values(["cell", "hidden_units"])
    shapes = labelled(speeds)
    order = list(dict.fromkeys(measured.model))
    panels = [
        (measured, "train_samples_per_s", "training samples per second (steady state)"),
        (shapes, "compile_s", "compile time of a shape's first run (s)"),
        (measured, "peak_memory_mb", "peak memory while training (MB)"),
    ]
    panels = [(data, column, label) for data, column, label in panels if data[column].notna().any()]
    plot, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 0.42 * len(order) + 1.9), sharey=True, squeeze=False)
    for index, (axis, (data, column, label)) in enumerate(zip(axes[0], panels, strict=True)):
        sns.barplot(
            data,
            x=column,
            y="model",
            order=order,
            hue="unroll_name",
            hue_order=["looped", "unrolled"],
            palette=UNROLL_SHADES,
            orient="h",
            errorbar="sd" if data is measured else None,
            err_kws={"color": "#c44e52", "linewidth": 1.5},
            ax=axis,
            legend=index == 0,
        )
        axis.set(xlabel=label, ylabel="")
    axes[0][0].legend(title="unroll", fontsize=8, title_fontsize=8, loc="upper right")
    ratios = speeds.dropna(subset=["unrolled_over_looped"]).drop_duplicates(["cell", "hidden_units"])
    ratio_note = (
        f"unrolled trains at {ratios.unrolled_over_looped.min():.2f}x to {ratios.unrolled_over_looped.max():.2f}x "
        "the looped setting's samples/s (the speed table gives each model's)"
        if len(ratios)
        else "only one unroll setting was measured"
    )
    figure.caption = (
        "Speed of each model in each unroll setting, as measured in its runs (mean, bars: sd over runs): the setting it "
        "was trained in by its final runs, the other by its timing run (one evaluation window); compile time: the "
        "shape's first run in a worker process (later runs reuse its compiled model). The runs shared the "
        f"machine with the sweep's other workers, so compare models and settings with each other. Here {ratio_note}. "
        "Peak memory is the GPU's on a GPU, else the worker process's resident memory (its runtime and data included)."
    )
    return save(figure, plot, folder)


def pareto(board: pd.DataFrame, folder: Path) -> Figure:
    figure = Figure("pareto", "Accuracy against cost: the Pareto front")
    if board.empty or board.test_accuracy.isna().all():
        figure.missing = "no finished final run (or single run) with a test accuracy yet"
        return figure
    board = labelled(board)
    plot, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharey=True)
    for axis, cost, label in (
        (axes[0], "training_s", "training time per run (s, log scale)"),
        (axes[1], "parameters", "parameters (log scale)"),
    ):
        others = board[~board.is_reference]
        sns.scatterplot(
            others,
            x=cost,
            y="test_accuracy",
            hue="cell_name",
            style="unroll_name",
            palette=palette(),
            style_order=["looped", "unrolled"],
            s=80,
            ax=axis,
            legend=axis is axes[0],
        )
        axis.scatter(
            board.loc[board.is_reference, cost],
            board.loc[board.is_reference, "test_accuracy"],
            marker="*",
            s=220,
            color="black",
            label="seed tutorial",
        )
        front = _front(board, cost)
        axis.step(front[cost], front.test_accuracy, where="post", color="black", alpha=0.5, linewidth=1)
        for _, row in front.iterrows():
            name = "seed tutorial" if row.is_reference else row.group
            axis.annotate(name, (row[cost], row.test_accuracy), xytext=(5, -11), textcoords="offset points", fontsize=8)
        axis.set(xscale="log", xlabel=label, ylabel="test accuracy (mean over seeds)")
        _log_axis(axis)
    _legend_titles(axes[0].get_legend(), {"cell_name": "cell", "unroll_name": "unroll"})
    figure.caption = (
        "Each variant's mean test accuracy against what it costs (the star is the seed tutorial, trained for 5,000 "
        "steps; the variants train for the sweep's train.steps); the line joins the Pareto front, the variants no "
        "other beats on both accuracy and cost, and only those are labelled. Read the cheapest way to a given accuracy."
    )
    return save(figure, plot, folder)


def best_model(board: pd.DataFrame, compared: pd.DataFrame, folder: Path) -> Figure:
    """The digit grid and confusion matrix that the best final run saved, fetched from its artifacts."""
    import mlflow

    figure = Figure("best_model", "The data, and where the best model errs")
    contenders = board[~board.is_reference] if not board.empty else board
    if contenders.empty:
        figure.missing = "no finished final run (or single run) yet"
        return figure
    winner = contenders.iloc[0]
    runs = compared[compared.group == winner.group].sort_values("test_accuracy", ascending=False)
    run = runs.iloc[0]
    for artifact in ("digits.png", "confusion_matrix.png"):
        try:
            local = Path(mlflow.artifacts.download_artifacts(run_id=run.run_id, artifact_path=artifact, dst_path=str(folder)))
        except Exception as error:  # MLflow raises several types for an artifact that is not there
            figure.missing = f"run {run.run_name} has no {artifact} ({type(error).__name__})"
            return figure
        figure.paths.append(local.rename(folder / f"best_model_{artifact}"))
    reading = TASKS[run.task].description if pd.notna(run.task) and run.task in TASKS else TASKS["row"].description
    figure.caption = (
        f"Left: the first ten training images with their labels, each read by the network {reading}. "
        f"Right: test-split predictions of the best model, {run.run_name} (seed {run.seed}, test accuracy "
        f"{run.test_accuracy:.2%}). Read which digits it confuses: off-diagonal cells."
    )
    return figure


def _front(board: pd.DataFrame, cost: str) -> pd.DataFrame:
    """Rows not dominated: none is both cheaper (or equal) and more accurate."""
    ordered = board.dropna(subset=[cost, "test_accuracy"]).sort_values([cost, "test_accuracy"], ascending=[True, False])
    best = -np.inf
    keep = []
    for index, row in ordered.iterrows():
        if row.test_accuracy > best:
            keep.append(index)
            best = row.test_accuracy
    return ordered.loc[keep]


def _legend_titles(legend, titles: dict[str, str]) -> None:
    """Seaborn labels legend sections with column names; these are for people."""
    if legend is None:
        return
    legend.set_title(titles.get(legend.get_title().get_text(), legend.get_title().get_text()))
    for text in legend.texts:
        text.set_text(titles.get(text.get_text(), text.get_text()))


def _log_axis(axis, which: str = "x") -> None:
    """A log axis labelled 1, 2, 5, 10, 20, ... in plain numbers rather than powers of ten."""
    target = axis.xaxis if which == "x" else axis.yaxis
    target.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:,.0f}" if value >= 1 else f"{value:g}"))
    target.set_minor_formatter(ticker.NullFormatter())


def save(figure: Figure, plot, folder: Path, stem: str | None = None) -> Figure:
    """Saves a matplotlib figure or a seaborn grid (whose own layout keeps its legend outside the panels)."""
    if isinstance(plot, sns.FacetGrid):
        plot.figure.suptitle(figure.title, fontsize=13)
        plot.tight_layout()
        plot = plot.figure
    else:
        plot.suptitle(figure.title, fontsize=13)
        plot.tight_layout()
    path = folder / f"{stem or figure.key}.png"
    plot.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(plot)
    figure.paths.append(path)
    return figure
