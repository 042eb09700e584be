"""Tasks: how a 28x28 image becomes the sequence the recurrent layer reads. One table.

    python -c "from rnnbench.tasks import TASKS; print(TASKS)"

The data stays images (N, 28, 28) everywhere; the model's first layers turn them into the task's
sequence, so a saved model takes images whatever its task. The model's input layers, the FLOP and
memory model of the cost estimate and the digit figure's caption all follow from the entry. Adding a
task is one entry here (and its test in tests/test_tasks.py).
"""

from __future__ import annotations

import dataclasses

IMAGE_SIDE = 28
"""MNIST-like images are 28x28 pixels."""


@dataclasses.dataclass(frozen=True)
class Task:
    steps: int
    """Time steps per image."""
    features: int
    """Values read at each step (steps x features = the image's 784 pixels)."""
    description: str
    """How the image is read, for figures and the README."""

    def __post_init__(self):
        if self.steps * self.features != IMAGE_SIDE * IMAGE_SIDE:
            raise ValueError(f"a task reads all {IMAGE_SIDE * IMAGE_SIDE} pixels; received {self.steps} x {self.features}")

    def input_layers(self) -> list:
        """Keras layers from images (batch, 28, 28) to sequences (batch, steps, features); none for row by row."""
        if (self.steps, self.features) == (IMAGE_SIDE, IMAGE_SIDE):
            return []
        import keras

        return [keras.layers.Reshape((self.steps, self.features), name="sequence")]


TASKS: dict[str, Task] = {
    "row": Task(steps=28, features=28, description="row by row: 28 steps of a 28-pixel row"),
}
"""`data.task` key -> how its images become sequences."""
