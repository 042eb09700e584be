"""The report's figures of uncertainty: the differences between variants with their intervals (a forest plot),
and whether each learning-rate search had enough trials (tuning curves).

    rnnbench report      # the forest and tuning figures of the page (rnnbench.report.gallery)

Both read `rnnbench.report.compare`; like the other figures, each returns a `Figure` that says what is missing
when it cannot be drawn.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator

from rnnbench.report import compare
from rnnbench.report.figures import Figure, save

TIED, BEHIND, REFERENCE = "#2e7d32", "#8c8c8c", "#c44e52"


def forest(board: pd.DataFrame, result: compare.Verdict | None, folder: Path) -> Figure:
    figure = Figure("forest", "Differences between variants, with their 95% intervals")
    if result is None:
        figure.missing = "no per-image test predictions recorded for the best variant (runs from before they were saved)"
        return figure
    if not result.vs_best and not result.vs_reference:
        figure.missing = "only one variant: nothing to compare"
        return figure
    order = [group for group in board.group if group in result.vs_best or group == result.best or group in result.vs_reference]
    panels = [("the best variant", result.vs_best), ("the seed tutorial", result.vs_reference)]
    panels = [(name, rows) for name, rows in panels if rows]
    plot, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 0.34 * len(order) + 1.6), sharey=True, squeeze=False)
    tied = set(result.tied)
    for axis, (name, rows) in zip(axes[0], panels, strict=True):
        for position, group in enumerate(order):
            row = rows.get(group)
            if group == result.best and rows is result.vs_best:
                axis.plot(0, position, "D", color=TIED, markersize=6)  # the best itself, the zero of the left panel
            if row is None:
                continue
            colour = TIED if group in tied and rows is result.vs_best else (REFERENCE if not row.significant else BEHIND)
            axis.errorbar(
                row.difference * 100,
                position,
                xerr=[[(row.difference - row.low) * 100], [(row.high - row.difference) * 100]],
                fmt="o",
                color=colour,
                capsize=3,
                markersize=5,
            )
        axis.axvline(0, color="black", linewidth=1)
        axis.set(xlabel=f"test accuracy minus {name}'s (percentage points)", yticks=range(len(order)), yticklabels=order)
        axis.grid(axis="x", alpha=0.3)
    axes[0][0].invert_yaxis()  # the best on top, as in the leaderboard (the panels share the axis: once)
    axes[0][0].set_ylabel("")
    against = " and of the seed tutorial (right)" if result.vs_reference else " (no seed tutorial in this experiment)"
    reference_colours = "; red on the right: not distinguishable from the seed tutorial" if result.vs_reference else ""
    figure.caption = (
        f"Each variant's mean test accuracy minus that of the best variant (left){against}, with 95% intervals from a "
        f"paired two-level bootstrap ({compare.RESAMPLES:,} resamples of the {result.images:,} test images, the same draw "
        "for every variant, and of each variant's seeds with replacement, their deviations scaled by sqrt(k/(k-1)) for k "
        "seeds). Green: the best (diamond) and the variants tied with it, whose difference is not significant after Holm's "
        f"correction over the comparisons with the best; grey: significantly different{reference_colours}. Each interval "
        "is for its comparison alone, while the colours account for all of them, so an interval that just misses 0 can "
        "still be green. Read which differences the data supports: an interval that crosses 0 is no evidence of one."
    )
    return save(figure, plot, folder)


def tuning_curves(scores: dict[str, np.ndarray], valid_images: int | None, folder: Path) -> Figure:
    figure = Figure("tuning", "Was the search long enough? Expected best validation accuracy against trials")
    scores = {study: values for study, values in scores.items() if len(values)}
    if not scores:
        figure.missing = "no finished search trials in this experiment: it is not a sweep, or its search has not started"
        return figure
    rows = []
    for study, values in scores.items():
        means, sds = compare.tuning_curve(values, len(values))
        rows += [
            {"study": study, "trials": n, "expected": mean, "sd": sd}
            for n, (mean, sd) in enumerate(zip(means, sds, strict=True), 1)
        ]
    curves = pd.DataFrame(rows)
    order = sorted(scores, key=lambda key: (key.split("-h")[0], int(key.split("-h")[1])) if "-h" in key else (key, 0))
    grid = sns.FacetGrid(curves, col="study", col_order=order, col_wrap=min(3, len(order)), height=2.7, aspect=1.3)
    for study, axis in zip(order, grid.axes.flat, strict=True):
        mine = curves[curves.study == study]
        axis.plot(mine.trials, mine.expected, marker="o", color="#1f77b4")
        axis.fill_between(
            mine.trials, mine.expected - mine["sd"], np.minimum(mine.expected + mine["sd"], 1.0), color="#1f77b4", alpha=0.2
        )
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_title(f"{study}: {budget(scores[study], valid_images)}", fontsize=9)
    grid.set_axis_labels("trials", "expected best val. accuracy")
    resolution = f"one validation image ({1 / valid_images:.2%})" if valid_images else "0.25 points"
    figure.caption = (
        "For each study, the expected best validation accuracy after n trials, n = 1 to the trials run, with its standard "
        "deviation (Dodge et al., 2019: the best of n draws from the trials' scores; pruned trials count with their score "
        "when stopped). The trials are treated as draws from one distribution, which TPE's adaptive choices make "
        f"conservative. A curve is flat once more trials gain less than {resolution}. Read whether more trials would "
        "likely have found a better learning rate: a curve still rising at its end says so."
    )
    return save(figure, grid, folder)


def budget(scores: np.ndarray, valid_images: int | None) -> str:
    """The studies table's line: "8 trials: flat after 5" or "8 trials: still rising"."""
    means, _ = compare.tuning_curve(scores, len(scores))
    flat = compare.flat_after(means, 1 / valid_images if valid_images else 0.0025)
    return f"{len(scores)} trials: " + ("still rising" if flat is None else f"flat after {flat}")
