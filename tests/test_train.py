"""Component tests of the training loop on the real offline data, without any tracking."""

from __future__ import annotations

import dataclasses
import os
import signal

import numpy as np
import pytest

from rnnbench.config import DataConfig, load_config
from rnnbench.data import Dataset, load_dataset
from rnnbench.train import DIVERGED_LOSS, TrainingDiverged, evaluate, train


@pytest.fixture(scope="module")
def small() -> Dataset:
    """mnist5k with the training split cut to 1,000 images: fast, still real."""
    dataset = load_dataset(DataConfig(source="mnist5k"))
    cut = dataclasses.replace(dataset.train, images=dataset.train.images[:1000], labels=dataset.train.labels[:1000])
    return dataclasses.replace(dataset, train=cut)


def config(*overrides):
    return load_config(None, ["model.hidden_units=32", "train.steps=300", "train.eval_every_steps=100", *overrides])


def test_one_evaluation_per_interval_and_the_model_learns(small):
    seen = []
    result = train(config(), small, on_evaluation=seen.append)
    assert [evaluation.step for evaluation in result.evaluations] == [100, 200, 300]
    assert seen == result.evaluations
    assert result.evaluations[-1].val_accuracy > 0.5  # chance is 0.1
    assert result.evaluations[-1].train_loss < result.evaluations[0].train_loss
    speed = result.speed
    assert speed.train_samples_per_second > 0 and speed.eval_samples_per_second > 0
    assert speed.compile_seconds >= 0 and speed.wall_seconds > 0


def test_same_config_reproduces_the_same_curve(small):
    first = train(config("train.steps=100", "train.eval_every_steps=50"), small)
    second = train(config("train.steps=100", "train.eval_every_steps=50"), small)
    other_seed = train(config("train.steps=100", "train.eval_every_steps=50", "train.seed=1"), small)
    curve = lambda result: [(e.train_loss, e.val_loss, e.val_accuracy) for e in result.evaluations]  # noqa: E731
    assert curve(first) == curve(second)
    assert curve(first) != curve(other_seed)


def test_a_diverging_loss_stops_at_once_and_keeps_earlier_evaluations(small):
    seen = []
    with pytest.raises(TrainingDiverged) as error:
        overrides = ("train.learning_rate=1e38", "train.eval_every_steps=1", "train.steps=50", "train.steps_per_execution=1")
        train(config(*overrides), small, seen.append)
    assert error.value.step == 2
    assert not np.isfinite(error.value.loss)
    assert [evaluation.step for evaluation in seen] == [1]


def test_a_loss_that_explodes_without_reaching_infinity_is_divergence(small):
    """lr 1e6 used to end FINISHED at 16% with a validation loss of 3.4e6 nats; a uniform guess scores 2.30."""
    with pytest.raises(TrainingDiverged, match=r"exploded to .* nats between steps 1 and 10, over ten times") as error:
        train(config("train.learning_rate=1e6"), small)
    assert np.isfinite(error.value.loss) and error.value.loss > DIVERGED_LOSS
    assert pytest.approx(10 * np.log(10)) == DIVERGED_LOSS


@pytest.mark.slow
def test_the_top_of_the_searched_learning_rates_is_not_divergence(small):
    """search.learning_rate_max (3e-2) on the fastest-moving cell: noisy, at worst 3.5 nats here, far from the limit."""
    result = train(config("train.learning_rate=3e-2", "model.hidden_units=128"), small)
    assert max(evaluation.train_loss for evaluation in result.evaluations) < DIVERGED_LOSS / 2


def test_several_steps_per_execution_compute_the_same_run(small):
    """One call per step or ten: the same batches, the same updates, the same curve."""
    one = train(config("train.steps=100", "train.eval_every_steps=50", "train.steps_per_execution=1"), small)
    ten = train(config("train.steps=100", "train.eval_every_steps=50", "train.steps_per_execution=10"), small)
    curve = lambda result: [(e.step, e.train_loss, e.val_loss, e.val_accuracy) for e in result.evaluations]  # noqa: E731
    assert np.allclose(curve(one), curve(ten), rtol=1e-5, atol=1e-6)


def test_divergence_inside_an_execution_names_its_steps(small):
    with pytest.raises(TrainingDiverged) as error:
        train(config("train.learning_rate=1e38", "train.steps_per_execution=10"), small)
    assert error.value.step == 10
    assert "between steps 1 and 10" in str(error.value)


def test_evaluate_matches_keras_own_metrics(small):
    result = train(config("train.steps=100", "train.eval_every_steps=100"), small)
    score = evaluate(result.model, small.test)
    keras_loss, keras_accuracy = result.model.evaluate(small.test.images, small.test.labels, verbose=0)
    assert score.accuracy == pytest.approx(keras_accuracy, abs=1e-6)
    assert score.loss == pytest.approx(keras_loss, rel=1e-4)
    assert score.predictions.shape == (len(small.test),)


