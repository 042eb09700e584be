"""The cell table: every entry is built, costed, drawn and accepted by the config; IRNN is what Le et al. describe;
and a new cell needs nothing but its entry."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rnnbench import cells, cost
from rnnbench.config import ModelConfig, load_config
from rnnbench.errors import ConfigError
from rnnbench.model import build_model
from rnnbench.sweep import estimate
from rnnbench.sweep.definition import load_sweep, plan
from tests.conftest import EXPERIMENTS


def test_irnn_starts_as_le_jaitly_and_hinton_describe():
    """ReLU units, the identity as recurrent matrix, input weights of standard deviation 0.001, zero biases."""
    model = build_model(ModelConfig(cell="irnn", hidden_units=64))
    layer = model.get_layer("recurrent")
    assert layer.cell.activation.__name__ == "relu"
    np.testing.assert_array_equal(layer.cell.recurrent_kernel.numpy(), np.eye(64))
    assert layer.cell.kernel.numpy().std() == pytest.approx(0.001, rel=0.1)
    assert not layer.cell.bias.numpy().any()


def test_irnn_carries_its_state_unchanged_through_the_steps_without_input():
    """With the identity start and no input, the state carries through all steps unchanged: the property IRNN is for."""
    model = build_model(ModelConfig(cell="irnn", hidden_units=8))
    layer = model.get_layer("recurrent")
    state = np.asarray(layer(np.zeros((1, 28, 28), np.float32), initial_state=[np.ones((1, 8), np.float32)]))
    np.testing.assert_allclose(state, np.ones((1, 8)), atol=1e-6)


def test_every_cell_is_costed_and_has_its_own_colour():
    colours = [cell.colour for cell in cells.CELLS.values()]
    assert len(set(colours)) == len(colours)
    for key in cells.CELLS:
        speed = cost.modelled_speed(key, 64, True, 50)
        assert speed.train_samples_per_second > 0 and speed.compile_seconds > 0


def test_a_new_cell_is_one_table_entry(monkeypatch):
    """An entry alone (no measured compile time either) is accepted by a run and a sweep, built, costed and coloured."""
    entry = cells.Cell("SoftRNN", "SimpleRNN", gates=1, colour="#123456", options={"activation": "softsign"})
    monkeypatch.setitem(cells.CELLS, "soft_rnn", entry)
    config = load_config(None, ["model.cell=soft_rnn", "model.hidden_units=8"])
    model = build_model(config.model)
    assert model.get_layer("recurrent").cell.activation.__name__ == "softsign"
    assert cells.compile_seconds("soft_rnn", unroll=True) == cells.DEFAULT_COMPILE_SECONDS
    definition = load_sweep(EXPERIMENTS / "sweep_tiny.yaml", ["grid.cells=[soft_rnn, gru]"])
    assert "soft_rnn-h16" in estimate.describe(definition, plan(definition), valid_images=400, workers=1)
    from rnnbench.report import figures

    assert figures.palette()["SoftRNN"] == "#123456"
    runs = pd.DataFrame({"cell": ["soft_rnn"], "unroll": [True], "hidden_units": [8]})
    assert figures.labelled(runs).model.tolist() == ["SoftRNN-8"]


def test_an_unknown_cell_is_refused_with_the_table():
    with pytest.raises(ConfigError, match="simple_rnn, lstm, gru, irnn"):
        load_config(None, ["model.cell=transformer"])
