"""The report's figures, one entry each: what the page and its captions call it, its files, how to draw it.

    rnnbench report --experiment rnnbench-sweep      # draws every entry into reports/<experiment>/figures/

A figure's number is its place in FIGURES, so a new figure is one entry: the page numbers it, embeds it,
clears its stale files, and every cross-reference ("the search budget, Figure 8") follows the numbers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from rnnbench.records import Recorded
from rnnbench.report import compare, figures, landscape, literature, uncertainty
from rnnbench.report.figures import Figure


@dataclasses.dataclass(frozen=True)
class Inputs:
    """Everything a figure may be drawn from: the recorded runs and the tables the page computes from them."""

    recorded: Recorded
    compared: pd.DataFrame
    reference: pd.DataFrame
    board: pd.DataFrame
    result: compare.Verdict | None
    studies: pd.DataFrame
    searched: dict[str, bool]
    speeds: pd.DataFrame
    scores: dict
    valid_images: int | None
    published: tuple


@dataclasses.dataclass(frozen=True)
class Entry:
    key: str
    """How the page and the other captions refer to it (`numbers()["tuning"]`); also its first file's stem."""
    draw: Callable[[Inputs, Path], Figure]
    """Draws it into the figures folder; its title and caption, which depend on the data, come with the Figure."""
    stems: tuple[str, ...] = ()
    """Its files in figures/ (without .png) besides `key`, e.g. best_model_digits; `key-<setting>` files count too."""


FIGURES: list[Entry] = [
    Entry("curves", lambda inputs, folder: figures.accuracy_curves(inputs.compared, inputs.recorded.curves, folder)),
    Entry("size", lambda inputs, folder: figures.accuracy_by_size(inputs.compared, inputs.reference, folder)),
    Entry(
        "landscape",
        lambda inputs, folder: landscape.landscape(inputs.recorded.stage("trial"), inputs.studies, inputs.searched, folder),
    ),
    Entry("speed", lambda inputs, folder: figures.speed(inputs.recorded.runs, inputs.speeds, folder)),
    Entry("pareto", lambda inputs, folder: figures.pareto(inputs.board, folder)),
    Entry(
        "best_model",
        lambda inputs, folder: figures.best_model(inputs.board, inputs.compared, folder),
        stems=("best_model_digits", "best_model_confusion_matrix"),
    ),
    Entry("forest", lambda inputs, folder: uncertainty.forest(inputs.board, inputs.result, folder)),
    Entry("tuning", lambda inputs, folder: uncertainty.tuning_curves(inputs.scores, inputs.valid_images, folder)),
    Entry(
        "published",
        lambda inputs, folder: literature.published_beside_ours(inputs.board, inputs.compared, inputs.published, folder),
    ),
]
"""The page's figures, in the order it shows them (Figure 1 first)."""


def numbers() -> dict[str, int]:
    """Each figure's number on the page: its place in FIGURES."""
    return {entry.key: number for number, entry in enumerate(FIGURES, 1)}


def is_figure_file(path: Path) -> bool:
    """Whether a file in figures/ is one of the entries' (landscape-<setting>.png too): a stale one is removed."""
    stems = {stem for entry in FIGURES for stem in (entry.key, *entry.stems)}
    return path.suffix == ".png" and (path.stem in stems or path.stem.split("-")[0] in stems)


def draw_all(inputs: Inputs, folder: Path) -> list[Figure]:
    """Every figure, in order; one that cannot be drawn becomes a note on the page, not a failed report."""
    drawn = []
    for entry in FIGURES:
        try:
            figure = entry.draw(inputs, folder)
        except Exception as error:  # the CLI prints the reason, the page shows it; the other figures still appear
            figure = Figure(
                entry.key, entry.key.replace("_", " "), missing=f"an error in drawing it: {type(error).__name__}: {error}"
            )
        drawn.append(figure)
    return drawn
