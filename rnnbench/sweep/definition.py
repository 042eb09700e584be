"""Sweep definitions and their plan: which studies, trials and final runs a sweep consists of.

    rnnbench sweep experiments/sweep.yaml --dry-run        # prints the plan of this file

A sweep file has the sections of a run file for the shared settings (`data:`, `train:`) and
four of its own (`sweep:`, `grid:`, `search:`, `final:`), each listing only what differs from
the defaults below. The method, in two stages:

1. search: one Optuna study per (cell, hidden size) tunes the searched settings (`space:`, by
   default the learning rate; see `rnnbench.sweep.space`) on the validation split. `unroll` changes speed and
   memory, not the function computed, so it is not searched: trials train with `search.unroll`.
2. final: every model of the grid (cell, hidden size) is trained with every tuned value of its study's
   best trial, with each of `final.seeds` seeds, and tested on the test split, the only stage that touches
   it. It is trained in one `grid.unroll` setting, the faster one; each other setting gets one timing run,
   which also checks that the settings compute the same function (`rnnbench.sweep.unroll`). With
   `final.reference`, the seed tutorial itself (SimpleRNN-50, Adam 1e-3, 5,000 steps) is trained and
   tested with the same seeds on the same data: the yardstick.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from rnnbench.config import (
    CELLS,
    SEED_MODEL,
    SEED_TRAIN,
    Config,
    DataConfig,
    ModelConfig,
    TrackingConfig,
    TrainConfig,
    _invalid,
    check_name,
)
from rnnbench.config_files import RawText, build, flat, from_command_line, read_values
from rnnbench.errors import ConfigError
from rnnbench.sweep import space
from rnnbench.sweep.slurm_settings import SlurmConfig
from rnnbench.sweep.space import Dimension
from rnnbench.tasks import LONGEST_UNROLL, TASKS

PRUNERS = ("median", "successive_halving", "none")


@dataclasses.dataclass(frozen=True)
class SweepSection:
    name: str = "rnnbench-sweep"
    """The sweep's MLflow experiment, and the prefix of its Optuna studies."""

    def __post_init__(self):
        if not self.name.strip() or ":" in self.name:
            _invalid("sweep.name", self.name, "a non-empty name without ':'")
        check_name("sweep.name", self.name)


@dataclasses.dataclass(frozen=True)
class GridConfig:
    cells: tuple[str, ...] = ("simple_rnn", "lstm", "gru")
    """Recurrent layers compared."""
    hidden_units: tuple[int, ...] = (32, 64, 128)
    """Sizes of the recurrent layer compared."""
    unroll: tuple[bool, ...] = (False, True)
    """Unroll settings timed in the final stage (speed and memory; the same function, which the sweep checks)."""

    def __post_init__(self):
        for key, values in (("cells", self.cells), ("hidden_units", self.hidden_units), ("unroll", self.unroll)):
            if not values:
                _invalid(f"grid.{key}", [], "at least one value")
            if len(set(values)) != len(values):
                _invalid(f"grid.{key}", list(values), "values without repeats")
        for cell in self.cells:
            if cell not in CELLS:
                _invalid("grid.cells", cell, f"one of {', '.join(CELLS)}")
        for units in self.hidden_units:
            if units <= 0:
                _invalid("grid.hidden_units", units, "positive integers")


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    trials: int = 8
    """Trials per study (per cell and hidden size)."""
    startup_trials: int = 3
    """Trials sampled at random before TPE starts modelling the results."""
    sampler_seed: int = 0
    """Seed of the TPE sampler: the same sweep proposes the same learning rates."""
    pruner: str = "median"
    """median, successive_halving or none; fed val/accuracy at every evaluation."""
    pruner_warmup_evaluations: int = 2
    """Evaluations a trial always gets before the median pruner may stop it."""
    unroll: bool = False
    """The unroll setting trials train with: it does not change accuracy, and looped compiles faster."""
    seed: int = 0
    """train.seed of every trial, so that trials differ only by their learning rate."""

    def __post_init__(self):
        if self.trials <= 0:
            _invalid("search.trials", self.trials, "a positive integer")
        if self.startup_trials < 0:
            _invalid("search.startup_trials", self.startup_trials, "an integer >= 0")
        if self.pruner not in PRUNERS:
            _invalid("search.pruner", self.pruner, f"one of {', '.join(PRUNERS)}")
        if self.pruner_warmup_evaluations < 0:
            _invalid("search.pruner_warmup_evaluations", self.pruner_warmup_evaluations, "an integer >= 0")


