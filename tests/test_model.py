"""Unit tests of the model builder: every cell, looped and unrolled."""

from __future__ import annotations

import numpy as np
import pytest

from rnnbench import cells
from rnnbench.config import CELLS, ModelConfig
from rnnbench.model import build_model


@pytest.mark.parametrize("unroll", [False, True], ids=["looped", "unrolled"])
@pytest.mark.parametrize("cell", CELLS)
def test_model_maps_image_rows_to_class_probabilities(cell, unroll):
    model = build_model(ModelConfig(cell=cell, hidden_units=12, unroll=unroll))
    images = np.random.default_rng(0).random((5, 28, 28), dtype=np.float32)
    probabilities = np.asarray(model(images))
    assert probabilities.shape == (5, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_unrolled_and_looped_compute_the_same_function(cell):
    looped = build_model(ModelConfig(cell=cell, hidden_units=16, unroll=False))
    unrolled = build_model(ModelConfig(cell=cell, hidden_units=16, unroll=True))
    unrolled.set_weights(looped.get_weights())
    images = np.random.default_rng(1).random((8, 28, 28), dtype=np.float32)
    np.testing.assert_allclose(np.asarray(unrolled(images)), np.asarray(looped(images)), atol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_parameter_count_follows_the_cell_equations(cell):
    hidden = 20
    model = build_model(ModelConfig(cell=cell, hidden_units=hidden))
    gates = cells.get(cell).gates  # the cell table's FLOP factor, checked against the layer Keras builds
    recurrent = gates * (hidden * (28 + hidden) + hidden)
    if cell == "gru":  # Keras' GRU defaults to reset_after=True: a second bias per gate
        recurrent += gates * hidden
    assert model.count_params() == recurrent + hidden * 10 + 10
