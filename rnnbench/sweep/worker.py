"""A sweep worker: takes waiting trials and final runs from a sweep's studies, and runs them.

    rnnbench worker experiments/sweep.yaml --storage postgresql://user@host/db   # join from anywhere
    rnnbench worker rnnbench-sweep                                              # by name, local store

`rnnbench sweep` starts its own workers; more can join from another shell or machine (with
`MLFLOW_TRACKING_URI` pointing at the same MLflow server). A worker takes the sweep's definition
from the storage, runs trials until nothing is left, and exits once the sweep is complete.
Ctrl-C or SIGTERM stops it after recording its current run as KILLED and re-enqueueing that trial.
"""

from __future__ import annotations

import dataclasses
import sys
import time
import traceback
import zlib

import optuna
from optuna.trial import TrialState

from rnnbench import backend, credentials, names, processes, provenance, signals, tracking
from rnnbench.config import Config
from rnnbench.sweep import state, studies
from rnnbench.sweep.definition import Study, SweepDefinition, plan, reference_config, run_config
from rnnbench.sweep.pool import POLL_SECONDS
from rnnbench.sweep.space import short

PRUNERS = {
    "median": lambda search, every: optuna.pruners.MedianPruner(
        n_startup_trials=search.startup_trials, n_warmup_steps=search.pruner_warmup_evaluations * every
    ),
    "successive_halving": lambda search, every: optuna.pruners.SuccessiveHalvingPruner(min_resource=every),
    "none": lambda search, every: optuna.pruners.NopPruner(),
}


def suggest(trial: optuna.Trial, definition: SweepDefinition, study: Study | None) -> Config:
    """The one place an Optuna trial becomes a run configuration.

    A search trial (`study` given) gets the values of the searched settings from the sampler; a
    final run, or a reference run of the seed tutorial, has every parameter fixed when it was
    enqueued, and the same calls return those values.
    """
    search, grid = definition.search, definition.grid
    if study is None and trial.suggest_categorical("reference", (False, True)):
        return reference_config(definition, seed=trial.suggest_int("seed", 0, definition.final.seeds - 1))
    tuned = {dimension.key: dimension.suggest(trial) for dimension in definition.space}
    if study is not None:
        return run_config(
            definition,
            cell=study.cell,
            hidden_units=study.hidden_units,
            unroll=search.unroll,
            tuned=tuned,
            seed=search.seed,
        )
    config = run_config(
        definition,
        cell=trial.suggest_categorical("cell", grid.cells),
        hidden_units=trial.suggest_categorical("hidden_units", grid.hidden_units),
        unroll=trial.suggest_categorical("unroll", grid.unroll),
        tuned=tuned,
        seed=trial.suggest_int("seed", 0, definition.final.seeds - 1),
    )
    if is_timing(trial, definition):  # the first evaluation window only (rnnbench.sweep.unroll)
        return dataclasses.replace(config, train=dataclasses.replace(config.train, steps=config.train.eval_every_steps))
    return config


def is_timing(trial: optuna.Trial, definition: SweepDefinition) -> bool:
    """Whether a final-stage trial is a timing run. Sweeps that train every unroll setting enqueue no timing runs, and
    their trials carry no `timing` parameter (those started before timing runs existed among them)."""
    return not definition.final.train_every_unroll and trial.suggest_categorical("timing", (False, True))


class TrialSampler(optuna.samplers.BaseSampler):
    """TPE, seeded anew for each trial and parameter from the sweep's sampler seed, the study's name and the
    trial number (and for any searched key but the first, its name).

    One seed for every worker would make two workers propose the same values, and a seed per process
    would make a resumed sweep propose others than an uninterrupted one; one per trial does neither.
    The first searched key keeps the seed a sweep of the learning rate alone has always used, so such a
    sweep proposes the same values as before; the others get their own streams, so that their random
    start-up values are not the same quantiles as the first's. Parameters are sampled independently
    (TPE's default; no joint model).
    """

    def __init__(self, seed: int, study_name: str, startup_trials: int, keys: tuple[str, ...] = ()):
        self.seed, self.study_name, self.startup_trials = seed, study_name, startup_trials
        self.keys = keys

    def infer_relative_search_space(self, study, trial):
        return {}

    def sample_relative(self, study, trial, search_space):
        return {}

    def sample_independent(self, study, trial, param_name, param_distribution):
        tpe = optuna.samplers.TPESampler(
            seed=zlib.crc32(f"{self.seed}:{self.study_name}:{trial.number}{self._stream(param_name)}".encode()),
            n_startup_trials=self.startup_trials,
            constant_liar=True,  # trials running elsewhere count as mediocre, so workers spread out
        )
        return tpe.sample_independent(study, trial, param_name, param_distribution)

    def _stream(self, param_name: str) -> str:
        return "" if not self.keys or param_name == self.keys[0] else f":{param_name}"