@dataclasses.dataclass(frozen=True)
class FinalConfig:
    seeds: int = 3
    """Seeds (train.seed 0, 1, ...) each variant is trained with at its tuned settings: at least 3, so that the
    report can estimate a spread over seeds and test differences between variants."""
    reference: bool = True
    """Also train the seed tutorial's run (experiments/seed_simple_rnn.yaml) with each seed, as the reference."""
    train_every_unroll: bool = False
    """Train every grid.unroll setting in full with every seed. By default a model is trained in full only in its faster
    setting, and each other setting gets one timing run of train.eval_every_steps steps (rnnbench.sweep.unroll)."""

    def __post_init__(self):
        if self.seeds <= 0:
            _invalid("final.seeds", self.seeds, "a positive integer")


@dataclasses.dataclass(frozen=True)
class SweepDefinition:
    sweep: SweepSection = dataclasses.field(default_factory=SweepSection)
    grid: GridConfig = dataclasses.field(default_factory=GridConfig)
    search: SearchConfig = dataclasses.field(default_factory=SearchConfig)
    final: FinalConfig = dataclasses.field(default_factory=FinalConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    """Shared run settings; the seed and the searched ones are set by the sweep."""
    space: tuple[Dimension, ...] = space.parse({})
    """The searched settings and their ranges (the `space:` section; see rnnbench.sweep.space)."""
    slurm: SlurmConfig = dataclasses.field(default_factory=SlurmConfig)
    """How `--slurm` submits the sweep; not stored with it (see `values`)."""

    def set_by_the_sweep(self) -> dict[str, str]:
        """Run settings the sweep sets for each run -> the sweep keys that set them."""
        searched = {dimension.key: f"space.{dimension.key}" for dimension in self.space}
        return {**searched, "train.seed": space.NOT_SEARCHABLE["train.seed"]}

    def values(self) -> dict:
        """Every setting as flat `section.key` values, `space.<key>` ranges included: what is stored with the
        sweep's studies and logged as the sweep run's params. The slurm: section is left out: how a sweep is submitted
        is not what it is, and a re-submission may change it."""
        settings = {key: value for key, value in flat(self).items() if not key.startswith("slurm.")}
        return {**settings, **{f"space.{dimension.key}": dimension.spec() for dimension in self.space}}


def load_sweep(path: str | Path | None, overrides: Sequence[str] = ()) -> SweepDefinition:
    """The sweep at `path` with `key=value` overrides, fully checked before any work.

    Raises:
        ConfigError: unknown keys, wrong types, empty grids, an inverted range, zero trials...
    """
    values = read_values(path, overrides)
    for old in ("search.learning_rate_min", "search.learning_rate_max"):
        if old in values:
            raise ConfigError(
                f"{old} is now part of the search space: write 'space:' then "
                "'  train.learning_rate: {low: 1.0e-4, high: 3.0e-2, log: true}' (see experiments/sweep.yaml)"
            )
    entries = {
        key.removeprefix("space."): from_command_line(key, value) if isinstance(value, RawText) else value
        for key, value in values.items()
        if key.startswith("space.")
    }
    dimensions = space.parse(entries)
    definition = build(SweepDefinition, {key: value for key, value in values.items() if not key.startswith("space.")})
    definition = dataclasses.replace(definition, space=dimensions)
    for key, instead in definition.set_by_the_sweep().items():
        if key in values:
            raise ConfigError(f"{key} is set by the sweep for each run; use {instead} instead")
    _check_unroll(definition)
    return definition


def _check_unroll(definition: SweepDefinition) -> None:
    """A long task refuses unrolled models here, before any run, not in every worker."""
    task = TASKS[definition.data.task]
    if task.steps <= LONGEST_UNROLL:
        return
    if True in definition.grid.unroll or definition.search.unroll:
        raise ConfigError(
            f"data.task={definition.data.task} has {task.steps} steps, too many to unroll (more than "
            f"{LONGEST_UNROLL}); set grid.unroll: [false] (and search.unroll: false)"
        )
    if definition.final.reference:
        raise ConfigError(
            f"final.reference: the seed tutorial is an unrolled SimpleRNN, which data.task={definition.data.task} "
            f"({task.steps} steps) cannot unroll; set final.reference: false"
        )


@dataclasses.dataclass(frozen=True, order=True)
class Study:
    """One learning-rate search: a cell at one hidden size."""

    cell: str
    hidden_units: int

    @property
    def key(self) -> str:
        return f"{self.cell}-h{self.hidden_units}"


@dataclasses.dataclass(frozen=True, order=True)
class FinalRun:
    """One run of the final stage: a variant of the grid with one seed, trained in full and tested, or (`timing`) only
    timed over its first evaluation window."""

    cell: str
    hidden_units: int
    unroll: bool
    seed: int
    timing: bool = False

    @property
    def study(self) -> Study:
        return Study(self.cell, self.hidden_units)

    @property
    def variant(self) -> str:
        return ModelConfig(self.cell, self.hidden_units, self.unroll).variant


@dataclasses.dataclass(frozen=True)
class Plan:
    studies: tuple[Study, ...]
    trials_per_study: int
    unroll: tuple[bool, ...]
    """The grid's unroll settings, in its order."""
    seeds: int
    every_unroll: bool = False
    """final.train_every_unroll: every setting trained in full, no timing runs."""
    reference_seeds: tuple[int, ...] = ()
    """Seeds of the seed tutorial's reference runs (none without `final.reference`)."""

    @property
    def trials(self) -> int:
        return len(self.studies) * self.trials_per_study

    @property
    def final_runs(self) -> tuple[FinalRun, ...]:
        """The final stage as planned, before any study has chosen its setting (as if each trained the grid's first) or
        found its settings to differ: the count is what the sweep plans."""
        return tuple(run for study in self.studies for run in self.finals_of(study))

    @property
    def runs(self) -> int:
        """Every run the sweep plans: trials, final and timing runs, and reference runs."""
        return self.trials + len(self.final_runs) + len(self.reference_seeds)

    def finals_of(self, study: Study, trained: bool | None = None, differ: bool = False) -> tuple[FinalRun, ...]:
        """The study's final stage: its model trained in full with each seed in the setting `trained` (None: the grid's
        first), and one timing run of each other setting; every setting in full where `differ` (the check found the
        settings to compute different functions, or could not tell) or with final.train_every_unroll.

        The order is the queue's: the trained setting's seed 0 and the timing runs come first, so that the check
        (seed 0 in each setting) is decided early."""
        trained = self.unroll[0] if trained is None else trained
        others = [unroll for unroll in self.unroll if unroll != trained]
        full = [trained, *others] if differ or self.every_unroll else [trained]

        def run(unroll: bool, seed: int, timing: bool = False) -> FinalRun:
            return FinalRun(study.cell, study.hidden_units, unroll, seed, timing)

        first = [run(unroll, 0) for unroll in full]
        timing = [] if self.every_unroll else [run(unroll, 0, timing=True) for unroll in others]
        rest = [run(unroll, seed) for unroll in full for seed in range(1, self.seeds)]
        return tuple(first[:1] + timing + first[1:] + rest)


def plan(definition: SweepDefinition) -> Plan:
    grid = definition.grid
    studies = tuple(Study(cell, units) for cell in grid.cells for units in grid.hidden_units)
    references = tuple(range(definition.final.seeds)) if definition.final.reference else ()
    return Plan(
        studies, definition.search.trials, grid.unroll, definition.final.seeds, definition.final.train_every_unroll, references
    )


def run_config(definition: SweepDefinition, *, cell: str, hidden_units: int, unroll: bool, tuned: dict, seed: int) -> Config:
    """The run configuration of one trial or final run: the sweep's shared settings, its variant, its seed and
    its values of the searched settings (`tuned`, e.g. {"train.learning_rate": 0.0012})."""
    return Config(
        data=definition.data,
        model=ModelConfig(cell=cell, hidden_units=hidden_units, unroll=unroll),
        train=dataclasses.replace(definition.train, seed=seed),
        tracking=TrackingConfig(experiment=definition.sweep.name),
    ).with_values(tuned)


def reference_config(definition: SweepDefinition, seed: int) -> Config:
    """The seed tutorial's run on the sweep's data and backend, with one of the final seeds."""
    return Config(
        data=definition.data,
        model=SEED_MODEL,
        train=dataclasses.replace(SEED_TRAIN, seed=seed, backend=definition.train.backend),
        tracking=TrackingConfig(experiment=definition.sweep.name),
    )


def stored_values(values: dict) -> dict:
    """Values stored with a sweep's studies, completed with what sweeps stored before a setting existed: such a
    sweep trained every unroll setting in full (final.train_every_unroll)."""
    return {"final.train_every_unroll": True, **values}


def build_definition(values: dict) -> SweepDefinition:
    """A definition from its flat `section.key` values, as stored with the sweep's studies (`values()`)."""
    values = stored_values(values)
    entries = {key.removeprefix("space."): value for key, value in values.items() if key.startswith("space.")}
    sections = {
        key: list(value) if isinstance(value, tuple) else value for key, value in values.items() if not key.startswith("space.")
    }
    return dataclasses.replace(build(SweepDefinition, sections), space=space.parse(entries, start_from_default=False))
