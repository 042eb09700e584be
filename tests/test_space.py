"""The search space: declared once in the sweep file, checked before any work, and read by suggest and the finals."""

from __future__ import annotations

import optuna
import pytest
from conftest import EXPERIMENTS

from rnnbench.errors import ConfigError
from rnnbench.sweep.definition import Study, build_definition, load_sweep
from rnnbench.sweep.worker import suggest

DROPOUT = "space.model.dropout={low: 0.0, high: 0.5}"


def test_the_default_space_is_the_learning_rate_and_entries_add_or_remove():
    assert [d.key for d in load_sweep(EXPERIMENTS / "sweep_tiny.yaml").space] == ["train.learning_rate"]
    both = load_sweep(EXPERIMENTS / "sweep_tiny.yaml", [DROPOUT])
    assert [(d.key, d.low, d.high, d.log) for d in both.space] == [
        ("train.learning_rate", 1e-4, 3e-2, True), ("model.dropout", 0.0, 0.5, False)]
    only_dropout = load_sweep(EXPERIMENTS / "sweep_tiny.yaml", [DROPOUT, "space.train.learning_rate=null"])
    assert [d.key for d in only_dropout.space] == ["model.dropout"]


def test_a_stored_definition_comes_back_with_its_space():
    """What the studies store (`values()`) rebuilds the same definition: workers search what the coordinator planned."""
    definition = load_sweep(EXPERIMENTS / "sweep_tiny.yaml", [DROPOUT, "space.train.batch_size={low: 16, high: 64}"])
    assert build_definition(definition.values()) == definition
    assert definition.space[-1].integer


@pytest.mark.parametrize(
    "override, expected",
    [
        ("space.model.cell={low: 0, high: 1}", "set by the sweep through grid.cells"),
        ("space.train.seed={low: 0, high: 9}", "set by the sweep"),
        ("space.data.source={low: 0, high: 1}", "not a numeric run setting; searchable keys: model.dropout"),
        ("space.model.dropout={low: 0.5, high: 0.1}", "low < high"),
        ("space.model.dropout={low: 0.0, high: 1.0}", "model.dropout: received 1.0"),
        ("space.train.learning_rate={low: 0, high: 0.1, log: true}", "low > 0 (log)"),
        ("space.model.dropout=0.3", "expected {low: L, high: H}"),
        ("space.train.learning_rate=null", None),  # fine alone? no: nothing left to search
    ],
)
def test_a_bad_space_fails_before_any_work_naming_the_key(override, expected):
    with pytest.raises(ConfigError) as error:
        load_sweep(EXPERIMENTS / "sweep_tiny.yaml", [override])
    assert (expected or "nothing is searched") in str(error.value)


def test_suggest_draws_every_searched_key_and_a_final_run_gets_the_enqueued_values():
    definition = load_sweep(EXPERIMENTS / "sweep_tiny.yaml", [DROPOUT])
    study = optuna.create_study(direction="maximize")
    config = suggest(study.ask(), definition, Study("gru", 16))
    assert 1e-4 <= config.train.learning_rate <= 3e-2 and 0 <= config.model.dropout <= 0.5
    tuned = {"train.learning_rate": 0.0042, "model.dropout": 0.25}
    study.enqueue_trial({"reference": False, **tuned, "cell": "gru", "hidden_units": 16, "unroll": True, "seed": 0})
    final = suggest(study.ask(), definition, None)
    assert (final.train.learning_rate, final.model.dropout, final.model.unroll) == (0.0042, 0.25, True)


def test_two_searched_keys_do_not_share_a_random_stream():
    """The sampler seeds each key apart: the random start-up values are not the same quantile of both ranges."""
    from rnnbench.sweep.worker import TrialSampler

    same_range = "space.model.dropout={low: 1.0e-4, high: 3.0e-2, log: true}"  # the learning rate's range
    definition = load_sweep(EXPERIMENTS / "sweep_tiny.yaml", [same_range])
    sampler = TrialSampler(0, "s:gru-h16", 10, tuple(d.key for d in definition.space))
    study = optuna.create_study(direction="maximize", sampler=sampler)
    configs = [suggest(study.ask(), definition, Study("gru", 16)) for _ in range(5)]
    pairs = [(config.train.learning_rate, config.model.dropout) for config in configs]
    assert all(rate != dropout for rate, dropout in pairs)
