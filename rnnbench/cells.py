"""The recurrent cells rnnbench compares: one table, read by the model, the config, the cost estimate and the figures.

    python -c "from rnnbench.cells import CELLS; print(list(CELLS))"

Adding a cell is one entry here (and its test in tests/test_cells.py): `model.cell=<key>` and
`grid.cells: [<key>, ...]` accept it, the model builds it, `--dry-run` costs it and the report draws
it in its own colour. Nothing here imports Keras: the entry names its layer, which `rnnbench.model`
looks up in `keras.layers` when it builds a model.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class Cell:
    name: str
    """How tables and figures name it, e.g. "LSTM"."""
    layer: str
    """Its Keras layer, a class of `keras.layers` taking (units, unroll=..., **options)."""
    gates: int
    """Weight matrices of (input + state) x units it multiplies per time step (its FLOP factor: LSTM 4, GRU 3)."""
    colour: str
    """Its colour in every figure of the report (seaborn's colour-blind palette)."""
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Further keyword arguments of the layer, as plain values (Keras resolves initializer names and configs)."""
    compile_seconds: tuple[float, float] | None = None
    """Measured compile time (looped, unrolled) on the estimate's reference machine; None: not measured yet."""
    time_step_seconds: float | None = None
    """Measured overhead of one more time step in a training step, beyond what its FLOPs cost (looped, batch 50,
    the same machine, pixel MNIST: 784 steps); None: not measured yet."""
    unrolls: bool = True
    """Whether `model.unroll` applies (it does to every Keras RNN layer)."""
    source: str = ""
    """Where the cell comes from, for the docs and the report."""


CELLS: dict[str, Cell] = {
    "simple_rnn": Cell("SimpleRNN", "SimpleRNN", gates=1, colour="#0173b2", compile_seconds=(0.8, 1.2), time_step_seconds=35e-6),
    "lstm": Cell(
        "LSTM",
        "LSTM",
        gates=4,
        colour="#de8f05",
        compile_seconds=(0.9, 3.1),
        time_step_seconds=93e-6,
        source="Hochreiter & Schmidhuber 1997",
    ),
    "gru": Cell(
        "GRU", "GRU", gates=3, colour="#029e73", compile_seconds=(1.1, 5.2), time_step_seconds=180e-6, source="Cho et al. 2014"
    ),
    "irnn": Cell(
        "IRNN",
        "SimpleRNN",
        gates=1,
        colour="#d55e00",
        time_step_seconds=35e-6,
        # As in Le, Jaitly & Hinton 2015 and the Keras mnist_irnn example: ReLU units, the recurrent
        # matrix starting at the identity, input weights drawn from N(0, 0.001^2), zero biases.
        options={
            "activation": "relu",
            "recurrent_initializer": "identity",
            "kernel_initializer": {"class_name": "RandomNormal", "config": {"stddev": 0.001}},
        },
        source="Le, Jaitly & Hinton 2015, arXiv:1504.00941",
    ),
}
"""`model.cell` / `grid.cells` key -> everything the code knows about the cell."""

DEFAULT_COMPILE_SECONDS = statistics.median(
    seconds for cell in CELLS.values() if cell.compile_seconds for seconds in cell.compile_seconds
)
"""For a cell not measured yet: the median of the measured compile times."""
DEFAULT_TIME_STEP_SECONDS = statistics.median(cell.time_step_seconds for cell in CELLS.values() if cell.time_step_seconds)
"""For a cell not measured yet: the median of the measured time-step overheads."""


def get(key: str) -> Cell:
    """The cell `key`; KeyError names the known ones (config validation refuses unknown keys before this)."""
    try:
        return CELLS[key]
    except KeyError:
        raise KeyError(f"unknown cell {key!r}; cells: {', '.join(CELLS)}") from None


def time_step_seconds(key: str) -> float:
    """The cell's measured overhead per time step, or the measured default for a cell that has none."""
    return CELLS[key].time_step_seconds or DEFAULT_TIME_STEP_SECONDS


def compile_seconds(key: str, unroll: bool) -> float:
    """The cell's measured compile time, or the measured default for a cell that has none."""
    measured = CELLS[key].compile_seconds
    return measured[int(unroll)] if measured else DEFAULT_COMPILE_SECONDS
