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
    assert [(d.key, d.distribution) for d in both.space] == [
        ("train.learning_rate", optuna.distributions.FloatDistribution(1e-4, 3e-2, log=True)),
        ("model.dropout", optuna.distributions.FloatDistribution(0.0, 0.5)),
    ]
    only_dropout = load_sweep(EXPERIMENTS / "sweep_tiny.yaml", [DROPOUT, "space.train.learning_rate=null"])
    assert [d.key for d in only_dropout.space] == ["model.dropout"]


def test_a_stored_definition_comes_back_with_its_space():
    """What the studies store (`values()`) rebuilds the same definition: workers search what the coordinator planned."""
    definition = load_sweep(EXPERIMENTS / "sweep_tiny.yaml", [DROPOUT, "space.train.batch_size={low: 16, high: 64}"])
    assert build_definition(definition.values()) == definition
    assert definition.space[-1].distribution == optuna.distributions.IntDistribution(16, 64)


@pytest.mark.parametrize(
    "override, expected",
    [
        ("space.model.cell={low: 0, high: 1}", "set by the sweep through grid.cells"),
        ("space.train.seed={low: 0, high: 9}", "set by the sweep"),
        ("space.data.source={low: 0, high: 1}", "not a run setting a sweep can search; searchable keys: model.dropout"),
        ("space.model.dropout={low: 0.5, high: 0.1}", "low < high"),
        ("space.model.dropout={low: 0.0, high: 1.0}", "model.dropout: received 1.0"),
        ("space.train.learning_rate={low: 0, high: 0.1, log: true}", "low > 0 (log)"),
        ("space.model.dropout=0.3", "expected {low: L, high: H}"),
        ("space.train.clip_norm=[1.0]", "at least two different choices"),
        ("space.train.clip_norm=[1.0, 1.0]", "at least two different choices"),
        ("space.model.dropout=[0.0, 1.0]", "model.dropout: received 1.0"),
        ("space.train.batch_size=[16, many]", "space.train.batch_size"),
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


def test_a_categorical_dimension_is_one_entry_that_every_stage_reads():
    """A choice added in the sweep file (here on the command line): planned, stored with the studies, sampled among its
    choices in trials, fixed in a final run, described in the dry run and shown in the tables."""
    from rnnbench.report.leaderboard import format_tuned

    definition = load_sweep(EXPERIMENTS / "sweep_tiny.yaml", ["space.train.clip_norm=[0.0, 1.0, 5.0]"])
    choice = definition.space[-1]
    assert choice.distribution == optuna.distributions.CategoricalDistribution((0.0, 1.0, 5.0))
    assert build_definition(definition.values()) == definition  # what the workers read back from the storage
    assert choice.describe() == "train.clip_norm one of 0.0, 1.0, 5.0"
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    drawn = {suggest(study.ask(), definition, Study("gru", 16)).train.clip_norm for _ in range(12)}
    assert drawn == {0.0, 1.0, 5.0}
    tuned = {"train.learning_rate": 0.0042, "train.clip_norm": 5.0}
    study.enqueue_trial({"reference": False, **tuned, "cell": "gru", "hidden_units": 16, "unroll": True, "seed": 0})
    assert suggest(study.ask(), definition, None).train.clip_norm == 5.0
    assert format_tuned(tuned) == "learning_rate 0.0042, clip_norm 5"
    assert format_tuned({"train.xla_on_cpu": "looped"}) == "xla_on_cpu looped"  # a choice that is not a number
