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


def test_pixel_reads_the_image_in_scanline_order():
    model = build_model(ModelConfig(hidden_units=4, unroll=False), "pixel")
    images = np.random.default_rng(0).random((2, 28, 28), dtype=np.float32)
    sequence = keras_part(model, "sequence")(images)
    np.testing.assert_array_equal(np.asarray(sequence)[:, :, 0], images.reshape(2, 784))


def test_permuted_pixel_reads_the_pixels_in_the_seeded_order_exactly():
    """The permutation layer moves each pixel to its place unchanged, in the order `permutation_seed` draws; another
    seed draws another order."""
    model = build_model(ModelConfig(hidden_units=4, unroll=False), "permuted_pixel", permutation_seed=3)
    images = np.random.default_rng(0).random((2, 28, 28), dtype=np.float32)
    sequence = np.asarray(keras_part(model, "sequence")(images))[:, :, 0]
    order = tasks.permutation(3)
    np.testing.assert_array_equal(sequence, images.reshape(2, 784)[:, order])
    assert sorted(order) == list(range(784)) and not (order == tasks.permutation(4)).all()
    assert tasks.permutation_digest(3) == tasks.permutation_digest(3) != tasks.permutation_digest(4)
    assert not model.get_layer("permutation").trainable


def test_a_long_task_refuses_unrolling_in_a_run_and_in_a_sweep():
    from conftest import TINY

    from rnnbench.sweep.definition import load_sweep

    with pytest.raises(ConfigError, match="model.unroll=false"):
        load_config(None, ["data.task=pixel"])  # the seed's unroll=true
    assert load_config(None, ["data.task=pixel", "model.unroll=false"]).data.task == "pixel"
    with pytest.raises(ConfigError, match=r"grid.unroll: \[false\]"):
        load_sweep(TINY, ["data.task=permuted_pixel"])
    with pytest.raises(ConfigError, match="final.reference: false"):
        load_sweep(TINY, ["data.task=permuted_pixel", "grid.unroll=[false]", "final.reference=true"])
    assert load_sweep(TINY, ["data.task=permuted_pixel", "grid.unroll=[false]"]).data.task == "permuted_pixel"


def keras_part(model, last_layer: str):
    """The model's first layers, up to `last_layer`, as a model of its own."""
    import keras

    return keras.Model(model.inputs[0], model.get_layer(last_layer).output)


def test_the_estimate_knows_that_784_steps_cost_far_more_than_28():
    """Per image, pixel MNIST does the row task's FLOPs 28 times over with 28 times fewer inputs per step, and pays
    each cell's measured overhead per step 756 more times: its modelled step is over 20 times longer for LSTM-128."""
    row, pixel = (cost.modelled_speed("lstm", 128, False, 50, task) for task in ("row", "pixel"))
    assert row.train_samples_per_second / pixel.train_samples_per_second > 20
    assert cost.modelled_speed("irnn", 64, False, 50, "permuted_pixel") == cost.modelled_speed("irnn", 64, False, 50, "pixel")


def test_the_dry_run_takes_measured_speeds_only_from_runs_of_the_same_task_and_compiler(store):
    """A 784-step run is 26 times slower per image than a 28-step run of the same shape: its speed must not stand
    for the row task's (runs recorded before data.task existed count as rows); nor may a run compiled with XLA
    stand for one without (runs recorded before train.xla_on_cpu had none)."""
    from mlflow import MlflowClient

    from rnnbench import names
    from rnnbench.sweep import estimate

    client = MlflowClient(store)
    experiment = client.create_experiment("speeds")
    for task, xla, rate in (("pixel", None, 200.0), (None, None, 5000.0), ("row", "looped", 9000.0), ("row", "none", 5200.0)):
        run = client.create_run(experiment).info.run_id
        params = {
            "train.batch_size": "50",
            "train.steps": "1000",
            "model.cell": "lstm",
            "model.hidden_units": "64",
            "model.unroll": "False",
        }
        for key, value in {
            **params,
            **({"data.task": task} if task else {}),
            **({"train.xla_on_cpu": xla} if xla else {}),
        }.items():
            client.log_param(run, key, value)
        for key, value in ((names.TRAIN_SAMPLES_PER_S, rate), (names.COMPILE_S, 1.0), (names.EVAL_SAMPLES_PER_S, 3 * rate)):
            client.log_metric(run, key, value)
        client.set_terminated(run, "FINISHED")
    assert estimate.measured_speeds(50, "row")[("lstm", 64, False, False)].train_samples_per_second == 5100.0  # median
    assert estimate.measured_speeds(50, "row")[("lstm", 64, False, True)].train_samples_per_second == 9000.0
    assert estimate.measured_speeds(50, "pixel")[("lstm", 64, False, False)].train_samples_per_second == 200.0
    assert estimate.measured_speeds(50, "permuted_pixel") == {}
