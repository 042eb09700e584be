"""Tasks: how a 28x28 image becomes the sequence the recurrent layer reads. One table.

    python -c "from rnnbench.tasks import TASKS; print(TASKS)"

The data stays images (N, 28, 28) everywhere; the model's first layers turn them into the task's
sequence, so a saved model takes images whatever its task. The model's input layers, the FLOP and
memory model of the cost estimate and the digit figure's caption all follow from the entry. Adding a
task is one entry here (and its test in tests/test_tasks.py).
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

IMAGE_SIDE = 28
"""MNIST-like images are 28x28 pixels."""
PIXELS = IMAGE_SIDE * IMAGE_SIDE
LONGEST_UNROLL = 100
"""Time steps up to which `model.unroll=true` is allowed: unrolling builds one copy of the cell per step, and
784 steps (pixel by pixel) make a graph 28 times the row task's."""


@dataclasses.dataclass(frozen=True)
class Task:
    steps: int
    """Time steps per image."""
    features: int
    """Values read at each step (steps x features = the image's 784 pixels)."""
    description: str
    """How the image is read, for figures and the docs."""
    permuted: bool = False
    """The pixels are read in one fixed random order, drawn from `data.permutation_seed` (permuted MNIST)."""

    def __post_init__(self):
        if self.steps * self.features != PIXELS:
            raise ValueError(f"a task reads all {PIXELS} pixels; received {self.steps} x {self.features}")

    def input_layers(self) -> list:
        """Keras layers from images (batch, 28, 28) to sequences (batch, steps, features); none for row by row.

        A permuted task reorders the flattened pixels with a fixed, untrained Dense layer named "permutation"
        whose kernel is the permutation matrix (`set_permutation` fills it): built-in layers only, so a saved
        model loads anywhere and applies its own order, and a multiplication by 0 and 1 moves pixels exactly.
        """
        if (self.steps, self.features) == (IMAGE_SIDE, IMAGE_SIDE) and not self.permuted:
            return []
        import keras

        layers = [keras.layers.Reshape((self.steps, self.features), name="sequence")]
        if self.permuted:
            layers[:0] = [
                keras.layers.Reshape((PIXELS,), name="pixels"),
                keras.layers.Dense(PIXELS, use_bias=False, trainable=False, name="permutation"),
            ]
        return layers


def permutation(seed: int) -> np.ndarray:
    """The order in which a permuted task reads the 784 pixels: position j reads pixel permutation(seed)[j]."""
    return np.random.default_rng(seed).permutation(PIXELS)


def permutation_digest(seed: int) -> str:
    """A content hash of the permutation, recorded with every run of a permuted task."""
    return hashlib.sha256(permutation(seed).astype(np.int32).tobytes()).hexdigest()[:16]


def set_permutation(model, seed: int) -> None:
    """Fills the model's "permutation" layer with the matrix of `permutation(seed)` (x @ K moves pixel p[j] to j)."""
    matrix = np.zeros((PIXELS, PIXELS), dtype=np.float32)
    matrix[permutation(seed), np.arange(PIXELS)] = 1.0
    model.get_layer("permutation").set_weights([matrix])


TASKS: dict[str, Task] = {
    "row": Task(steps=28, features=28, description="row by row: 28 steps of a 28-pixel row"),
    "pixel": Task(steps=784, features=1, description="pixel by pixel: 784 steps of one pixel, in scanline order"),
    "permuted_pixel": Task(
        steps=784, features=1, description="pixel by pixel in one fixed random order: 784 steps", permuted=True
    ),
}
"""`data.task` key -> how its images become sequences."""