@pytest.fixture
def ctrl_c_answered():
    """SIGINT at Python's default (KeyboardInterrupt), even when the tests run as a background job."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_stops_between_steps_or_at_once_when_pressed_twice(small, ctrl_c_answered, capfd, presses):
    """Once: training ends at the next step boundary, never inside TensorFlow; twice: at once."""
    seen, returned = [], []

    def press_ctrl_c(evaluation):
        seen.append(evaluation)
        for _ in range(presses):
            os.kill(os.getpid(), signal.SIGINT)
        returned.append(evaluation)

    with pytest.raises(KeyboardInterrupt):
        train(config(), small, press_ctrl_c)
    assert [evaluation.step for evaluation in seen] == [100]
    assert len(returned) == (1 if presses == 1 else 0)
    assert "stopping after the current steps" in capfd.readouterr().err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.slow
def test_gradient_clipping_is_keras_global_norm_and_off_by_default(small):
    clipped = train(config("train.steps=100", "train.eval_every_steps=50", "train.clip_norm=0.5"), small)
    assert clipped.model.optimizer.global_clipnorm == 0.5
    assert clipped.evaluations[-1].val_accuracy > 0.3  # still learns (chance is 0.1)
    plain = train(config("train.steps=50", "train.eval_every_steps=50"), small)
    assert plain.model.optimizer.global_clipnorm is None


@pytest.mark.parametrize(
    "overrides",
    [
        ["model.cell=lstm", "model.dropout=0.2", "train.clip_norm=1.0"],  # unrolled, on the graph
        ["model.cell=gru", "model.unroll=false", "model.dropout=0.2", "train.xla_on_cpu=looped"],  # looped, with XLA
        [
            "model.cell=simple_rnn",
            "data.task=permuted_pixel",
            "model.unroll=false",
            "train.steps=20",
            "train.eval_every_steps=10",
        ],
    ],
)
@pytest.mark.slow
def test_a_run_on_the_compiled_model_of_its_shape_trains_exactly_as_a_new_model(small, monkeypatch, overrides):
    """Runs of one shape share a compiled model (no retracing); each still starts from the weights its seed draws and
    from Adam's initial state, at its own learning rate: bit for bit the losses, accuracies and test predictions of a
    model built and compiled for it alone."""
    import rnnbench.train as training

    shape = ["model.hidden_units=16", "train.steps=60", "train.eval_every_steps=30", *overrides]
    later = config(*shape, "train.seed=1", "train.learning_rate=0.003")
    monkeypatch.setattr(training, "_COMPILED", {})
    alone = train(later, small)
    alone_predictions = evaluate(alone.model, small.test).predictions
    monkeypatch.setattr(training, "_COMPILED", {})
    first = train(config(*shape, "train.seed=0", "train.learning_rate=0.001"), small)
    reused = train(later, small)
    assert reused.model is first.model, "the second run of the shape reuses the compiled model"
    curve = lambda result: [(e.train_loss, e.train_accuracy, e.val_loss, e.val_accuracy) for e in result.evaluations]  # noqa: E731
    assert curve(reused) == curve(alone)
    assert (evaluate(reused.model, small.test).predictions == alone_predictions).all()
    assert curve(first) != curve(reused)


def test_a_new_models_training_step_is_traced_once(small, monkeypatch):
    """TensorFlow traces a step that creates variables twice, once to create them and once to run it; a new model has
    its optimizer's and its metric's variables before training, so in a run TensorFlow traces the model twice in all:
    the training step and the validation step."""
    import functools

    import keras
    import tensorflow as tf

    import rnnbench.train as training

    traced = []
    classify = keras.layers.Dense.call

    @functools.wraps(classify)
    def counted(self, *args, **kwargs):
        traced.append(tf.inside_function())
        return classify(self, *args, **kwargs)

    monkeypatch.setattr(keras.layers.Dense, "call", counted)
    monkeypatch.setattr(training, "_COMPILED", {})
    train(config("model.hidden_units=8", "train.steps=20", "train.eval_every_steps=10"), small)
    assert traced == [True, True]


@pytest.mark.slow
def test_a_run_after_a_diverged_run_of_its_shape_trains_exactly_as_a_new_model(small, monkeypatch):
    """A diverged trial leaves the shared compiled model with non-finite weights and optimizer state mid-training;
    the next run of the shape starts clean all the same (a worker's next trial after a too-high learning rate)."""
    import rnnbench.train as training

    shape = ["model.hidden_units=16", "train.steps=60", "train.eval_every_steps=30"]
    later = config(*shape, "train.seed=1")
    monkeypatch.setattr(training, "_COMPILED", {})
    alone = train(later, small)
    monkeypatch.setattr(training, "_COMPILED", {})
    with pytest.raises(TrainingDiverged):
        train(config(*shape, "train.learning_rate=1e38"), small)
    after = train(later, small)
    curve = lambda result: [(e.train_loss, e.train_accuracy, e.val_loss, e.val_accuracy) for e in result.evaluations]  # noqa: E731
    assert curve(after) == curve(alone)


@pytest.mark.slow
def test_xla_trains_the_same_model_as_the_graph_to_float_precision(small):
    """`train.xla_on_cpu` changes how the steps are compiled, not what they compute: the same run's curve as
    TensorFlow's graph to float32 rounding (XLA fuses and reorders the arithmetic, so not bit for bit); `looped`
    leaves unrolled models to the graph."""
    shape = ["model.cell=lstm", "model.unroll=false", "model.hidden_units=16", "train.steps=60", "train.eval_every_steps=30"]
    from rnnbench.train import jit_compile

    graph = train(config(*shape, "train.xla_on_cpu=none"), small)
    xla = train(config(*shape, "train.xla_on_cpu=looped"), small)
    assert xla.model.jit_compile is True and graph.model.jit_compile is False
    unrolled = [*shape, "model.unroll=true"]  # what train compiles with, without compiling an unrolled LSTM with XLA
    assert jit_compile(config(*unrolled, "train.xla_on_cpu=looped")) == "auto"  # Keras' own: no XLA on a CPU
    assert jit_compile(config(*unrolled, "train.xla_on_cpu=all")) is True
    curve = lambda result: np.array([(e.train_loss, e.val_loss, e.val_accuracy) for e in result.evaluations])  # noqa: E731
    np.testing.assert_allclose(curve(xla), curve(graph), rtol=1e-3, atol=1e-3)


def test_every_setting_but_those_a_run_sets_keys_the_compiled_model():
    """A run reuses the compiled model of an earlier run only where nothing but its seed, learning rate, length,
    evaluation period or experiment differs; any other setting, one added later included, gets its own."""
    from rnnbench.config import TrainConfig
    from rnnbench.train import compiled_key

    base = config()
    for override in (
        "train.seed=3",
        "train.learning_rate=0.01",
        "train.steps=600",
        "train.eval_every_steps=50",
        "tracking.experiment=elsewhere",
    ):
        assert compiled_key(config(override)) == compiled_key(base), override
    for override in (
        "model.unroll=false",
        "model.dropout=0.1",
        "train.batch_size=25",
        "train.clip_norm=1.0",
        "train.steps_per_execution=5",
        "train.xla_on_cpu=all",
        "data.task=permuted_pixel",
    ):
        changed = config(override, "model.unroll=false") if "task" in override else config(override)
        assert compiled_key(changed) != compiled_key(base), override
    # a setting that does not exist yet: added here, it is part of the key without any change to the cache
    extended = dataclasses.make_dataclass(
        "Extended", [("recurrent_precision", str, dataclasses.field(default="float32"))], bases=(TrainConfig,), frozen=True
    )
    one = dataclasses.replace(base, train=extended(**dataclasses.asdict(base.train)))
    other = dataclasses.replace(base, train=extended(**dataclasses.asdict(base.train), recurrent_precision="bfloat16"))
    assert compiled_key(one) != compiled_key(other)


class _ReversedWhenUnrolled:
    """A cell whose unrolled path computes another function (it reads the rows bottom to top): what the sweep's
    unroll check must catch in a future cell."""

    def __new__(cls, units, unroll=False, **options):
        import keras

        return keras.layers.SimpleRNN(units, unroll=unroll, go_backwards=unroll, **options)


@pytest.mark.parametrize(
    "cell, dropout, agree",
    [("gru", 0.0, True), ("lstm", 0.3, True), ("reversed_when_unrolled", 0.0, False)],
)  # SimpleRNN agrees too: `make bench`'s quick unroll check asserts it (test_bench_targets)
@pytest.mark.slow
def test_the_unroll_check_tells_a_speed_setting_from_a_different_function(small, monkeypatch, cell, dropout, agree):
    """The sweep's check on real models: from one seed, looped (with XLA, as sweeps train it) and unrolled (on the
    graph), the untrained loss and gradient agree within the tolerance, with dropout too; a cell whose unrolled path
    differs does not. And the run trains exactly as without the probe."""
    import keras

    from rnnbench import cells
    from rnnbench.sweep import unroll

    monkeypatch.setitem(cells.CELLS, "reversed_when_unrolled", cells.Cell("Reversed", "ReversedWhenUnrolled", 1, "#000000"))
    monkeypatch.setattr(keras.layers, "ReversedWhenUnrolled", _ReversedWhenUnrolled, raising=False)
    shape = [
        f"model.cell={cell}",
        "model.hidden_units=32",
        "train.steps=20",
        "train.eval_every_steps=20",
        "train.learning_rate=0.03",
        "train.xla_on_cpu=looped",
        f"model.dropout={dropout}",
    ]
    results = [train(config(*shape, f"model.unroll={setting}"), small, probe_start=True) for setting in ("false", "true")]
    apart = unroll.difference(results[0].start, results[1].start)
    assert (apart <= unroll.RELATIVE_TOLERANCE) == agree, apart
    assert len(results[0].start["gradient_sketch"]) == 16 and results[0].start["gradient_norm"] > 0
    plain = train(config(*shape, "model.unroll=true"), small)
    curve = lambda result: [(e.train_loss, e.train_accuracy, e.val_loss, e.val_accuracy) for e in result.evaluations]  # noqa: E731
    assert plain.start is None and curve(plain) == curve(results[1])
