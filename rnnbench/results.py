"""What training produces: evaluations, speed, the trained model, test scores. Plain records.

    python -c "from rnnbench import results; help(results.Speed)"

Kept apart from `rnnbench.train` so that tracking, plots and the cost estimate can read them without
importing Keras.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """The metrics of one evaluation window, `eval_every_steps` steps ending at `step`."""

    step: int
    train_loss: float
    """Mean training loss over the window."""
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    train_samples_per_second: float
    """Training throughput over the window (the first step's compilation excluded)."""


@dataclasses.dataclass(frozen=True)
class Speed:
    train_samples_per_second: float
    """Steady state: every step but those of the first execution (which compiles), validation excluded."""
    compile_seconds: float
    """How much longer the first execution took than as many steady steps (tracing and graph building)."""
    eval_samples_per_second: float
    """Validation throughput, the first (compiling) evaluation excluded when there are others."""
    wall_seconds: float = float("nan")
    """The whole training loop: compilation, steps and validation (NaN for a speed not measured on a run)."""
    peak_memory_bytes: int | None = None
    """The most memory training held: the GPU's on a GPU, else the process's resident set (runtime and data included);
    None where it cannot be read."""


@dataclasses.dataclass
class TrainResult:
    model: Any
    """The trained Keras model."""
    evaluations: list[Evaluation]
    speed: Speed
    start: dict | None = None
    """The untrained model's loss and gradient on the first validation images (`train.starting_point`), where runs of one
    seed in two unroll settings must agree (rnnbench.sweep.unroll); None unless asked for."""


@dataclasses.dataclass(frozen=True)
class Score:
    loss: float
    accuracy: float
    predictions: np.ndarray
    """(N,) predicted classes."""
