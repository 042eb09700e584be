"""The figures every run records: drawn from the run's own data, never another run's."""

from __future__ import annotations

import dataclasses

import pytest

from rnnbench import plots
from rnnbench.config import DataConfig
from rnnbench.data import load_dataset
from rnnbench.tasks import TASKS


@pytest.fixture(scope="module")
def train_split():
    return load_dataset(DataConfig(source="mnist5k")).train


def test_the_digit_grid_is_drawn_once_per_picture_and_always_shows_the_runs_own_digits(train_split, tmp_path, monkeypatch):
    """Every final run of a sweep records the same first ten digits: a worker draws them once and writes the same PNG
    for the next run; other digits, or another task's reading of them, are a new picture."""
    monkeypatch.setattr(plots, "_DRAWN_GRIDS", {})
    first = plots.digit_grid(train_split, TASKS["row"], tmp_path / "first.png").read_bytes()
    monkeypatch.setattr(plots, "_draw_digit_grid", lambda *arguments: pytest.fail("drawn again"))
    assert plots.digit_grid(train_split, TASKS["row"], tmp_path / "again.png").read_bytes() == first
    monkeypatch.undo()
    monkeypatch.setattr(plots, "_DRAWN_GRIDS", {})
    assert plots.digit_grid(train_split, TASKS["row"], tmp_path / "fresh.png").read_bytes() == first
    shifted = dataclasses.replace(train_split, images=train_split.images[1:], labels=train_split.labels[1:])
    assert plots.digit_grid(shifted, TASKS["row"], tmp_path / "shifted.png").read_bytes() != first
    assert plots.digit_grid(train_split, TASKS["pixel"], tmp_path / "pixel.png").read_bytes() != first


def test_a_split_hashes_its_contents_once_and_a_changed_copy_anew(train_split):
    digest = train_split.digest()
    assert train_split.digest() == digest
    changed = dataclasses.replace(train_split, labels=(train_split.labels + 1) % 10)
    assert changed.digest() != digest
