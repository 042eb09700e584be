"""Component tests: the Optuna side of a sweep against a real journal file and MLflow store."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time

import optuna
import pytest
from mlflow import MlflowClient
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from rnnbench import names, processes, tracking
from rnnbench.sweep import state, studies
from rnnbench.sweep.definition import load_sweep, plan
from rnnbench.sweep.state import close_dead_trial


def _take_all(url: str, taken) -> None:
    """One competing worker: takes waiting trials the way a sweep worker does, until none wait."""
    study = optuna.load_study(study_name="race", storage=studies.open_storage(url))
    while study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        trial = studies.take(study, url)
        if trial is not None:
            taken.append(trial.number)
            study.tell(trial, 0.0)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_concurrent_workers_take_each_planned_trial_exactly_once(tmp_path, kind):
    url = str(tmp_path / "optuna.journal") if kind == "journal" else f"sqlite:///{tmp_path / 'studies.db'}"
    study = optuna.create_study(study_name="race", storage=studies.open_storage(url))
    studies.enqueue_search_trials(study, planned=60)
    with multiprocessing.Manager() as manager:
        taken = manager.list()
        workers = [multiprocessing.get_context("spawn").Process(target=_take_all, args=(url, taken)) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
        numbers = list(taken)
    assert sorted(numbers) == list(range(60))  # each exactly once
    trials = study.get_trials()
    assert studies.count(trials).complete == 60 and len(studies.live_trials(trials)) == 60  # strays count nowhere


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.slow
def test_a_dead_workers_trial_is_failed_retried_and_its_run_closed(store, tmp_path, monkeypatch):
    monkeypatch.setattr(studies, "YOUNG_TRIAL_SECONDS", 0)
    storage = studies.open_storage(str(tmp_path / "optuna.journal"))
    study = optuna.create_study(study_name="s:lstm-h8", storage=storage, direction="maximize")
    studies.enqueue_search_trials(study, planned=2)
    client = tracking.open_store()
    run_id = client.create_run(tracking.experiment_id(client, "s")).info.run_id

    dead = studies.take(study, None)
    dead.set_user_attr(names.TRIAL_WORKER, f"{processes.host_of(processes.this_process())}:{_dead_pid()}")
    dead.set_user_attr(names.MLFLOW_RUN, run_id)
    alive = studies.take(study, None)  # signed by this process: alive

    assert studies.fail_dead_trials(study, close_dead_trial) == 1
    trials = study.get_trials()
    assert trials[dead.number].state == TrialState.FAIL
    assert trials[alive.number].state == TrialState.RUNNING
    retry = trials[-1]
    assert (
        retry.state == TrialState.WAITING
        and optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(retry) == dead.number
    )
    # the plan still counts two trials: the running one and the retry, not the dead one
    assert studies.count(trials).running == 1 and studies.count(trials).waiting == 1 and studies.count(trials).failed == 0
    run = MlflowClient(store).get_run(run_id)
    assert run.info.status == "KILLED"
    assert run.data.tags[names.FAILURE] == "worker_died"
    # found once: a second look (another process, a re-run) does nothing more
    assert studies.fail_dead_trials(study, close_dead_trial) == 0
    assert len(study.get_trials()) == 3


@pytest.mark.slow
def test_a_worker_killed_before_it_recorded_its_run_id_still_has_its_run_closed(store, tmp_path, monkeypatch):
    """kill -9 between creating the MLflow run and writing its id on the trial: the run is found by the worker's
    identity and the trial number, which the run was created with."""
    monkeypatch.setattr(studies, "YOUNG_TRIAL_SECONDS", 0)
    storage = studies.open_storage(str(tmp_path / "optuna.journal"))
    study = optuna.create_study(study_name="s:lstm-h8", storage=storage, direction="maximize")
    studies.enqueue_search_trials(study, planned=2)
    client = tracking.open_store()
    dead = studies.take(study, None)
    worker = f"{processes.host_of(processes.this_process())}:{_dead_pid()}"
    dead.set_user_attr(names.TRIAL_WORKER, worker)
    experiment = tracking.experiment_id(client, "s")
    orphan = client.create_run(experiment, tags={names.PROCESS: worker, names.TRIAL_NUMBER: str(dead.number)}).info.run_id
    other = client.create_run(experiment, tags={names.PROCESS: worker, names.TRIAL_NUMBER: "99"}).info.run_id

    assert studies.fail_dead_trials(study, close_dead_trial) == 1
    assert client.get_run(orphan).info.status == "KILLED"
    assert client.get_run(orphan).data.tags[names.FAILURE] == "worker_died"
    assert client.get_run(other).info.status == "RUNNING"  # another trial's run is not this trial's to close


@pytest.mark.slow
def test_a_dead_workers_final_run_keeps_the_sweep_incomplete_until_its_retry_has_run(store, monkeypatch):
    """The coordinator fails a dead worker's trial, closes its MLflow run (seconds, on a busy server), then re-enqueues
    it: a worker that asks in between whether the sweep is complete must hear no, or it stops with the retry untaken
    and the sweep ends "all workers exited before the sweep was complete"."""
    # imported here, not at the top: the workers the tests above spawn import this module, and conftest loads TensorFlow
    from conftest import TINY

    monkeypatch.setattr(studies, "YOUNG_TRIAL_SECONDS", 0)
    definition = load_sweep(TINY, ["grid.cells=[gru]", "grid.unroll=[false]"])
    sweep_plan = plan(definition)
    loaded = studies.create_studies(optuna.storages.InMemoryStorage(), definition, sweep_plan)
    [study] = sweep_plan.studies
    for _number in range(sweep_plan.trials_per_study):  # the search is over, its final run due
        loaded[study].add_trial(create_trial(params={}, distributions={}, value=0.5))
    loaded[study].set_user_attr(names.TRAINED_UNROLL, False)
    params = {"reference": False, "cell": "gru", "hidden_units": 16, "unroll": False, "seed": 0, "timing": False}
    dead_worker = f"{processes.host_of(processes.this_process())}:{_dead_pid()}"
    loaded[None].add_trial(
        create_trial(
            state=TrialState.RUNNING,
            params=params,
            distributions={key: CategoricalDistribution([value]) for key, value in params.items()},
            user_attrs={names.TRIAL_WORKER: dead_worker},
        )
    )
    looks = []

    def a_worker_looks_meanwhile(optuna_study, trial):
        looks.append((state.sweep_complete(sweep_plan, loaded), state.totals(sweep_plan, loaded).running))
        close_dead_trial(optuna_study, trial)

    assert studies.fail_dead_trials(loaded[None], a_worker_looks_meanwhile) == 1
    assert looks == [(False, 1)]  # not complete: the dead run is still owed, and shows as running
    retry = studies.take(loaded[None], None)
    assert retry is not None and retry.params == params and not state.sweep_complete(sweep_plan, loaded)
    loaded[None].tell(retry, 0.9)
    assert state.sweep_complete(sweep_plan, loaded)


def test_a_dead_trial_whose_retry_never_comes_counts_as_lost_after_a_while(monkeypatch):
    """The process that failed a dead trial can die before re-enqueueing it: after RETRY_SECONDS the trial is lost (a
    re-run of the sweep retries it), so that no worker waits for ever. A failure a worker recorded itself (its reason
    set) is never waited for."""
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    study.add_trial(create_trial(state=TrialState.FAIL, params={}, distributions={}))  # failed by another, not retried
    study.add_trial(create_trial(state=TrialState.FAIL, params={}, distributions={}, user_attrs={names.FAILURE: "read_only"}))
    counts = studies.count(study.get_trials())
    assert (counts.running, counts.failed, counts.lost) == (1, 1, 1)
    monkeypatch.setattr(studies, "RETRY_SECONDS", 0)
    counts = studies.count(study.get_trials())
    assert (counts.running, counts.failed, counts.lost) == (0, 2, 2)


def test_topping_up_search_trials_is_idempotent(tmp_path):
    storage = studies.open_storage(str(tmp_path / "optuna.journal"))
    study = optuna.create_study(study_name="s:gru-h8", storage=storage)
    studies.enqueue_search_trials(study, planned=3)
    studies.enqueue_search_trials(study, planned=3)
    assert len(study.get_trials(states=(TrialState.WAITING,))) == 3


def test_a_sweep_resumed_with_other_settings_is_refused(tmp_path):
    from rnnbench.errors import UserError
    from rnnbench.sweep.definition import load_sweep, plan

    storage = studies.open_storage(str(tmp_path / "optuna.journal"))
    definition = load_sweep(None, ["grid.cells=lstm", "grid.hidden_units=8"])
    studies.create_studies(storage, definition, plan(definition))
    changed = load_sweep(None, ["grid.cells=lstm", "grid.hidden_units=8", "train.steps=1000"])
    with pytest.raises(UserError, match=r"train.steps: 5000 -> 1000.*sweep.name=NEW_NAME"):
        studies.create_studies(storage, changed, plan(changed))
    assert studies.load_definition(storage, definition.sweep.name) == definition


def test_a_bad_storage_url_is_a_clear_error():
    from rnnbench.errors import UserError

    with pytest.raises(UserError, match="cannot open the Optuna storage nosuchdb://"):
        studies.open_storage("nosuchdb://host/db")


WORKER_ELSEWHERE = """
import sys, time, optuna
from rnnbench import names
from rnnbench.sweep import studies
studies.HEARTBEAT_SECONDS = 1
study = optuna.load_study(study_name="s:gru-h8", storage=studies.open_storage(sys.argv[1]))
trial = studies.take(study, sys.argv[1])
trial.set_user_attr(names.TRIAL_WORKER, "another-machine:4242")  # no process id to check from here
with studies.heartbeat(trial):
    print("started", flush=True)
    time.sleep(600)
