"""The Optuna side of a sweep: its storage, its studies, claiming work, and trials of dead workers.

    rnnbench worker experiments/sweep.yaml --storage postgresql://host/db   # claims work through here

Each (cell, hidden size) is a study `<sweep>:<cell>-h<units>` whose planned trials are enqueued
up front (empty parameters: the sampler proposes the learning rate when a worker claims one).
The final runs are trials of the study `<sweep>:final` enqueued with every parameter fixed.
Work is claimed by moving a WAITING trial to RUNNING, which the storage does atomically, so any
number of processes can share a sweep without a hand-made queue. A trial whose worker died is
failed and re-enqueued by Optuna's `RetryHeartbeatStaleTrialCallback`, so the plan's count of
finished trials always excludes the dead ones.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import socket
import warnings
from pathlib import Path
from typing import Callable

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from rnnbench.config import flat
from rnnbench.errors import UserError
from rnnbench.sweep_config import Plan, Study, SweepDefinition, build_definition

# The heartbeat and retry helpers are marked experimental; they are the library's way to do this.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

DEFAULT_STORAGE = Path("mlruns") / "optuna.journal"
"""Studies of the local sweeps: an Optuna journal file, safe for many processes on one machine."""

DEFINITION = "rnnbench.definition"
"""Study attribute: the resolved sweep definition, so that workers and re-runs use the same one."""
MLFLOW_RUN = "mlflow_run_id"
"""Trial and study attribute: the MLflow run recording it (the study's parent run)."""
WORKER = "rnnbench.worker"
"""Trial attribute: host:pid of the process running it, to tell a dead worker from a slow one."""

MAX_RETRIES = 3
"""Retries of a trial whose worker died or was interrupted, before it counts as failed."""
YOUNG_TRIAL_SECONDS = 10
"""A trial claimed this recently is never declared dead: its worker may not have signed it yet."""
HEARTBEAT_SECONDS, GRACE_SECONDS = 60, 600
"""RDB storages only: trials beat at every evaluation; silent for 10 minutes means dead."""

DeadTrialHandler = Callable[[optuna.Study, FrozenTrial], None]


def open_storage(url: str | None, on_dead_trial: DeadTrialHandler) -> optuna.storages.BaseStorage:
    """The sweep storage: `url` (an Optuna RDB URL, or a journal file path), else the local journal.

    Args:
        url: e.g. postgresql://user@host/db, sqlite:///studies.db, or a path like mlruns/optuna.journal.
        on_dead_trial: called once with each trial found dead (to close its MLflow run); it retries it.
    """
    if url is None or "://" not in url:
        path = Path(url) if url else DEFAULT_STORAGE
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    try:
        return optuna.storages.RDBStorage(
            url,
            heartbeat_interval=HEARTBEAT_SECONDS,
            grace_period=GRACE_SECONDS,
            heartbeat_stale_trial_callback=lambda study, trial: on_dead_trial(study, trial),
        )
    except Exception as error:  # a bad URL, a missing driver, an unreachable server
        first_line = str(error).strip().splitlines()[0].rstrip(".") if str(error).strip() else type(error).__name__
        raise UserError(
            f"cannot open the Optuna storage {url}: {first_line}. Expected an Optuna RDB URL such as "
            "postgresql://user:password@host/db (with its driver installed) or a journal file path"
        ) from None


def study_name(definition: SweepDefinition, study: Study | None) -> str:
    """`<sweep>:<cell>-h<units>` for a search study, `<sweep>:final` for the final runs."""
    return f"{definition.sweep.name}:{study.key if study else 'final'}"


def load_definition(storage, sweep_name: str) -> SweepDefinition:
    """The definition a sweep was started with, as stored with its final study."""
    try:
        study = optuna.load_study(study_name=f"{sweep_name}:final", storage=storage)
    except KeyError:
        raise UserError(
            f"no sweep '{sweep_name}' in this Optuna storage; start it with `rnnbench sweep SWEEP_FILE` "
            "(with the same --storage), then add workers"
        ) from None
    return build_definition(json.loads(study.user_attrs[DEFINITION]))


def create_studies(storage, definition: SweepDefinition, plan: Plan) -> dict[Study | None, optuna.Study]:
    """Creates the sweep's studies, or loads them, refusing to continue a sweep defined differently."""
    stored = json.dumps(flat(definition), sort_keys=True)
    studies = {}
    for study in [None, *plan.studies]:
        name = study_name(definition, study)
        created = optuna.create_study(storage=storage, study_name=name, direction="maximize", load_if_exists=True)
        before = created.user_attrs.get(DEFINITION)
        if before is None:
            created.set_user_attr(DEFINITION, stored)
        elif before != stored:
            raise UserError(_changed_settings(definition.sweep.name, json.loads(before), json.loads(stored)))
        studies[study] = created
    return studies


def enqueue_search_trials(optuna_study: optuna.Study, planned: int) -> None:
    """Tops the study up to `planned` trials that are waiting, running or finished (dead ones aside)."""
    missing = planned - len(live_trials(optuna_study.get_trials(deepcopy=False)))
    for _ in range(missing):
        optuna_study.enqueue_trial({})  # the sampler proposes the learning rate when the trial starts


def live_trials(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """The trials that count: all but those that died and were re-enqueued as a retry."""
    superseded = {number for trial in trials for number in RetryHeartbeatStaleTrialCallback.retry_history(trial)}
    return [trial for trial in trials if trial.number not in superseded]


@dataclasses.dataclass
class Counts:
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    running: int = 0
    waiting: int = 0

    @property
    def finished(self) -> int:
        return self.complete + self.pruned + self.failed


def count(trials: list[FrozenTrial]) -> Counts:
    counts = Counts()
    names = {
        TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed",
        TrialState.RUNNING: "running", TrialState.WAITING: "waiting",
    }
    for trial in live_trials(trials):
        setattr(counts, names[trial.state], getattr(counts, names[trial.state]) + 1)
    return counts


def claim(optuna_study: optuna.Study) -> FrozenTrial | None:
    """Moves one WAITING trial to RUNNING for this process and returns it, or None if none wait.

    The storage makes the move atomic: of two processes claiming the same trial, one gets it.
    """
    storage = optuna_study._storage
    for trial in optuna_study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if storage.set_trial_state_values(trial._trial_id, state=TrialState.RUNNING):
                return trial
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    return None


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def fail_dead_trials(optuna_study: optuna.Study, on_dead_trial: DeadTrialHandler, min_age_seconds: float | None = None) -> int:
    """Fails (and, through `on_dead_trial`, retries) RUNNING trials whose worker is gone; returns how many.

    Dead means: the worker recorded on the trial ran on this machine and its process no longer
    exists, or no worker signed the trial within `min_age_seconds` (YOUNG_TRIAL_SECONDS) of its
    start. On an RDB storage Optuna's heartbeat also catches workers that died on other machines.
    """
    storage = optuna_study._storage
    min_age_seconds = YOUNG_TRIAL_SECONDS if min_age_seconds is None else min_age_seconds
    found = 0
    for trial in optuna_study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if _age_seconds(trial) < min_age_seconds:
            continue
        worker = trial.user_attrs.get(WORKER)
        if worker is not None and _alive(worker):
            continue
        try:
            if storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                on_dead_trial(optuna_study, storage.get_trial(trial._trial_id))
                found += 1
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another process failed it first
    optuna.storages.fail_stale_trials(optuna_study)  # RDB heartbeat; a no-op for the journal
    return found


def retry(optuna_study: optuna.Study, trial: FrozenTrial) -> None:
    """Re-enqueues a dead or interrupted trial with its parameters (Optuna's own retry callback)."""
    RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)(optuna_study, trial)


def _age_seconds(trial: FrozenTrial) -> float:
    started = trial.datetime_start
    if started is None:
        return 0.0
    now = datetime.datetime.now(started.tzinfo)  # the journal stores UTC, RDB storages local time
    return (now - started).total_seconds()


def _alive(worker: str) -> bool:
    """True unless `worker` (host:pid) ran on this machine and its process has exited."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname():
        return True  # another machine's worker: only a heartbeat (RDB storages) can tell
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


def _changed_settings(sweep: str, before: dict, now: dict) -> str:
    changes = [f"{key}: {before.get(key)!r} -> {now.get(key)!r}" for key in sorted(set(before) | set(now)) if before.get(key) != now.get(key)]
    return (
        f"sweep '{sweep}' already exists in this storage with other settings ({'; '.join(changes)}); "
        f"re-run it with its original settings to resume it, or start a new one with sweep.name=NEW_NAME"
    )
