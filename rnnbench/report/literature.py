"""The literature figure: the runs' test accuracy beside the published figures for the same task and cell.

    rnnbench report --experiment rnnbench-permuted   # draws figures/published.png; published.csv lists its rows

The published rows come from `rnnbench.published`; a mark is drawn for each row whose cell the runs trained.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from rnnbench import published
from rnnbench.data import SOURCES
from rnnbench.records import split_images
from rnnbench.report.figures import BAND, Figure, band_note, cell_names, labelled, palette, save
from rnnbench.tasks import TASKS

MARKERS = ("D", "s", "^", "P", "v", "X")
"""One marker shape per cited table."""
CHANCE = 0.1


def matching(compared: pd.DataFrame) -> tuple[pd.DataFrame, str | None]:
    """The published rows for the runs' tasks and cells, or why there are none (runs on another dataset, or no
    checked figure for their task and cells)."""
    rows = published.table()
    none = rows.iloc[:0]
    if compared.empty:
        return none, "no finished final run (or single run) with a test accuracy yet"
    sources = sorted(set(compared.data_source.dropna()))
    mnist = [name for name, source in SOURCES.items() if source.mnist_images]
    if not set(sources) <= set(mnist):
        return none, f"the published figures are for MNIST ({', '.join(mnist)}); these runs read {', '.join(sources)}"
    tasks = set(compared.task)
    matched = rows[rows.task.isin(tasks) & rows.cell.isin(set(compared.cell))]
    if matched.empty:
        return none, (
            f"rnnbench/published.csv has no checked figure for {', '.join(sorted(tasks))} with these cells "
            f"(it covers {', '.join(sorted(set(rows.task)))})"
        )
    return matched, None


def published_beside_ours(
    board: pd.DataFrame, compared: pd.DataFrame, matched: tuple[pd.DataFrame, str | None], folder: Path
) -> Figure:
    """Per task, each cell's best model (its runs' mean and interval) beside the published accuracy of that cell.

    Args:
        matched: what `matching(compared)` returned: the published rows to draw, or why there are none.
    """
    figure = Figure("published", "Beside the literature: published test accuracy for the same task and cell")
    rows, figure.missing = matched
    if figure.missing:
        return figure
    runs = labelled(compared)
    order = list(dict.fromkeys(board.group))  # best first
    best = runs.assign(rank=runs.group.map(order.index)).sort_values("rank").groupby(["task", "cell"]).group.first()
    ours = runs[runs.group.isin(set(best))]
    tasks = [task for task in TASKS if task in set(rows.task)]
    width = 2.4 * ours.cell.nunique() + 1.6  # room for each mark's label before the next cell's
    plot, axes = plt.subplots(1, len(tasks), figsize=(width * len(tasks), 4.8), sharey=True, squeeze=False)
    tables = list(dict.fromkeys(rows.apply(published.citation, axis=1)))
    for axis, task in zip(axes[0], tasks, strict=True):
        _panel(axis, task, ours[ours.task == task], rows[rows.task == task], tables)
    handles = [plt.Line2D([], [], marker="o", color="black", linestyle="none", label="these runs (mean)")] + [
        plt.Line2D(
            [],
            [],
            marker=MARKERS[index % len(MARKERS)],
            markerfacecolor="white",
            markeredgecolor="black",
            linestyle="none",
            label=source,
        )
        for index, source in enumerate(tables)
    ]
    plot.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.02), fontsize=8.5, frameon=False)
    seeds = int(ours.groupby("group").seed.nunique().max())
    figure.caption = (
        f"Test accuracy of each cell's best model in these runs ({', '.join(sorted(set(best)))}; filled: mean, bars: "
        f"{band_note(seeds)}) beside the published test accuracy of the same cell on the same task (open markers, "
        f"labelled with the published model's size). Sources: {'; '.join(tables)}. {_quoted(rows)}{training_note(ours)} "
        "On permuted MNIST each paper drew its own fixed permutation. Read how far these runs are from what the cell "
        "reached with the published budget, and whether the cells rank in the same order."
    )
    return save(figure, plot, folder)


def _panel(axis, task: str, ours: pd.DataFrame, rows: pd.DataFrame, tables: list[str]) -> None:
    cells = [name for name in palette() if name in set(ours.cell_name)]
    sns.pointplot(
        ours,
        x="cell_name",
        y="test_accuracy",
        hue="cell_name",
        order=cells,
        palette=palette(),
        errorbar=BAND,
        n_boot=1000,
        seed=0,
        linestyle="none",
        capsize=0.15,
        legend=False,
        ax=axis,
    )
    for cell_name, cell_rows in rows.groupby(rows.cell.map(cell_names())):
        position = cells.index(cell_name)
        for offset, (_, row) in enumerate(cell_rows.iterrows(), 1):
            marker = MARKERS[tables.index(published.citation(row)) % len(MARKERS)]
            axis.scatter(
                position + 0.22 * offset,
                row.test_accuracy,
                marker=marker,
                s=55,
                facecolors="white",
                edgecolors=palette()[cell_name],
                linewidths=1.6,
                zorder=3,
            )
            axis.annotate(
                f"{row.test_accuracy:.1%}, {published.size(row)}",
                (position + 0.22 * offset, row.test_accuracy),
                xytext=(5, 0),
                textcoords="offset points",
                fontsize=7,
                va="center",
            )
    axis.axhline(CHANCE, color="grey", linestyle=":", linewidth=1)
    axis.annotate(
        "chance",
        (0.01, CHANCE),
        xycoords=("axes fraction", "data"),
        xytext=(0, 3),
        textcoords="offset points",
        fontsize=7.5,
        color="grey",
    )
    axis.set(ylim=(0, 1.02), xlabel="", ylabel="test accuracy (fraction correct)", title=TASKS[task].description)
    axis.set_xlim(-0.5, len(cells) - 0.1)


def _quoted(rows: pd.DataFrame) -> str:
    quoted = rows.dropna(subset=["quoted_from"])
    if quoted.empty:
        return ""
    return (
        "Rows quoted in a table from an earlier paper: "
        + "; ".join(f"{row.model} from {row.quoted_from}" for _, row in quoted.drop_duplicates("model").iterrows())
        + ". "
    )


def training_note(ours: pd.DataFrame) -> str:
    """What the runs trained on, against the published runs' full MNIST training set."""
    train = split_images(ours, "train")
    steps, batch = int(ours.steps.max()), int(ours.batch_size.max())
    if train.empty:
        return f"The published runs trained on the full MNIST training set of {published.FULL_TRAINING_SET:,} images."
    images = int(train.max())
    epochs = steps * batch / images
    if set(ours.data_source) == {"mnist"}:
        return (
            f"These runs trained on the same MNIST training set ({images:,} images after the validation split) for "
            f"{steps:,} steps of {batch} ({epochs:.1f} epochs)."
        )
    return (
        f"The published runs trained on the full MNIST training set of {published.FULL_TRAINING_SET:,} images (less "
        f"any validation split), for the budgets their papers give (Bai et al.: 10 epochs); these runs trained on "
        f"{images:,} images ({images / published.FULL_TRAINING_SET:.0%} of them) for {steps:,} steps of {batch} "
        f"({epochs:.1f} epochs), so a gap below the published figures shows that smaller budget (and each paper's own "
        "settings) before it says anything about the cell."
    )
