"""The landscape figure: the search landscape, one grid per searched setting, a panel per study.

rnnbench report --experiment rnnbench-sweep      # draws figures/landscape.png (and landscape-<key>.png)
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.ticker as ticker
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D

from rnnbench.report.figures import STATES, Figure, save
from rnnbench.report.tables import settings, trial_states
from rnnbench.sweep.space import short


def landscape(trials: pd.DataFrame, studies: pd.DataFrame, searched: dict[str, bool], folder: Path) -> Figure:
    """Per searched setting (key -> searched on a log scale), one panel per study: each trial's best validation
    accuracy against its value."""
    only_rate = list(searched) == ["train.learning_rate"]
    figure = Figure(
        "landscape",
        "The learning-rate landscape of each study"
        if only_rate
        else f"The search landscape of each study, one grid per searched setting ({', '.join(searched)})",
    )
    if trials.empty:
        figure.missing = "no search trials in this experiment: it is not a sweep, or its search has not started"
        return figure
    trials = trials.assign(state=trial_states(trials))
    values = settings(trials)
    for index, (key, log) in enumerate(searched.items()):
        recorded = values.get(key, pd.Series(pd.NA, index=trials.index, dtype="string"))
        numbers = pd.to_numeric(recorded, errors="coerce")
        choices = sorted(recorded.dropna().astype(str).unique()) if numbers.isna().all() and recorded.notna().any() else []
        value = (
            recorded.astype("string").map({choice: position for position, choice in enumerate(choices)}) if choices else numbers
        )
        grid = _landscape_grid(trials.assign(value=pd.to_numeric(value)), studies, key, log, choices)
        save(figure, grid, folder, stem=figure.key if index == 0 else f"{figure.key}-{short(key)}")
    figure.caption = (
        f"Each trial's best validation accuracy against its value of {' and of '.join(searched)}; grey triangles were "
        "stopped early by the pruner (their best before stopping), red crosses at the bottom failed before any "
        "evaluation, and the dashed line is the value the final runs use. Read how sharp the optimum is and whether "
        "the search range brackets it."
    )
    return figure


def _landscape_grid(trials: pd.DataFrame, studies: pd.DataFrame, key: str, log: bool, choices: list[str]) -> sns.FacetGrid:
    """`choices`: the values of a categorical setting that is not a number, drawn at positions 0, 1, ... in this order."""
    order = sorted(trials.study.dropna().unique(), key=lambda study: (study.split("-h")[0], int(study.split("-h")[1])))
    grid = sns.FacetGrid(trials, col="study", col_order=order, col_wrap=min(3, len(order)), height=2.9, aspect=1.25)
    position = {choice: index for index, choice in enumerate(choices)}
    chosen = (
        studies.set_index("study").chosen.map(lambda values: position.get(str(values.get(key)), values.get(key, np.nan)))
        if not studies.empty
        else pd.Series(dtype=float)
    )
    for study, axis in zip(order, grid.axes.flat, strict=True):
        mine = trials[trials.study == study]
        for state, (color, marker) in STATES.items():
            scored = mine[(mine.state == state) & mine.best_val_accuracy.notna()]
            axis.scatter(scored.value, scored.best_val_accuracy, color=color, marker=marker, s=60, zorder=3)
        unscored = mine[mine.best_val_accuracy.isna()]
        if len(unscored):  # drawn at the bottom of the panel: no score to place them by
            axis.plot(
                unscored.value,
                np.full(len(unscored), 0.04),
                "X",
                color=STATES["FAIL"][0],
                markersize=9,
                linestyle="none",
                transform=axis.get_xaxis_transform(),
            )
        if choices:
            axis.set_xticks(range(len(choices)), choices)
            axis.set_xlim(-0.5, len(choices) - 0.5)
        elif log:
            axis.set_xscale("log")
            axis.xaxis.set_minor_formatter(ticker.NullFormatter())
        if pd.notna(chosen.get(study, np.nan)):
            axis.axvline(chosen[study], color="black", linestyle="--", linewidth=1)
            axis.annotate(
                f"chosen {chosen[study]:.2g}",
                (chosen[study], 0.97),
                xycoords=("data", "axes fraction"),
                xytext=(-3, 0),
                textcoords="offset points",
                fontsize=8,
                rotation=90,
                ha="right",
                va="top",
            )
    if trials.best_val_accuracy.isna().all():
        grid.set(ylim=(0, 1))
    present = [state for state in STATES if state in set(trials.state)]
    grid.add_legend(
        legend_data={
            state.lower(): Line2D([], [], color=STATES[state][0], marker=STATES[state][1], linestyle="none", markersize=8)
            for state in present
        },
        title="trial",
    )
    grid.set_axis_labels(f"{key}{' (log scale)' if log else ''}", "best validation accuracy")
    grid.set_titles("{col_name}")
    return grid
