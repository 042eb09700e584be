"""The model: one recurrent layer reads the image row by row, then Dense(10) + softmax.

    python -c "from rnnbench.model import build_model; from rnnbench.config import ModelConfig; build_model(ModelConfig(cell='lstm')).summary()"

Pure: builds Keras objects from a `ModelConfig`, knows nothing of training or tracking.
"""

from __future__ import annotations

import keras

from rnnbench.config import ModelConfig
from rnnbench.data import CLASSES, ROW_PIXELS, ROWS

RECURRENT_LAYERS = {
    "simple_rnn": keras.layers.SimpleRNN,
    "lstm": keras.layers.LSTM,
    "gru": keras.layers.GRU,
}


def build_model(config: ModelConfig) -> keras.Model:
    """Builds the classifier for `config`.

    Returns:
        A Keras model mapping images (batch, 28, 28) to class probabilities (batch, 10).
    """
    recurrent = RECURRENT_LAYERS[config.cell](config.hidden_units, unroll=config.unroll, name="recurrent")
    return keras.Sequential(
        [
            keras.Input(shape=(ROWS, ROW_PIXELS), name="rows"),
            recurrent,
            keras.layers.Dense(CLASSES, activation="softmax", name="classifier"),
        ],
        name=f"{config.cell}_{config.hidden_units}",
    )


def summary_text(model: keras.Model) -> str:
    """The model summary as plain text, for the run's artifacts."""
    lines = []
    model.summary(print_fn=lambda line, line_break=True: lines.append(line))
    return "\n".join(lines) + "\n"
