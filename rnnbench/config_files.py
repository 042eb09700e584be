"""Reading settings: YAML files and `key=value` overrides into checked frozen dataclasses.

    rnnbench show-config experiments/seed_lstm.yaml model.hidden_units=128

Shared by run configs (`rnnbench.config`) and sweep files (`rnnbench.sweep.definition`): one loader,
which refuses unknown keys (suggesting the closest), wrong types, duplicate keys and text that is not
UTF-8, naming the key and what was expected.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from rnnbench.errors import ConfigError


def read_values(path: str | Path | None, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The dotted `section.key` values of a YAML file, then of `key=value` overrides, unchecked."""
    values = flatten_sections(read_yaml(path), origin=str(path)) if path else {}
    values.update(parse_overrides(overrides))
    return values


def flat(sections) -> dict[str, Any]:
    """A sectioned dataclass as `section.key` -> value (lists for tuples); a field that is not a section (a
    sweep's `space`) is left to its owner."""
    return {
        f"{field.name}.{key}": list(value) if isinstance(value, tuple) else value
        for field in dataclasses.fields(sections)
        if dataclasses.is_dataclass(section := getattr(sections, field.name)) and not isinstance(section, type)
        for key, value in dataclasses.asdict(section).items()
    }


def to_yaml(sections) -> str:
    nested: dict[str, dict[str, Any]] = {}
    for dotted, value in flat(sections).items():
        section, _, key = dotted.partition(".")
        nested.setdefault(section, {})[key] = value
    return yaml.safe_dump(nested, sort_keys=False)


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a directory, not a config file; give a YAML file such as experiments/seed_lstm.yaml")
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


def from_command_line(key: str, text: RawText, empty: Any = None) -> Any:
    """A value typed as `key=text`, read as YAML (`[lstm, gru]`, `{low: 0, high: 0.5}`, `3e-3`); `empty` for no text.

    Raises:
        ConfigError: the text is not valid YAML (an unclosed bracket, say), naming the key.
    """
    if not text:
        return empty
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or str(error).strip().splitlines()[0]
        raise ConfigError(
            f"{key}: received {str(text)!r}, not valid YAML ({problem}); close its brackets and "
            f"quote the whole key=value for the shell, e.g. '{key}=...'"
        ) from None


def build(root: type, values: dict[str, Any]):
    """Builds the frozen dataclass `root` from dotted `section.key` values, checking every key and type."""
    section_types = typing.get_type_hints(root)
    sections = [field.name for field in dataclasses.fields(root) if dataclasses.is_dataclass(section_types[field.name])]
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
        grouped[section][key] = convert(dotted, value, field_types[key])
    return root(**{name: section_types[name](**entries) for name, entries in grouped.items()})


def convert(key: str, value: Any, expected: type) -> Any:
    """Converts a YAML or command-line value to the field's type, or says what was expected."""
    if typing.get_origin(expected) is tuple:
        return _convert_list(key, value, typing.get_args(expected)[0])
    if isinstance(value, RawText):
        if expected is str:
            return str(value)
        value = from_command_line(key, value)
    if expected is float and isinstance(value, str):
        # YAML 1.1 reads 3e-3 (no dot) as text, in files and on the command line; people mean a number
        with contextlib.suppress(ValueError):
            value = float(value)
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
        parsed = from_command_line(key, value, empty=[])
        items = parsed if isinstance(parsed, list) else [RawText(part.strip()) for part in value.split(",")]
    elif isinstance(value, list):
        items = value
    else:
        names = {bool: "true/false values", int: "integers", float: "numbers", str: "names"}
        raise ConfigError(f"{key}: received {value!r}, expected a list of {names[item_type]}, e.g. [{_EXAMPLES[item_type]}]")
    return tuple(convert(f"{key}[{index}]", item, item_type) for index, item in enumerate(items))


_EXAMPLES = {bool: "false, true", int: "32, 64", float: "0.1, 0.2", str: "lstm, gru"}


def _did_you_mean(name: str, choices, section: str = "") -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    if not close:
        return ""
    return f" (did you mean '{section + '.' if section else ''}{close[0]}'?)"
