"""Unroll is a speed setting: each model trained once, the other setting timed, and the check that both agree."""

from __future__ import annotations

import json

import optuna
import pytest
from conftest import EXPERIMENTS
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from rnnbench import names
from rnnbench.errors import UserError
from rnnbench.results import Speed
from rnnbench.sweep import state, studies, unroll
from rnnbench.sweep.definition import FinalRun, Study, load_sweep, plan

DEFAULT = load_sweep(EXPERIMENTS / "sweep.yaml")
GRU = Study("gru", 128)


def test_each_model_trains_once_in_one_setting_and_the_other_is_timed():
    sweep_plan = plan(DEFAULT)
    runs = sweep_plan.finals_of(GRU, trained=True)
    # seed 0 and the timing run first: the check is decided early
    assert runs == (
        FinalRun("gru", 128, True, 0),
        FinalRun("gru", 128, False, 0, timing=True),
        FinalRun("gru", 128, True, 1),
        FinalRun("gru", 128, True, 2),
    )
    assert len(sweep_plan.final_runs) == 9 * (3 + 1) and sum(run.timing for run in sweep_plan.final_runs) == 9
    assert sweep_plan.runs == 72 + 36 + 3
    # settings that differ: every setting in full, the timing run kept (it ran)
    differ = sweep_plan.finals_of(GRU, trained=True, differ=True)
    assert sorted((run.unroll, run.seed, run.timing) for run in differ) == [
        (False, 0, False),
        (False, 0, True),
        (False, 1, False),
        (False, 2, False),
        (True, 0, False),
        (True, 1, False),
        (True, 2, False),
    ]


def test_a_sweep_can_still_train_every_setting_in_full():
    every = plan(load_sweep(EXPERIMENTS / "sweep.yaml", ["final.train_every_unroll=true"]))
    assert len(every.final_runs) == 9 * 2 * 3 and not any(run.timing for run in every.final_runs)
    one = plan(load_sweep(EXPERIMENTS / "sweep.yaml", ["grid.unroll=[false]"]))
    assert one.finals_of(GRU) == tuple(FinalRun("gru", 128, False, seed) for seed in range(3))


def final_trial(unroll: bool, first: dict | None, state=TrialState.COMPLETE, timing=False, seed=0, failure=None, units=128):
    """A final-stage trial as a worker leaves it: the parameters the coordinator fixed, its starting point."""
    params = {
        "reference": False,
        "train.learning_rate": 0.01,
        "cell": "gru",
        "hidden_units": units,
        "unroll": unroll,
        "seed": seed,
        "timing": timing,
    }
    attributes = {names.STARTING_POINT: first} if first else {}
    if failure:
        attributes[names.FAILURE] = failure
    return create_trial(
        params=params,
        distributions={key: CategoricalDistribution([value]) for key, value in params.items()},
        value=0.9 if state == TrialState.COMPLETE else None,
        state=state,
        user_attrs=attributes,
    )


def start(loss: float = 2.3, gradient=(1.0, -2.0, 0.5)) -> dict:
    """A `train.starting_point` record: the untrained model's loss and its gradient's sketch."""
    return {"loss": loss, "gradient_norm": 2.3, "gradient_sketch": list(gradient)}


@pytest.mark.parametrize(
    "other, expected",
    [
        (final_trial(False, start(2.300_000_2, (1.0, -2.000_000_1, 0.5)), timing=True), unroll.AGREE),  # float rounding
        (final_trial(False, start(2.31), timing=True), unroll.DIFFER),  # the untrained model computes something else
        (final_trial(False, start(gradient=(1.0, -1.9, 0.5)), timing=True), unroll.DIFFER),  # so does its first step
        (final_trial(False, start(), timing=False), unroll.PENDING),  # not the timing run: still to come
        (final_trial(False, None, TrialState.RUNNING, timing=True), unroll.PENDING),
        (final_trial(False, None, TrialState.FAIL, timing=True, failure="diverged"), unroll.UNCHECKED),
        (final_trial(False, None, TrialState.FAIL, timing=True, failure="disk_full"), unroll.PENDING),  # lost: retried
    ],
)
def test_the_check_compares_the_starting_points_of_both_settings(other, expected):
    trained = final_trial(True, start())
    check = unroll.check(plan(DEFAULT), GRU, True, [trained, final_trial(True, None, seed=1), other])
    assert check.verdict == expected
    assert check.trains_every_setting == (expected in (unroll.DIFFER, unroll.UNCHECKED))
    if expected == unroll.DIFFER:
        assert "gru-h128: unrolled and looped compute different functions" in check.describe(GRU)