class Abandoned(Exception):
    """Nothing is left for the worker to take, and no coordinator is following the sweep to queue its final runs."""


def work(sweep_name: str, storage_url: str | None, threads: int | None = None, sweep_file: SweepDefinition | None = None) -> int:
    """Runs the sweep's waiting trials until the sweep is complete; returns how many it ran.

    Args:
        sweep_name: the sweep's `sweep.name`.
        storage_url: the Optuna storage (None: the local journal under mlruns/); it must exist already.
        threads: CPU threads for training (None: all cores).
        sweep_file: the sweep as the worker's command line gives it, refused where it differs from the stored one.

    Raises:
        Abandoned: nothing is left to take, and the coordinator that queues the final runs is not running.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = studies.open_storage(storage_url, create=False)  # a mistyped path: one line, and no empty journal left
    definition = studies.load_definition(storage, sweep_name)
    if sweep_file is not None:
        studies.check_unchanged(definition.values(), sweep_file)
    tracking.open_store()  # a tracking server that does not answer stops the worker here, in one line
    sweep_plan = plan(definition)
    search = definition.search
    loaded = {}
    for study in [None, *sweep_plan.studies]:
        name = studies.study_name(definition, study)
        loaded[study] = optuna.load_study(
            study_name=name,
            storage=storage,
            sampler=TrialSampler(search.sampler_seed, name, search.startup_trials, tuple(d.key for d in definition.space)),
            pruner=PRUNERS[search.pruner](search, definition.train.eval_every_steps),
        )
    if state.sweep_complete(sweep_plan, loaded):  # a worker that comes late (a queued Slurm task): TensorFlow never loads
        return 0
    backend.load(definition.train.backend, threads)  # before anything imports Keras
    gpus = provenance.gpus(definition.train.backend)
    where = f"on {gpus}" if gpus != "none" else f"on the CPU, threads: {threads or 'all'}"
    print(f"worker {processes.this_process()} {where}", flush=True)  # the first line of its log
    from rnnbench.data import load_dataset

    dataset = load_dataset(definition.data)
    ran, last_study = 0, None
    while True:
        signals.raise_if_received()  # a stop whose exception Python dropped (see rnnbench.signals)
        for study, optuna_study in _in_order(loaded, last_study):
            studies.fail_dead_trials(optuna_study, state.close_dead_trial)
            trial = studies.take(optuna_study, storage_url)
            if trial is not None:
                _run_taken(definition, study, optuna_study, trial, dataset)
                ran, last_study = ran + 1, study or last_study
                break
        else:
            if state.sweep_complete(sweep_plan, loaded):
                return ran
            _check_followed(loaded, sweep_name)
            time.sleep(POLL_SECONDS)


def _check_followed(loaded: dict, sweep_name: str) -> None:
    """Raises Abandoned when no trial waits in any study and no coordinator is there to queue more."""
    if any(optuna_study.get_trials(deepcopy=False, states=(TrialState.WAITING,)) for optuna_study in loaded.values()):
        return
    gone = state.coordinator_gone(loaded[None])
    if gone:
        raise Abandoned(
            f"nothing is left to take in sweep '{sweep_name}', and {gone}, so no one queues its final runs; re-run "
            "`rnnbench sweep SWEEP_FILE` (same settings and --storage) to go on: it queues them and starts workers"
        )


def _in_order(loaded: dict, last_study: Study | None) -> list[tuple]:
    """Where a worker looks for work: final runs first (finished variants early), then the study it last took a
    trial from, then studies no worker is running, then the rest, each in the plan's order.

    So a study's trials mostly run one after another in one worker: it compiles the study's shape once, not
    once in every worker, and each trial's sampler and pruner see the trials before it finished, not running.
    A worker with nothing else to do still joins another's study, so no worker waits while trials do.
    """
    finals, *searches = loaded.items()

    def running(optuna_study) -> bool:
        return bool(optuna_study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))

    return [finals, *sorted(searches, key=lambda item: (item[0] != last_study, running(item[1])))]


def _run_taken(definition: SweepDefinition, study: Study | None, optuna_study: optuna.Study, trial: optuna.Trial, dataset):
    """Runs a taken trial and tells Optuna how it ended (COMPLETE, PRUNED or FAIL), with its MLflow run tagged to match.

    Once its run has ended on its own, how the trial ended is recorded whole, and a stop that comes meanwhile
    (or as the run was closed) is raised after; a stop during the run fails the trial and queues it again.
    """
    from rnnbench.runner import RunFailed, StopRun

    label = f"{studies.study_name(definition, study)} trial {trial.number}"
    record = {"run_id": None, "outcome": None}
    started = time.perf_counter()
    state, attributes, stopped = TrialState.FAIL, {}, None
    try:
        with studies.heartbeat(trial):
            _objective(trial, definition, study, dataset, record)
    except StopRun as stop:
        state, message = TrialState.PRUNED, str(stop)
    except RunFailed as failure:
        attributes = {names.FAILURE: failure.why, names.FAILURE_REASON: credentials.mask(str(failure))[:500]}
        message = f"FAILED ({failure.why}): {failure}"
    except KeyboardInterrupt as stop:
        if record["outcome"] is not None:  # its run had finished (the stop came as the heartbeat ended): a result
            stopped = stop
        else:  # the trial is owed: failed, and back in the queue with its parameters
            with signals.deferred(raise_earlier=False):
                failed = optuna_study.tell(trial, state=TrialState.FAIL)
                _tag_run(record["run_id"], TrialState.FAIL)
                studies.retry(optuna_study, failed, limit=None)
                print(f"{label}: stopped by {signals.describe(stop)}; re-enqueued", flush=True)
            raise
    except Exception as error:  # a lost run: the sweep fails, and re-running it retries the trial
        print(credentials.mask(traceback.format_exc()), file=sys.stderr, flush=True)
        attributes = {
            names.FAILURE: "error",
            names.FAILURE_REASON: credentials.mask(f"{type(error).__name__}: {error}")[:500],
        }
        message = credentials.mask(f"FAILED: {type(error).__name__}: {error}")
    value = None
    with signals.deferred(raise_earlier=False):
        if record["outcome"] is not None:
            value, attributes = _result(record["outcome"])
            state, message = TrialState.COMPLETE, f"{value:.4f}"
        for key, attribute in attributes.items():
            trial.set_user_attr(key, attribute)
        optuna_study.tell(trial, value, state=None if state == TrialState.COMPLETE else state)
        _tag_run(record["run_id"], state)
        searched = {dimension.key for dimension in definition.space}
        tuned = ", ".join(f"{short(key)} {value:.3g}" for key, value in trial.params.items() if key in searched)
        print(f"{label}: {message}  ({time.perf_counter() - started:.1f} s{', ' + tuned if tuned else ''})", flush=True)
    if stopped is not None:
        raise stopped


def _objective(trial: optuna.Trial, definition: SweepDefinition, study: Study | None, dataset, record: dict) -> None:
    """Trains the trial's run; its id goes into `record` once it exists, and its `RunOutcome` once it has finished."""
    from rnnbench.runner import StopRun, run_experiment

    config = suggest(trial, definition, study)
    reference = trial.params.get("reference", False)
    timing = trial.params.get("timing", False)
    stage = "trial" if study else "reference" if reference else "timing" if timing else "final"
    tags = {names.SWEEP: definition.sweep.name, names.TRIAL_NUMBER: str(trial.number)}
    if study is None:
        tags[names.VARIANT] = config.model.variant
    if not reference:
        tags[names.STUDY] = Study(config.model.cell, config.model.hidden_units).key

    def started(run_id, _dataset):
        record["run_id"] = run_id
        trial.set_user_attr(names.MLFLOW_RUN, run_id)

    def evaluated(evaluation):
        if study is None:
            return
        trial.report(evaluation.val_accuracy, evaluation.step)
        last = evaluation.step + config.train.eval_every_steps > config.train.steps
        if not last and trial.should_prune():  # a run that has finished training is a result: never pruned
            raise StopRun(
                "pruned",
                f"pruned at step {evaluation.step} with val/accuracy {evaluation.val_accuracy:.3f} "
                f"({definition.search.pruner} pruner)",
            )

    record["outcome"] = run_experiment(
        config,
        stage=stage,
        parent_run_id=trial.study.user_attrs.get(names.MLFLOW_RUN),  # the study's run, or for finals the sweep's
        run_name=(
            f"{study.key}-trial{trial.number}-" + "-".join(f"{short(key)}{value:.2e}" for key, value in trial.params.items())
            if study
            else f"reference-{tracking.run_name(config)}"
            if reference
            else f"timing-{tracking.run_name(config)}"
            if timing
            else None
        ),
        tags=tags,
        test=study is None and not timing,
        dataset=dataset,
        on_start=started,
        on_evaluation=evaluated,
        probe_start=study is None and not reference and config.train.seed == 0,  # what the unroll check compares
    )


def _result(outcome) -> tuple[float, dict]:
    """A finished run's objective value (a final or reference run's test accuracy, else its last validation
    accuracy) and the trial attributes that carry its speed and starting point."""
    attributes = {names.TRIAL_SAMPLES_PER_SECOND: outcome.result.speed.train_samples_per_second}
    if outcome.result.start is not None:
        attributes[names.STARTING_POINT] = outcome.result.start
    value = outcome.test.accuracy if outcome.test is not None else outcome.result.evaluations[-1].val_accuracy
    return value, attributes


def _tag_run(run_id: str | None, state: TrialState) -> None:
    """The trial's Optuna state on its MLflow run, so that either store tells how it ended."""
    if run_id:
        tracking.open_store().set_tag(run_id, names.TRIAL_STATE, state.name)
