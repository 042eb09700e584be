"""The task table: the row task is the seed's reading, and a new task needs nothing but its entry."""

from __future__ import annotations

import numpy as np
import pytest

from rnnbench import cost, tasks
from rnnbench.config import ModelConfig, load_config
from rnnbench.errors import ConfigError
from rnnbench.model import build_model
from rnnbench.tasks import Task


def test_the_row_task_feeds_the_rows_unchanged():
    """Row by row is the seed tutorial's input: the model adds no layer before the recurrent one."""
    model = build_model(ModelConfig(hidden_units=8), "row")
    assert model.layers[0].name == "recurrent"
    assert cost.flops_per_sample("lstm", 128, "row") == 3 * 28 * 2 * 4 * 128 * (28 + 128)


def test_a_new_task_is_one_table_entry(monkeypatch):
    """Two half-rows per step: the model reads 56 steps of 14 pixels, the cost follows, the config accepts it."""
    monkeypatch.setitem(tasks.TASKS, "half_rows", Task(steps=56, features=14, description="by half-rows"))
    config = load_config(None, ["data.task=half_rows", "model.hidden_units=8"])
    model = build_model(config.model, config.data.task)
    assert model.get_layer("sequence").output.shape == (None, 56, 14)
    images = np.random.default_rng(0).random((3, 28, 28), dtype=np.float32)
    assert np.asarray(model(images)).shape == (3, 10)  # a saved model still takes images
    assert cost.flops_per_sample("simple_rnn", 8, "half_rows") == 3 * 56 * 2 * 1 * 8 * (14 + 8)
    assert cost.memory_needed(config.model, 50, "half_rows")[0] > cost.memory_needed(config.model, 50, "row")[0]


def test_a_task_must_read_every_pixel_and_be_known():
    with pytest.raises(ValueError, match="784"):
        Task(steps=28, features=27, description="missing a column")
    with pytest.raises(ConfigError, match="data.task.*row"):
        load_config(None, ["data.task=columns"])
