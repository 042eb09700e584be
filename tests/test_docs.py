"""The docs: the configuration reference is generated from the code and covers every key; the README stays short."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys

import pytest
from conftest import ROOT

from rnnbench.config import Config
from rnnbench.sweep.definition import SweepDefinition


def hook():
    spec = importlib.util.spec_from_file_location("config_reference", ROOT / "docs" / "hooks" / "config_reference.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_configuration_reference_lists_every_key_with_its_default_and_docstring():
    reference = hook()
    page = reference.on_page_markdown((ROOT / "docs" / "reference" / "configuration.md").read_text())
    assert "<!--" not in page  # both markers filled
    for key in Config().flat():
        assert f"| `{key}` |" in page
    assert "| `train.learning_rate` | `0.001` | Adam's learning rate. |" in page
    assert "| `grid.unroll` | `[false, true]` |" in page and "| `final.seeds` | `3` |" in page


@dataclasses.dataclass(frozen=True)
class Section:
    documented: int = 1
    """Has one."""
    undocumented: int = 2


@dataclasses.dataclass(frozen=True)
class Root:
    section: Section = dataclasses.field(default_factory=Section)


def test_a_field_without_a_docstring_stops_the_build_naming_it():
    with pytest.raises(ValueError, match="Section.undocumented has no docstring"):
        hook().rows(Root)


def test_the_sweep_reference_holds_only_the_sweep_files_own_sections():
    rows = hook().rows(SweepDefinition, skip=("data", "train"))
    assert {key.split(".")[0] for key, _, _ in rows} == {"sweep", "grid", "search", "final", "slurm"}


def test_the_readme_is_a_front_page():
    assert (ROOT / "README.md").stat().st_size <= 10_000