def test_the_faster_setting_is_measured_where_both_are_else_modelled():
    measured = {("gru", 128, True, False): Speed(9000.0, 5.0, 50_000.0), ("gru", 128, False, True): Speed(3000.0, 2.0, 20_000.0)}
    assert unroll.trained_setting(DEFAULT, GRU, measured, 400) is True
    slower_unrolled = {**measured, ("gru", 128, True, False): Speed(1000.0, 5.0, 50_000.0)}
    assert unroll.trained_setting(DEFAULT, GRU, slower_unrolled, 400) is False
    only_looped = {("gru", 128, False, True): Speed(100_000.0, 0.1, 900_000.0)}  # one setting measured: both modelled
    assert unroll.trained_setting(DEFAULT, GRU, only_looped, 400) == unroll.trained_setting(DEFAULT, GRU, {}, 400)


def test_a_sweep_stays_incomplete_until_the_runs_of_a_differing_model_are_done(store):
    """The coordinator's side: a check that finds the settings differ enqueues the model's full runs in the other
    setting and says so in one line; workers (sweep_complete) keep going until those are done too."""
    from rnnbench import tracking
    from rnnbench.sweep import coordinator

    definition = load_sweep(EXPERIMENTS / "sweep_tiny.yaml", ["grid.cells=[gru]"])
    sweep_plan = plan(definition)
    storage = optuna.storages.InMemoryStorage()
    loaded = studies.create_studies(storage, definition, sweep_plan)
    client = tracking.open_store()
    study = sweep_plan.studies[0]
    parents = {study: tracking.start_parent_run(client, definition.sweep.name, name=study.key, stage="study", params={}, tags={})}
    for _number in range(sweep_plan.trials_per_study):  # the search is over
        loaded[study].add_trial(create_trial(params={}, distributions={}, value=0.5))
    loaded[study].set_user_attr(names.TRAINED_UNROLL, True)
    units = study.hidden_units
    for trial in (final_trial(True, start(), units=units), final_trial(False, start(2.4), timing=True, units=units)):
        loaded[None].add_trial(trial)
    assert not state.sweep_complete(sweep_plan, loaded)  # the check wants more than the two runs done

    said = []
    coordinator._check_unroll(
        client, definition, sweep_plan, loaded, parents, {study: {"train.learning_rate": 0.01}}, set(), said.append
    )
    assert len(said) == 1 and "compute different functions" in said[0] and "training it in full in each setting" in said[0]
    waiting = [trial for trial in loaded[None].get_trials() if trial.state == TrialState.WAITING]
    assert len(waiting) == 1  # the looped setting's full run of seed 0 (the tiny sweep has one seed)
    assert client.get_run(parents[study]).data.tags[names.UNROLL_CHECK] == unroll.DIFFER
    assert state.totals(sweep_plan, loaded).planned == sweep_plan.runs + 1
    assert not state.sweep_complete(sweep_plan, loaded)


def test_a_sweep_started_with_every_setting_in_full_resumes_only_as_such():
    """Sweeps stored before final.train_every_unroll existed trained every setting in full: they resume with it set,
    and without it are refused in one line that names the key."""
    definition = load_sweep(EXPERIMENTS / "sweep_tiny.yaml")
    storage = optuna.storages.InMemoryStorage()
    values = definition.values()
    del values["final.train_every_unroll"]  # as such a sweep stored it
    for study in [None, *plan(definition).studies]:
        created = optuna.create_study(storage=storage, study_name=studies.study_name(definition, study))
        created.set_user_attr(names.STUDY_DEFINITION, json.dumps(values, sort_keys=True))
    with pytest.raises(UserError, match=r"final.train_every_unroll: True -> False.*add final.train_every_unroll=true"):
        studies.create_studies(storage, definition, plan(definition))
    every = load_sweep(EXPERIMENTS / "sweep_tiny.yaml", ["final.train_every_unroll=true"])
    assert studies.create_studies(storage, every, plan(every))
    assert studies.load_definition(storage, definition.sweep.name).final.train_every_unroll is True
