"""The model: the task's input layers turn images into sequences, one recurrent layer reads them, then Dense(10) + softmax.

    python -c "from rnnbench.model import *; from rnnbench.config import *; build_model(ModelConfig(cell='lstm')).summary()"

Pure: builds Keras objects from a `ModelConfig` and a task, knows nothing of training or tracking.
The cell's layer and options come from `rnnbench.cells`, the input's shape from `rnnbench.tasks`.
"""

from __future__ import annotations

import keras

from rnnbench import cells, tasks
from rnnbench.config import ModelConfig
from rnnbench.data import CLASSES


def build_model(config: ModelConfig, task: str = "row", permutation_seed: int = 0) -> keras.Model:
    """Builds the classifier for `config` reading images as `task` says (a permuted task in the order that
    `permutation_seed` draws).

    Returns:
        A Keras model mapping images (batch, 28, 28) to class probabilities (batch, 10).
    """
    cell = cells.get(config.cell)
    options: dict[str, bool | float] = {"unroll": config.unroll} if cell.unrolls else {}
    if config.dropout:
        options["dropout"] = config.dropout
    recurrent = getattr(keras.layers, cell.layer)(config.hidden_units, name="recurrent", **options, **cell.options)
    model = keras.Sequential(
        [
            keras.Input(shape=(tasks.IMAGE_SIDE, tasks.IMAGE_SIDE), name="rows"),
            *tasks.TASKS[task].input_layers(),
            recurrent,
            keras.layers.Dense(CLASSES, activation="softmax", name="classifier"),
        ],
        name=f"{config.cell}_{config.hidden_units}",
    )
    if tasks.TASKS[task].permuted:
        tasks.set_permutation(model, permutation_seed)
    return model


def summary_text(model: keras.Model) -> str:
    """The model summary as plain text, for the run's artifacts."""
    lines = []
    model.summary(print_fn=lambda line, line_break=True: lines.append(line))
    return "\n".join(lines) + "\n"