"""


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["journal", "postgresql"])
def test_a_worker_on_another_machine_is_failed_when_its_heartbeat_stops(store, tmp_path, monkeypatch, kind, request):
    url = str(tmp_path / "optuna.journal") if kind == "journal" else request.getfixturevalue("postgres_database")
    monkeypatch.setattr(studies, "YOUNG_TRIAL_SECONDS", 0)
    monkeypatch.setattr(studies, "GRACE_SECONDS", 3)
    storage = studies.open_storage(url)
    study = optuna.create_study(study_name="s:gru-h8", storage=storage, direction="maximize")
    studies.enqueue_search_trials(study, planned=1)
    worker = subprocess.Popen([sys.executable, "-c", WORKER_ELSEWHERE, url], stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout.readline().strip() == "started"
        time.sleep(4)  # longer than the grace period: only the heartbeat keeps the trial alive
        studies.fail_dead_trials(study, close_dead_trial)
        assert study.get_trials()[0].state == TrialState.RUNNING
    finally:
        worker.kill()  # the machine is gone: its heartbeat stops
        worker.wait()
    time.sleep(4)
    assert studies.fail_dead_trials(study, close_dead_trial) == 1
    trials = study.get_trials()
    assert trials[0].state == TrialState.FAIL
    assert [t.state for t in trials[1:]] == [TrialState.WAITING]  # retried once
    assert studies.count(trials).waiting == 1


@pytest.mark.slow
def test_joining_a_sweep_that_does_not_exist_names_the_fix(tmp_path):
    from conftest import rnnbench

    (tmp_path / "mlruns").mkdir()
    studies.open_storage(str(tmp_path / "mlruns" / "optuna.journal"))  # a journal, of other sweeps
    result = rnnbench("worker", "no-such-sweep", cwd=tmp_path)
    assert result.returncode == 2
    assert "no sweep 'no-such-sweep' in this Optuna storage" in result.stderr
    assert "rnnbench sweep SWEEP_FILE" in result.stderr


def _log_datasets(uri: str, location: str, rounds: int, barrier) -> None:
    """One worker: in each round, a new run logs that round's three splits, at the same moment as the others."""
    import os

    import numpy as np

    from rnnbench.data import Dataset, Split

    os.environ["MLFLOW_TRACKING_URI"] = uri
    client = tracking.open_store()
    experiment = tracking.experiment_id(client, "shared")
    for round_number in range(rounds):
        rng = np.random.default_rng(round_number)  # the same data in every worker, new in every round

        def split(size, rng=rng):
            return Split(rng.random((size, 28, 28), dtype=np.float32), np.arange(size, dtype=np.int32) % 10)

        dataset = Dataset("mnist5k", location, split(20), split(10), split(10))
        run_id = client.create_run(experiment).info.run_id
        barrier.wait(timeout=60)  # a worker that crashed breaks the barrier: the others stop too
        tracking.log_dataset(client, run_id, dataset)


