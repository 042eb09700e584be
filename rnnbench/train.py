"""Training: `train(config, dataset) -> TrainResult`, step-based as in the seed experiment.

    rnnbench run experiments/smoke.yaml      # reaches train() through runner.run_experiment()

`train.steps` Adam steps of `train.batch_size` images (reshuffled at every pass over the data),
the whole validation split evaluated every `train.eval_every_steps` steps. Pure: it knows nothing
of MLflow or Optuna; callers watch progress through `on_evaluation`, which may raise to stop
(an Optuna pruner does). The test split is not touched here: see `evaluate`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from rnnbench import signals
from rnnbench.config import Config, xla_on_cpu_for
from rnnbench.data import CLASSES, Dataset, Split
from rnnbench.model import build_model
from rnnbench.results import Evaluation, Score, Speed, TrainResult

EVAL_BATCH_SIZE = 1000
"""Images per forward pass when evaluating: large batches, the result does not depend on it."""


SKETCH = 16
"""Random projections of the gradient that `starting_point` records: enough to tell two gradients apart."""

DIVERGED_LOSS = 10 * math.log(CLASSES)
"""Training loss (nats, a window's running mean) above which a run counts as diverged: ten times that of
a uniform guess over the 10 classes (ln 10 = 2.30), i.e. about e^-23 = 1e-10 of probability on the true
class on average, where a model that learned anything puts more than 1/10 (docs: When something fails)."""


class TrainingDiverged(Exception):
    """The training loss became NaN, infinite, or exploded past `DIVERGED_LOSS`: the run cannot recover."""

    def __init__(self, step: int, loss: float, first_step: int | None = None):
        where = f"at step {step}" if first_step in (None, step) else f"between steps {first_step} and {step}"
        if math.isfinite(loss):
            what = f"exploded to {loss:.3g} nats {where}, over ten times a uniform guess's ln(10) = 2.30 (the divergence limit)"
        else:
            what = f"became {loss} {where}"
        super().__init__(f"the training loss {what}")
        self.step = step
        self.loss = loss


def train(
    config: Config, dataset: Dataset, on_evaluation: Callable[[Evaluation], None] | None = None, probe_start: bool = False
) -> TrainResult:
    """Trains a fresh model for `config` on `dataset.train`, validating on `dataset.valid`.

    Args:
        config: the resolved run configuration; `model` and `train` sections are used.
        dataset: train and valid splits of images (N, 28, 28) float32 and labels (N,).
        on_evaluation: called after every evaluation, in order; an exception it raises ends training.
        probe_start: also record the untrained model's `starting_point` (a sweep's unroll check).

    Returns:
        The trained model, one `Evaluation` per `eval_every_steps` steps, and speed figures.

    Raises:
        TrainingDiverged: the loss became NaN or infinite (checked after every `steps_per_execution` steps).
    """
    settings = config.train
    model = _fresh_model(config)
    start = starting_point(model, dataset.valid) if probe_start else None
    memory = _PeakMemory()
    with signals.deferred() as stop:
        clock = _Clock(settings.batch_size, len(dataset.valid), on_evaluation, stop)
        model.fit(
            _training_batches(dataset.train, settings.batch_size, settings.seed),
            epochs=settings.steps // settings.eval_every_steps,
            steps_per_epoch=settings.eval_every_steps,
            validation_data=(dataset.valid.images, dataset.valid.labels),
            validation_batch_size=EVAL_BATCH_SIZE,
            callbacks=[clock],
            shuffle=False,  # the batches are already shuffled, per pass, by _training_batches
            verbose=0,
        )
    return TrainResult(model, clock.evaluations, dataclasses.replace(clock.speed(), peak_memory_bytes=memory.peak()), start)


def starting_point(model: keras.Model, split: Split) -> dict:
    """The untrained model's mean loss on the first EVAL_BATCH_SIZE images of `split` and its gradient there (the
    direction of a first training step), in inference mode (no dropout) and eagerly (no compiler): deterministic, so
    the same for two models that compute the same function from the same weights, to float rounding, whatever their
    unroll setting or compiler. The gradient is recorded as SKETCH random projections (a fixed seed) and its norm.

    Returns:
        {"loss": float, "gradient_norm": float, "gradient_sketch": [SKETCH floats]}.
    """
    saved = [keras.ops.convert_to_numpy(variable.value) for variable in model.variables]  # dropout's seed state too
    images = keras.ops.convert_to_tensor(split.images[:EVAL_BATCH_SIZE])
    labels = keras.ops.convert_to_tensor(split.labels[:EVAL_BATCH_SIZE])
    loss_of = keras.losses.SparseCategoricalCrossentropy()
    if keras.backend.backend() == "jax":
        import jax

        trainable = [variable.value for variable in model.trainable_variables]
        fixed = [variable.value for variable in model.non_trainable_variables]

        def loss_at(weights):
            probabilities, _ = model.stateless_call(weights, fixed, images, training=False)
            return loss_of(labels, probabilities)

        loss, gradients = jax.value_and_grad(loss_at)(trainable)
    else:
        with tf.GradientTape() as tape:
            loss = loss_of(labels, model(images, training=False))
        gradients = tape.gradient(loss, model.trainable_variables)
    for variable, value in zip(model.variables, saved, strict=True):  # training then starts exactly as without the probe
        variable.assign(value)
    flat = np.concatenate([np.asarray(gradient, dtype=np.float64).ravel() for gradient in gradients])
    projections = np.random.default_rng(0).standard_normal((SKETCH, flat.size)) @ flat
    return {"loss": float(loss), "gradient_norm": float(np.linalg.norm(flat)), "gradient_sketch": projections.tolist()}


def _fresh_model(config: Config) -> keras.Model:
    """A compiled model for `config` whose weights and optimizer state are those of a new one built with its seed.

    The first run of a shape (`compiled_key`: every setting but those a run sets on the compiled model) in this process
    builds and compiles
    it; later runs of that shape reuse it, so Keras does not trace its training and prediction functions again:
    they get the weights (and dropout's random-number state) a new model with their seed draws, an optimizer state
    of zeros (Adam's initial one) and their learning rate. Bit for bit the same training as a new model (tests/test_train.py).
    """
    settings = config.train
    shape = compiled_key(config)
    compiled = _COMPILED.get(shape)
    if not _COMPILED:
        keras.backend.clear_session()  # a process's first model starts from a clean Keras state
    keras.utils.set_random_seed(settings.seed)
    model = build_model(config.model, config.data.task, config.data.permutation_seed)
    if compiled is None:
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=settings.learning_rate, global_clipnorm=settings.clip_norm or None),
            loss="sparse_categorical_crossentropy",
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
            steps_per_execution=settings.steps_per_execution,
            jit_compile=jit_compile(config),
        )
        # Every variable training uses exists before its first step (Keras would create the optimizer's and the metric's
        # while TensorFlow traces the step, and TensorFlow traces a step that creates variables twice).
        model.optimizer.build(model.trainable_variables)
        _COMPILED[shape] = model
        return model
    for cached, new in zip(compiled.layers, model.layers, strict=True):  # weights, and dropout's random-number state
        for target, value in zip(cached.variables, new.variables, strict=True):
            target.assign(value)
    for variable in compiled.optimizer.variables:  # Adam starts from zeros: its step count and moment estimates
        variable.assign(keras.ops.zeros_like(variable))
    compiled.optimizer.learning_rate = settings.learning_rate
    return compiled


NOT_COMPILED = frozenset({"train.seed", "train.learning_rate", "train.steps", "train.eval_every_steps", "tracking.experiment"})
"""Settings that do not change the compiled model: a run sets the seed's weights and the learning rate on it, and the
steps and the evaluation period only drive the loop around it. Every other setting, a new one too, keys the cache."""


def compiled_key(config: Config) -> str:
    """The key of the compiled model a run of `config` can reuse: every setting but NOT_COMPILED, and Keras' backend."""
    kept = {key: value for key, value in config.flat().items() if key not in NOT_COMPILED}
    return json.dumps([kept, keras.backend.backend()], sort_keys=True, default=repr)


def jit_compile(config: Config) -> bool | str:
    """Keras' `jit_compile` for `train.xla_on_cpu`: XLA on a CPU-only machine for the models it names, else Keras' own
    "auto" (XLA on a GPU for models that allow it, where LSTM and GRU take cuDNN's kernel instead; always on JAX)."""
    wanted = xla_on_cpu_for(config.train.xla_on_cpu, config.model.unroll)
    return True if wanted and not tf.config.list_logical_devices("GPU") else "auto"


_COMPILED: dict[str, keras.Model] = {}
"""This process's compiled models, one per shape it has trained (see `_fresh_model`)."""


def evaluate(model: keras.Model, split: Split) -> Score:
    """Mean cross-entropy and accuracy of `model` on `split`, with its predicted classes."""
    with signals.deferred():
        probabilities = model.predict(split.images, batch_size=EVAL_BATCH_SIZE, verbose=0)
    epsilon = keras.config.epsilon()  # the clipping Keras applies in its own cross-entropy
    chosen = np.clip(probabilities[np.arange(len(split)), split.labels], epsilon, 1 - epsilon)
    predictions = probabilities.argmax(axis=1)
    return Score(
        loss=float(-np.log(chosen).mean()),
        accuracy=float((predictions == split.labels).mean()),
        predictions=predictions,
    )


def _training_batches(split: Split, batch_size: int, seed: int) -> tf.data.Dataset:
    """An endless stream of full batches; each pass over the data is in a new seeded order."""
    batches = (
        tf.data.Dataset.from_tensor_slices((split.images, split.labels))
        .shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
        .repeat()
        .batch(batch_size)
        .prefetch(2)
    )
    # tf.data's autotuning thread made fit() stall at its end in some runs, and none without it; two prefetched
    # batches keep the model fed.
    options = tf.data.Options()
    options.autotune.enabled = False
    return batches.with_options(options)


class _PeakMemory:
    """The most memory training holds: the GPU's (TensorFlow), else the process's resident set (Linux), whose high-water
    mark is reset when training starts; None where neither can be read."""

    def __init__(self):
        self.gpu: str | bool | None = (
            "GPU:0" if keras.backend.backend() == "tensorflow" and tf.config.list_logical_devices("GPU") else None
        )
        if self.gpu:
            tf.config.experimental.reset_memory_stats(self.gpu)
            return
        try:
            Path("/proc/self/clear_refs").write_text("5")  # 5: reset the peak resident set size (VmHWM)
        except OSError:
            self.gpu = False

    def peak(self) -> int | None:
        if self.gpu:
            return int(tf.config.experimental.get_memory_info(self.gpu)["peak"])
        if self.gpu is False:
            return None
        found = re.search(r"^VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
        return int(found.group(1)) * 1024 if found else None


class _Clock(keras.callbacks.Callback):
    """Times steps and evaluations, stops at a non-finite loss, and reports each evaluation.

    Keras calls the batch hooks once per execution of `steps_per_execution` steps, with the
    indices of its first and last step in the epoch.
    """

    def __init__(self, batch_size: int, valid_samples: int, on_evaluation, stop: signals.Pending):
        super().__init__()
        self.stop = stop
        self.batch_size = batch_size
        self.valid_samples = valid_samples
        self.on_evaluation = on_evaluation
        self.evaluations: list[Evaluation] = []
        self.steps_done = 0
        self.first_steps = 0
        """Steps in the first execution, which also compiles: left out of the steady rate."""
        self.first_step_seconds = 0.0
        self.steady_seconds = 0.0
        self.eval_seconds: list[float] = []

    def on_train_begin(self, logs=None):
        self.started = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.window_started = time.perf_counter()
        self.window_steps = 0

    def on_train_batch_begin(self, batch, logs=None):
        self.execution_begins = batch
        if self.steps_done == 0:
            self.first_step_started = time.perf_counter()

    def on_test_batch_end(self, batch, logs=None):
        self.stop.raise_if_received()

    def on_train_batch_end(self, batch, logs=None):
        self.stop.raise_if_received()
        executed = batch - self.execution_begins + 1
        self.steps_done += executed
        self.window_steps += executed
        if self.first_steps == 0:
            self.first_steps = executed
            self.first_step_seconds = time.perf_counter() - self.first_step_started
        loss = logs["loss"]  # the window's running mean: non-finite as soon as one step is
        if not math.isfinite(loss) or loss > DIVERGED_LOSS:
            raise TrainingDiverged(self.steps_done, loss, first_step=self.steps_done - executed + 1)

    def on_test_begin(self, logs=None):
        self.eval_started = time.perf_counter()
        window_seconds = self.eval_started - self.window_started
        window_steps = self.window_steps
        if len(self.evaluations) == 0:  # leave the compiling first execution out of the steady rate
            window_seconds -= self.first_step_seconds
            window_steps -= self.first_steps
        self.steady_seconds += window_seconds
        self.window_rate = window_steps * self.batch_size / max(window_seconds, 1e-9)

    def on_test_end(self, logs=None):
        self.eval_seconds.append(time.perf_counter() - self.eval_started)

    def on_epoch_end(self, epoch, logs=None):
        evaluation = Evaluation(
            step=self.steps_done,
            train_loss=float(logs["loss"]),
            train_accuracy=float(logs["accuracy"]),
            val_loss=float(logs["val_loss"]),
            val_accuracy=float(logs["val_accuracy"]),
            train_samples_per_second=self.window_rate,
        )
        self.evaluations.append(evaluation)
        if self.on_evaluation is not None:
            self.on_evaluation(evaluation)

    def on_train_end(self, logs=None):
        self.wall_seconds = time.perf_counter() - self.started

    def speed(self) -> Speed:
        steady_steps = self.steps_done - self.first_steps
        steady_step_seconds = self.steady_seconds / max(steady_steps, 1)
        evals = self.eval_seconds[1:] or self.eval_seconds
        return Speed(
            train_samples_per_second=steady_steps * self.batch_size / max(self.steady_seconds, 1e-9),
            compile_seconds=max(self.first_step_seconds - self.first_steps * steady_step_seconds, 0.0),
            eval_samples_per_second=self.valid_samples * len(evals) / max(sum(evals), 1e-9),
            wall_seconds=self.wall_seconds,
        )
