"""What a model costs: its training FLOPs, the memory a step needs, a modelled speed, and whether a run fits.

    python -c "from rnnbench import cost; print(cost.flops_per_sample('lstm', 128, 'row'))"

One FLOP model for the whole code base (the sweep's dry run, `make bench`): a training step does the
recurrent matrix products forward and backward (3x), at every time step, for each of the cell's gates:
3 x steps x 2 x gates x H x (features + H) per image. Cells and tasks come from their tables, so a
new cell or task is costed without a change here. The speed model is fitted to `make bench`'s grid on
the machine the docs' results page names, where its error is measured too.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

from rnnbench import cells
from rnnbench.config import ModelConfig
from rnnbench.data import CLASSES
from rnnbench.errors import ConfigError
from rnnbench.results import Speed
from rnnbench.tasks import TASKS

STEP_OVERHEAD_S = 1.2e-3
"""Fitted: seconds per training step that do not grow with the model (2-core EPYC, TF 2.21; 2.6e-3
at one step per execution)."""
FLOP_RATE = 95e9
"""Fitted: float32 FLOP/s that a training step reaches on the same machine."""
EVAL_SPEEDUP = 3
"""Evaluation runs the forward pass only: about 3x the training rate."""


def flops_per_sample(cell: str, hidden_units: int, task: str = "row") -> float:
    """Training FLOPs per image: forward and backward (3x) over the task's steps of the recurrent products."""
    shape = TASKS[task]
    return 3 * shape.steps * 2 * cells.get(cell).gates * hidden_units * (shape.features + hidden_units)


def modelled_speed(cell: str, hidden_units: int, unroll: bool, batch_size: int, task: str = "row") -> Speed:
    """The speed the fitted FLOP model predicts, with the cell's measured compile time (or the default).

    Time steps beyond the row task's 28 (to which the model was fitted) cost the cell's measured overhead per
    step each (the docs' results page has how far this model is from measured speeds)."""
    extra_steps = max(TASKS[task].steps - TASKS["row"].steps, 0)
    step_seconds = (
        STEP_OVERHEAD_S
        + extra_steps * cells.time_step_seconds(cell)
        + batch_size * flops_per_sample(cell, hidden_units, task) / FLOP_RATE
    )
    return Speed(batch_size / step_seconds, cells.compile_seconds(cell, unroll), EVAL_SPEEDUP * batch_size / step_seconds)


def memory_needed(model: ModelConfig, batch_size: int, task: str = "row") -> tuple[int, int]:
    """A lower bound of the bytes one training step needs, and the model's parameter count.

    float32 weights, their gradients and Adam's two moments (4 per parameter); the activations kept
    for back-propagation through the steps (the gates and the state, at least); the batch in
    training and the two prefetched. Keras needs more than this, never less.
    """
    gates, units, shape = cells.get(model.cell).gates, model.hidden_units, TASKS[task]
    parameters = gates * units * (shape.features + units + 2) + CLASSES * (units + 1)
    activations = batch_size * shape.steps * (gates + 2) * units
    inputs = 3 * batch_size * shape.steps * shape.features
    return 4 * (4 * parameters + activations + inputs), parameters


def available_memory() -> int | None:
    """Bytes of memory this process can still use: the machine's available memory, within a cgroup limit."""
    limits = []
    try:
        meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        limits.append(int(meminfo["MemAvailable"].split()[0]) * 1024)
    except (OSError, KeyError, ValueError):
        with contextlib.suppress(ValueError, OSError, AttributeError):
            limits.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    try:
        limit, usage = (Path("/sys/fs/cgroup", name).read_text().strip() for name in ("memory.max", "memory.current"))
        if limit != "max":
            limits.append(int(limit) - int(usage))
    except (OSError, ValueError):
        pass
    return min(limits) if limits else None


def check_fits(model: ModelConfig, batch_size: int, train_images: int, task: str = "row") -> None:
    """Refuses, before any run exists, a batch larger than the training split or a step that cannot fit in memory.

    Raises:
        ConfigError: naming the setting, the estimate and the memory available.
    """
    if batch_size > train_images:
        raise ConfigError(
            f"train.batch_size={batch_size} is more than the {train_images:,} training images: every batch would "
            f"repeat images; use at most {train_images}"
        )
    needed, parameters = memory_needed(model, batch_size, task)
    available = available_memory()
    if available is not None and needed > available:
        raise ConfigError(
            f"model.hidden_units={model.hidden_units} with train.batch_size={batch_size} needs at least {_bytes(needed)} "
            f"for a training step ({parameters:.3g} parameters with their gradients and Adam's moments, and the "
            f"batch's activations), but {_bytes(available)} of memory is available; lower model.hidden_units or train.batch_size"
        )


def _bytes(count: float) -> str:
    units = ("bytes", "KiB", "MiB", "GiB", "TiB")
    power = min(int(math.log(max(count, 1), 1024)), len(units) - 1)
    return f"{count / 1024**power:,.1f} {units[power]}"