def test_workers_tagging_an_untagged_experiment_at_once_all_go_on(store, monkeypatch):
    """An experiment made without rnnbench's kind tag (by MLflow, or an older rnnbench), and workers starting together:
    the one whose write of the tag loses the race to another's (SQLite: a UNIQUE constraint) goes on all the same."""
    from mlflow.exceptions import MlflowException

    client = tracking.open_store()
    created = client.create_experiment("untagged")
    tag = MlflowClient.set_experiment_tag

    def another_worker_first(self, experiment_id, key, value):
        tag(self, experiment_id, key, value)  # the other worker's write
        raise MlflowException("(sqlite3.IntegrityError) UNIQUE constraint failed: experiment_tags.key")

    monkeypatch.setattr(MlflowClient, "set_experiment_tag", another_worker_first)
    assert tracking.experiment_id(client, "untagged") == created
    assert client.get_experiment(created).tags == tracking.EXPERIMENT_KIND


@pytest.mark.slow
def test_workers_logging_the_same_new_dataset_at_once_all_record_it(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    client.create_experiment("shared")
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(3)
    workers = [context.Process(target=_log_datasets, args=(uri, str(tmp_path), 10, barrier), daemon=True) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0, 0]
    runs = client.search_runs([client.get_experiment_by_name("shared").experiment_id], max_results=100)
    assert len(runs) == 30
    assert all(len(run.inputs.dataset_inputs) == 3 for run in runs)


def test_a_worker_keeps_to_its_study_and_a_free_worker_takes_a_study_nobody_runs():
    """Two workers, three studies in the plan's order: the first worker takes the first study; the second, finding a
    trial of it running, takes the second study; each then keeps to its own (its shape is compiled there); a worker
    whose study has nothing left joins a running one rather than wait; final runs always come first."""
    from rnnbench.sweep.definition import Study
    from rnnbench.sweep.worker import _in_order

    storage = optuna.storages.InMemoryStorage()
    plan = [None, Study("lstm", 32), Study("gru", 32), Study("gru", 64)]
    loaded = {study: optuna.create_study(study_name=str(study), storage=storage) for study in plan}
    for study in plan[1:]:
        studies.enqueue_search_trials(loaded[study], planned=2)

    def takes(last):
        for study, optuna_study in _in_order(loaded, last):
            if studies.take(optuna_study, None) is not None:
                return study

    first = takes(None)
    second = takes(None)
    assert (first, second) == (plan[1], plan[2])
    assert takes(first) == plan[1] and takes(second) == plan[2]  # each worker's second trial: its own study
    assert takes(first) == plan[3]  # lstm-32 has nothing left: the study nobody runs
    assert [study for study, _ in _in_order(loaded, plan[2])][:2] == [None, plan[2]]


class AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


@pytest.mark.slow
@pytest.mark.parametrize("steps, state", [(100, TrialState.PRUNED), (50, TrialState.COMPLETE)], ids=["earlier", "last"])
def test_a_trial_is_pruned_before_its_last_evaluation_never_at_it(store, tmp_path, steps, state):
    """A pruner that always prunes: a trial with an evaluation still to come is pruned at its first; one whose first
    evaluation is its last has finished training, and is a result."""
    from conftest import TINY

    from rnnbench.data import load_dataset
    from rnnbench.sweep import worker
    from rnnbench.sweep.definition import load_sweep, plan

    definition = load_sweep(TINY, [f"train.steps={steps}", "train.eval_every_steps=50", "grid.cells=simple_rnn"])
    storage = studies.open_storage(str(tmp_path / "optuna.journal"))
    study = plan(definition).studies[0]
    name = studies.create_studies(storage, definition, plan(definition))[study].study_name
    optuna_study = optuna.load_study(study_name=name, storage=storage, pruner=AlwaysPrune())
    studies.enqueue_search_trials(optuna_study, 1)
    trial = studies.take(optuna_study, None)
    worker._run_taken(definition, study, optuna_study, trial, load_dataset(definition.data))
    [done] = optuna_study.get_trials()
    assert done.state == state and list(done.intermediate_values) == [50]
