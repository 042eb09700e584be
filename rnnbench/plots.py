"""Figures saved with each run: learning curves, the seed's digit grid, the test confusion matrix.

    python -c "from rnnbench import plots; help(plots)"

Each function writes one PNG and returns its path; nothing here knows about MLflow.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI

import matplotlib.pyplot as plt
import numpy as np

from rnnbench.data import CLASSES, Split
from rnnbench.results import Evaluation
from rnnbench.tasks import Task


def learning_curves(evaluations: Sequence[Evaluation], title: str, path: Path) -> Path:
    """Loss and accuracy against optimizer step, training (window means) and validation."""
    steps = [evaluation.step for evaluation in evaluations]
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 3.8))
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.14, top=0.84, wspace=0.22)
    for axis, metric in ((loss_axis, "loss"), (accuracy_axis, "accuracy")):
        for split, label in (("train", "train (window mean)"), ("val", "validation")):
            axis.plot(steps, [getattr(evaluation, f"{split}_{metric}") for evaluation in evaluations], marker="o", label=label)
    loss_axis.legend()
    loss_axis.set(xlabel="optimizer step", ylabel="cross-entropy (nats)", title="Loss")
    accuracy_axis.set(xlabel="optimizer step", ylabel="accuracy (fraction correct)", title="Accuracy")
    figure.suptitle(title)
    return _save(figure, path)


def digit_grid(split: Split, task: Task, path: Path, count: int = 10, columns: int = 5) -> Path:
    """The seed's picture: the first `count` training images with their labels, in one mosaic, captioned with
    how the task reads them.

    Drawn once per process for each picture: every final run of a sweep has the same first training images.
    """
    key = (split.images[:count].tobytes(), split.labels[:count].tobytes(), task.description, columns)
    if key not in _DRAWN_GRIDS:
        _DRAWN_GRIDS[key] = _draw_digit_grid(split, task, path, count, columns).read_bytes()
    path.write_bytes(_DRAWN_GRIDS[key])
    return path


_DRAWN_GRIDS: dict[tuple, bytes] = {}
"""The digit grids this process has drawn, as PNG files' bytes, by what they show."""


def _draw_digit_grid(split: Split, task: Task, path: Path, count: int, columns: int) -> Path:
    rows = -(-count // columns)
    size = split.images.shape[1]
    mosaic = np.zeros((rows * (size + 6), columns * (size + 2)), dtype=np.float32)
    figure, axis = plt.subplots(figsize=(columns * 1.3, rows * 1.5))
    figure.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=0.88)
    for index, (image, label) in enumerate(zip(split.images[:count], split.labels[:count], strict=True)):
        top, left = (index // columns) * (size + 6) + 6, (index % columns) * (size + 2) + 1
        mosaic[top : top + size, left : left + size] = image
        axis.text(left + size / 2, top - 1.5, f"label {label}", ha="center", va="bottom", fontsize=9)
    axis.imshow(mosaic, cmap="gray_r")
    axis.axis("off")
    axis.set_title(f"The first {count} training digits, read {task.description}", fontsize=10)
    return _save(figure, path)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, title: str, path: Path) -> Path:
    """Counts of true class (rows) against predicted class (columns) on the test split (scikit-learn's display)."""
    from sklearn.metrics import ConfusionMatrixDisplay

    figure, axis = plt.subplots(figsize=(6.4, 5.4))
    figure.subplots_adjust(left=0.1, right=0.98, bottom=0.1, top=0.93)
    display = ConfusionMatrixDisplay.from_predictions(
        labels, predictions, labels=range(CLASSES), ax=axis, cmap="Blues", colorbar=False, text_kw={"fontsize": 8}
    )
    for text, count in zip(display.text_.flat, display.confusion_matrix.flat, strict=True):
        if count == 0:  # zeros left blank: the mistakes stand out
            text.set_text("")
    axis.set(xlabel="predicted class", ylabel="true class", title=title)
    return _save(figure, path)


# Plain matplotlib (and scikit-learn's display) with fixed margins, not seaborn's lineplot and heatmap or constrained
# layout, which took longer a figure (the docs' results page, Decisions): these figures are drawn in every run.
def _save(figure, path: Path) -> Path:
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
