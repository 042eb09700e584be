"""A sweep worker: claims waiting trials and final runs from a sweep's studies, and runs them.

    rnnbench worker experiments/sweep.yaml --storage postgresql://user@host/db   # join from anywhere
    rnnbench worker rnnbench-sweep                                              # by name, local store

`rnnbench sweep` starts its own workers; more can join from another shell or machine (with
`MLFLOW_TRACKING_URI` pointing at the same MLflow server). A worker takes the sweep's definition
from the storage, runs trials until nothing is left, and exits once the sweep is complete.
Ctrl-C stops it after recording its current run as KILLED and re-enqueueing that trial.
"""

from __future__ import annotations

import logging
import time
import traceback
import zlib

import optuna
from optuna.trial import TrialState

from rnnbench import backend, names, studies, tracking
from rnnbench.config import Config
from rnnbench.sweep_config import Plan, Study, SweepDefinition, plan, reference_config, run_config

POLL_SECONDS = 1.0
"""How often an idle worker looks for new work (final runs appear when a study finishes)."""
PRUNERS = {
    "median": lambda search, every: optuna.pruners.MedianPruner(
        n_startup_trials=search.startup_trials, n_warmup_steps=search.pruner_warmup_evaluations * every
    ),
    "successive_halving": lambda search, every: optuna.pruners.SuccessiveHalvingPruner(min_resource=every),
    "none": lambda search, every: optuna.pruners.NopPruner(),
}


def suggest(trial: optuna.Trial, definition: SweepDefinition, study: Study | None) -> Config:
    """The one place an Optuna trial becomes a run configuration.

    A search trial (`study` given) gets its learning rate from the sampler; a final run, or a
    reference run of the seed tutorial, has every parameter fixed when it was enqueued, and the
    same calls return those values.
    """
    search, grid = definition.search, definition.grid
    if study is None and trial.suggest_categorical("reference", (False, True)):
        return reference_config(definition, seed=trial.suggest_int("seed", 0, definition.final.seeds - 1))
    learning_rate = trial.suggest_float("learning_rate", search.learning_rate_min, search.learning_rate_max, log=True)
    if study is not None:
        return run_config(
            definition, cell=study.cell, hidden_units=study.hidden_units, unroll=search.unroll,
            learning_rate=learning_rate, seed=search.seed,
        )
    return run_config(
        definition,
        cell=trial.suggest_categorical("cell", grid.cells),
        hidden_units=trial.suggest_categorical("hidden_units", grid.hidden_units),
        unroll=trial.suggest_categorical("unroll", grid.unroll),
        learning_rate=learning_rate,
        seed=trial.suggest_int("seed", 0, definition.final.seeds - 1),
    )


