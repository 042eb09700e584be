"""The search space: which run settings a sweep tunes, and their distributions, declared once.

    rnnbench sweep experiments/sweep.yaml 'space.model.dropout={low: 0.0, high: 0.5}' --dry-run

A sweep file's `space:` section maps a run setting (a `model.` or `train.` key) to its range, or to a list of
choices (Optuna's float, int and categorical distributions):

    space:
      train.learning_rate: {low: 1.0e-4, high: 3.0e-2, log: true}    # the default space
      model.dropout: {low: 0.0, high: 0.5}                            # one more searched key
      train.clip_norm: [0.0, 1.0, 5.0]                                # a choice

Entries add to the default (the learning rate alone) or replace it; `key: null` removes one.
Everything else loops over the declaration: the worker's `suggest`, the final runs (which take
every tuned value of their study's best trial), the study's record, the dry run, the terminal
summary and the report.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from typing import Any

from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from rnnbench.config import Config
from rnnbench.config_files import convert
from rnnbench.errors import ConfigError

NOT_SEARCHABLE = {
    "model.cell": "grid.cells",
    "model.hidden_units": "grid.hidden_units",
    "model.unroll": "grid.unroll",
    "train.seed": "search.seed (trials) and final.seeds (final runs)",
    "train.backend": "train.backend",
}
"""Run settings the sweep sets otherwise, and where."""


@dataclasses.dataclass(frozen=True)
class Dimension:
    key: str
    """The run setting searched, e.g. train.learning_rate."""
    distribution: FloatDistribution | IntDistribution | CategoricalDistribution
    """Optuna's distribution of its values: a float or integer range (optionally log-uniform), or a set of choices."""

    @property
    def categorical(self) -> bool:
        return isinstance(self.distribution, CategoricalDistribution)

    @property
    def log(self) -> bool:
        """Sampled uniformly in log space (for scales such as a learning rate)."""
        return not self.categorical and bool(self.distribution.log)  # type: ignore[union-attr]

    def suggest(self, trial) -> Any:
        """The trial's value: sampled in a search trial, the enqueued one in a final run."""
        distribution = self.distribution
        if isinstance(distribution, CategoricalDistribution):
            return trial.suggest_categorical(self.key, distribution.choices)
        if isinstance(distribution, IntDistribution):
            return trial.suggest_int(self.key, distribution.low, distribution.high, log=distribution.log)
        return trial.suggest_float(self.key, distribution.low, distribution.high, log=distribution.log)

    def spec(self) -> dict[str, Any] | list[Any]:
        """As written in a sweep file (and stored with the sweep's studies): {low, high, log} or a list of choices."""
        if isinstance(self.distribution, CategoricalDistribution):
            return list(self.distribution.choices)
        return {"low": self.distribution.low, "high": self.distribution.high, "log": self.distribution.log}

    def describe(self) -> str:
        """How the sweep's and the studies' MLflow runs record it: "train.learning_rate 0.0001 to 0.03, log-uniform",
        or "train.clip_norm one of 0, 1"."""
        distribution = self.distribution
        if isinstance(distribution, CategoricalDistribution):
            return f"{self.key} {ONE_OF}{', '.join(_shown(choice) for choice in distribution.choices)}"
        return f"{self.key} {distribution.low:g} to {distribution.high:g}{LOG_UNIFORM if distribution.log else ''}"


ONE_OF = "one of "
LOG_UNIFORM = ", log-uniform"


def described_as_log(description: str) -> bool:
    """Whether a recorded `describe()` is of a dimension searched on a log scale (what the report draws it on)."""
    return description.endswith(LOG_UNIFORM)


def _shown(choice: Any) -> str:
    return str(choice).lower() if isinstance(choice, bool) else str(choice)


DEFAULT_SPACE = {"train.learning_rate": {"low": 1e-4, "high": 3e-2, "log": True}}


def parse(entries: Mapping[str, Any], start_from_default: bool = True) -> tuple[Dimension, ...]:
    """The dimensions of `entries` (`key` -> {low, high, log}, a list of choices, or None to remove), on top of the
    default.

    Raises:
        ConfigError: a key that is not a run setting, one the sweep sets otherwise, a bad range or a bad choice.
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
    """The `model.` and `train.` settings a sweep may search -> their types (int, float, str or bool)."""
    sections = typing.get_type_hints(Config)
    return {
        f"{section}.{name}": kind
        for section in ("model", "train")
        for name, kind in typing.get_type_hints(sections[section]).items()
        if kind in (int, float, str, bool) and f"{section}.{name}" not in NOT_SEARCHABLE
    }


def _dimension(key: str, spec: Any) -> Dimension:
    if key in NOT_SEARCHABLE:
        raise ConfigError(f"space.{key}: {key} is set by the sweep through {NOT_SEARCHABLE[key]}; it cannot be searched")
    searchable = _searchable()
    if key not in searchable:
        raise ConfigError(f"space.{key}: not a run setting a sweep can search; searchable keys: {', '.join(searchable)}")
    kind = searchable[key]
    if isinstance(spec, list | tuple):
        return _categorical(key, list(spec), kind)
    if kind not in (int, float):
        raise ConfigError(f"space.{key}: received {spec!r}, expected a list of choices ({key} is not a number)")
    if not isinstance(spec, Mapping) or not {"low", "high"} <= set(spec) or set(spec) - {"low", "high", "log"}:
        raise ConfigError(
            f"space.{key}: received {spec!r}, expected {{low: L, high: H}} with an optional log: true, or a list of choices"
        )
    low, high = (convert(f"space.{key}.{bound}", spec[bound], kind) for bound in ("low", "high"))
    log = convert(f"space.{key}.log", spec.get("log", False), bool)
    if not (math.isfinite(low) and math.isfinite(high) and low < high) or (log and low <= 0):
        raise ConfigError(
            f"space.{key}: received low={low}, high={high}, expected low < high" + (" and low > 0 (log)" if log else "")
        )
    for bound in (low, high):  # each end must be a valid setting: a dropout of 1 is refused here, not in a worker
        Config().with_values({key: bound})
    if kind is int:
        return Dimension(key, IntDistribution(int(low), int(high), log=log))
    return Dimension(key, FloatDistribution(float(low), float(high), log=log))


def _categorical(key: str, choices: list[Any], kind: type) -> Dimension:
    """A choice among values of the setting's own type (`[lstm, gru]`, `[0.0, 1.0]`), each a valid setting."""
    values = [convert(f"space.{key}", choice, kind) for choice in choices]
    if len(values) < 2 or len(set(values)) != len(values):
        raise ConfigError(f"space.{key}: received {choices!r}, expected at least two different choices")
    for value in values:  # each choice must be a valid setting, checked here rather than in a worker
        Config().with_values({key: value})
    return Dimension(key, CategoricalDistribution(values))
