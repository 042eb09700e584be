"""The search space: which run settings a sweep tunes, and their distributions, declared once.

    rnnbench sweep experiments/sweep.yaml 'space.model.dropout={low: 0.0, high: 0.5}' --dry-run

A sweep file's `space:` section maps a run setting (a `model.` or `train.` key) to its range:

    space:
      train.learning_rate: {low: 1.0e-4, high: 3.0e-2, log: true}    # the default space
      model.dropout: {low: 0.0, high: 0.5}                            # one more searched key

Entries add to the default (the learning rate alone) or replace it; `key: null` removes one.
Everything else loops over the declaration: the worker's `suggest`, the final runs (which take
every tuned value of their study's best trial), the study's record, the dry run, the terminal
summary and the report.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any, Mapping

from rnnbench.config import Config
from rnnbench.config_files import convert
from rnnbench.errors import ConfigError

NOT_SEARCHABLE = {
    "model.cell": "grid.cells", "model.hidden_units": "grid.hidden_units", "model.unroll": "grid.unroll",
    "train.seed": "search.seed (trials) and final.seeds (final runs)", "train.backend": "train.backend",
}
"""Run settings the sweep sets otherwise, and where."""


@dataclasses.dataclass(frozen=True)
class Dimension:
    key: str
    """The run setting searched, e.g. train.learning_rate."""
    low: float
    high: float
    log: bool = False
    """Sample uniformly in log space (for scales such as a learning rate)."""
    integer: bool = False
    """An integer setting (e.g. train.batch_size): Optuna's suggest_int."""

    def suggest(self, trial) -> float | int:
        """The trial's value: sampled in a search trial, the enqueued one in a final run."""
        if self.integer:
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, log=self.log)

    def spec(self) -> dict[str, Any]:
        """As written in a sweep file (and stored with the sweep's studies)."""
        return {"low": self.low, "high": self.high, "log": self.log}

    def describe(self) -> str:
        """How the sweep's and the studies' MLflow runs record it, e.g. "train.learning_rate 0.0001 to 0.03, log-uniform"."""
        return f"{self.key} {self.low:g} to {self.high:g}{LOG_UNIFORM if self.log else ''}"


LOG_UNIFORM = ", log-uniform"


def described_as_log(description: str) -> bool:
    """Whether a recorded `describe()` is of a dimension searched on a log scale (what the report draws it on)."""
    return description.endswith(LOG_UNIFORM)


DEFAULT_SPACE = {"train.learning_rate": {"low": 1e-4, "high": 3e-2, "log": True}}


def parse(entries: Mapping[str, Any], start_from_default: bool = True) -> tuple[Dimension, ...]:
    """The dimensions of `entries` (`key` -> {low, high, log} or None to remove), on top of the default.

    Raises:
        ConfigError: a key that is not a numeric run setting, one the sweep sets otherwise, or a bad range.
    """
    specs = dict(DEFAULT_SPACE) if start_from_default else {}
    specs.update(entries)
    dimensions = tuple(_dimension(key, spec) for key, spec in specs.items() if spec is not None)
    if not dimensions:
        raise ConfigError("space: nothing is searched; keep at least one key (e.g. train.learning_rate)")
    return dimensions


def values_of(dimensions: tuple[Dimension, ...], params: Mapping[str, Any]) -> dict[str, Any]:
    """The searched settings of a trial's params (`train.learning_rate` -> 0.0012, ...)."""
    return {dimension.key: params[dimension.key] for dimension in dimensions}


def short(key: str) -> str:
    """train.learning_rate -> learning_rate: how tables head a searched key."""
    return key.partition(".")[2]


def _searchable() -> dict[str, type]:
    """The numeric `model.` and `train.` settings a sweep may search -> their types (int or float)."""
    sections = typing.get_type_hints(Config)
    return {
        f"{section}.{name}": kind
        for section in ("model", "train") for name, kind in typing.get_type_hints(sections[section]).items()
        if kind in (int, float) and f"{section}.{name}" not in NOT_SEARCHABLE
    }


def _dimension(key: str, spec: Any) -> Dimension:
    if key in NOT_SEARCHABLE:
        raise ConfigError(f"space.{key}: {key} is set by the sweep through {NOT_SEARCHABLE[key]}; it cannot be searched")
    searchable = _searchable()
    if key not in searchable:
        raise ConfigError(f"space.{key}: not a numeric run setting; searchable keys: {', '.join(searchable)}")
    if not isinstance(spec, Mapping) or not {"low", "high"} <= set(spec) or set(spec) - {"low", "high", "log"}:
        raise ConfigError(f"space.{key}: received {spec!r}, expected {{low: L, high: H}} with an optional log: true")
    kind = searchable[key]
    low, high = (convert(f"space.{key}.{bound}", spec[bound], kind) for bound in ("low", "high"))
    log = convert(f"space.{key}.log", spec.get("log", False), bool)
    if not (math.isfinite(low) and math.isfinite(high) and low < high) or (log and low <= 0):
        raise ConfigError(f"space.{key}: received low={low}, high={high}, expected low < high" + (" and low > 0 (log)" if log else ""))
    dimension = Dimension(key, low, high, log, integer=kind is int)
    for bound in (low, high):  # each end must be a valid setting: a dropout of 1 is refused here, not in a worker
        Config().with_values({key: bound})
    return dimension