def work(sweep_name: str, storage_url: str | None, threads: int | None = None) -> int:
    """Runs the sweep's waiting trials until the sweep is complete; returns how many it ran.

    Args:
        sweep_name: the sweep's `sweep.name`.
        storage_url: the Optuna storage (None: the local journal under mlruns/).
        threads: CPU threads for training (None: all cores).
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = studies.open_storage(storage_url, close_dead_trial)
    definition = studies.load_definition(storage, sweep_name)
    backend.load(definition.train.backend, threads)  # before anything imports Keras
    from rnnbench.data import load_dataset

    sweep_plan = plan(definition)
    dataset = load_dataset(definition.data)
    loaded = {
        study: optuna.load_study(study_name=studies.study_name(definition, study), storage=storage)
        for study in [None, *sweep_plan.studies]
    }
    ran = 0
    while True:
        for study, optuna_study in loaded.items():  # final runs first: finished variants early
            studies.fail_dead_trials(optuna_study, close_dead_trial)
            claimed = studies.claim(optuna_study)
            if claimed is not None:
                _run_claimed(definition, storage, study, claimed, dataset)
                ran += 1
                break
        else:
            if sweep_complete(sweep_plan, loaded):
                return ran
            time.sleep(POLL_SECONDS)


def sweep_complete(sweep_plan: Plan, loaded: dict[Study | None, optuna.Study]) -> bool:
    """Every planned trial has finished, and every final run due (studies with a best trial) too."""
    finals_due = len(sweep_plan.reference_seeds)
    for study in sweep_plan.studies:
        trials = loaded[study].get_trials(deepcopy=False)
        if studies.count(trials).finished < sweep_plan.trials_per_study:
            return False
        if any(trial.state == TrialState.COMPLETE for trial in trials):
            finals_due += len(sweep_plan.finals_of(study))
    return studies.count(loaded[None].get_trials(deepcopy=False)).finished >= finals_due


def close_dead_trial(optuna_study: optuna.Study, trial) -> None:
    """A trial found dead: its MLflow run closed as KILLED (if still open), and the trial retried."""
    run_id = trial.user_attrs.get(studies.MLFLOW_RUN)
    if run_id:
        client = tracking.open_store()
        if client.get_run(run_id).info.status == "RUNNING":
            worker = trial.user_attrs.get(studies.WORKER, "an unknown worker")
            tracking.end_run(client, run_id, "KILLED", failure="worker_died", reason=f"worker {worker} died")
            client.set_tag(run_id, names.TRIAL_STATE, TrialState.FAIL.name)
    studies.retry(optuna_study, trial)


def _run_claimed(definition: SweepDefinition, storage, study: Study | None, claimed, dataset) -> None:
    """Runs one claimed trial to its end state in Optuna, with its MLflow run closed to match."""
    from rnnbench.runner import RunFailed, StopRun

    name = studies.study_name(definition, study)
    seeded = optuna.load_study(
        study_name=name,
        storage=storage,
        # Seeded per study and trial: two workers with one seed would propose the same learning rates.
        sampler=optuna.samplers.TPESampler(
            seed=zlib.crc32(f"{definition.search.sampler_seed}:{name}:{claimed.number}".encode()),
            n_startup_trials=definition.search.startup_trials,
            constant_liar=True,
        ),
        pruner=PRUNERS[definition.search.pruner](definition.search, definition.train.eval_every_steps),
    )
    trial = optuna.trial.Trial(seeded, claimed._trial_id)
    trial.set_user_attr(studies.WORKER, studies.worker_id())
    _heartbeat(storage, claimed._trial_id)
    record = {"run_id": None}
    started = time.perf_counter()
    label = f"{name} trial {claimed.number}"
    try:
        value = _objective(trial, definition, study, dataset, record)
    except StopRun as stop:
        _finish(seeded, trial, record, TrialState.PRUNED, f"{label}: {stop}")
    except RunFailed as failure:
        _finish(seeded, trial, record, TrialState.FAIL, f"{label}: FAILED: {failure}")
    except KeyboardInterrupt:
        _finish(seeded, trial, record, TrialState.FAIL, f"{label}: interrupted; re-enqueued")
        studies.retry(seeded, seeded._storage.get_trial(claimed._trial_id))
        raise
    except Exception as error:
        traceback.print_exc()
        _finish(seeded, trial, record, TrialState.FAIL, f"{label}: FAILED: {type(error).__name__}: {error}")
    else:
        _finish(seeded, trial, record, TrialState.COMPLETE, f"{label}: {value:.4f}", value)
    print(f"  ({time.perf_counter() - started:.1f} s, learning rate {trial.params.get('learning_rate', 0):.2e})", flush=True)


def _objective(trial: optuna.Trial, definition: SweepDefinition, study: Study | None, dataset, record: dict) -> float:
    """Trains the trial's run: the last validation accuracy of a search trial, test accuracy of a final run."""
    from rnnbench.runner import StopRun, run_experiment

    config = suggest(trial, definition, study)
    reference = trial.params.get("reference", False)
    stage = "trial" if study else "reference" if reference else "final"
    tags = {names.SWEEP: definition.sweep.name, names.TRIAL_NUMBER: str(trial.number)}
    if study is None:
        tags[names.VARIANT] = config.model.variant
    if not reference:
        tags[names.STUDY] = Study(config.model.cell, config.model.hidden_units).key

    def started(run_id, _dataset):
        record["run_id"] = run_id
        trial.set_user_attr(studies.MLFLOW_RUN, run_id)

    def evaluated(evaluation):
        _heartbeat(trial.study._storage, trial._trial_id)
        if study is None:
            return
        trial.report(evaluation.val_accuracy, evaluation.step)
        if trial.should_prune():
            raise StopRun(
                "pruned",
                f"pruned at step {evaluation.step} with val/accuracy {evaluation.val_accuracy:.3f} "
                f"({definition.search.pruner} pruner)",
            )

    outcome = run_experiment(
        config,
        stage=stage,
        parent_run_id=trial.study.user_attrs.get(studies.MLFLOW_RUN),  # the study's run, or for finals the sweep's
        run_name=(
            f"{study.key}-trial{trial.number}-lr{config.train.learning_rate:.2e}" if study
            else f"reference-{tracking.run_name(config)}" if reference else None
        ),
        tags=tags,
        test=study is None,
        dataset=dataset,
        on_start=started,
        on_evaluation=evaluated,
    )
    trial.set_user_attr("samples_per_second", outcome.result.speed.train_samples_per_second)
    if study is None:
        return outcome.test.accuracy
    return outcome.result.evaluations[-1].val_accuracy


def _finish(optuna_study, trial, record: dict, state: TrialState, message: str, value: float | None = None):
    optuna_study.tell(trial, value, state=state if value is None else None)
    if record["run_id"]:
        tracking.open_store().set_tag(record["run_id"], names.TRIAL_STATE, state.name)
    print(message, flush=True)


def _heartbeat(storage, trial_id: int) -> None:
    """RDB storages: tells Optuna this trial's worker is alive (the journal relies on process ids)."""
    if isinstance(storage, optuna.storages.RDBStorage) and storage.get_heartbeat_interval():
        storage.record_heartbeat(trial_id)


logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
