"""The Optuna side of a sweep: its storage, its studies, taking work, and trials of dead workers.

    rnnbench worker experiments/sweep.yaml --storage postgresql://host/db   # takes work through here

Each (cell, hidden size) is a study `<sweep>:<cell>-h<units>` whose planned trials are enqueued
up front (empty parameters: the sampler proposes the learning rate when a worker takes one).
The final runs are trials of the study `<sweep>:final` enqueued with every parameter fixed.
Workers take work through Optuna's public ask-and-tell interface (`take`: `Study.ask` moves the first
WAITING trial to RUNNING; `Study.tell` records how it ended), so every storage Optuna supports works
and no process keeps a hand-made queue. A trial whose worker died is
failed and re-enqueued by Optuna's `RetryHeartbeatStaleTrialCallback`, so the plan's count of
finished trials always excludes the dead ones.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import errno
import json
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from rnnbench import names, probes, processes, tracking
from rnnbench.errors import UserError
from rnnbench.sweep.definition import Plan, Study, SweepDefinition, build_definition, stored_values
from rnnbench.sweep.journal import JournalFile

# Optuna's retry callback is marked experimental; it is the library's way to do this.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

DEFAULT_STORAGE = tracking.DEFAULT_STORE / "optuna.journal"
"""Studies of the local sweeps: an Optuna journal file, safe for many processes on one machine."""


MAX_RETRIES = 3
"""Retries of a trial whose worker died or was interrupted, before it counts as failed."""
YOUNG_TRIAL_SECONDS = 10
"""A trial taken this recently is never declared dead: its worker may not have signed it yet."""
HEARTBEAT_SECONDS, GRACE_SECONDS = 60, 600
"""A running trial's worker beats every minute; a worker on another machine silent for 10 minutes is dead."""
RETRY_SECONDS = 60
"""A trial failed as its worker died or was interrupted is re-enqueued by whoever failed it, after closing its MLflow run;
until then, for at most this long, it counts as running, so that no other process takes the sweep for complete."""
CONNECT_SECONDS = 10
"""PostgreSQL and MySQL: how long to wait for the database server to accept a connection."""

DeadTrialHandler = Callable[[optuna.Study, FrozenTrial], None]


def open_storage(url: str | None, create: bool = True) -> optuna.storages.BaseStorage:
    """The sweep storage: `url` (an Optuna RDB URL, or a journal file path), else the local journal.

    Args:
        url: e.g. postgresql://user@host/db, sqlite:///studies.db, or a path like mlruns/optuna.journal.
        create: create a journal or SQLite file that does not exist (a worker joins one that does).
    """
    if not url:
        url = str(DEFAULT_STORAGE)
    journal = Path(url) if "://" not in url else None
    local = journal or tracking.sqlite_path(url)
    if not create and local is not None and not local.exists():
        raise UserError(
            f"no sweep storage {local}: start the sweep first (`rnnbench sweep SWEEP_FILE --storage {url or local}`), "
            "or give the storage the sweep was started with (--storage, or RNNBENCH_STORAGE)"
        )
    if local is not None and local.is_dir():
        raise UserError(f"the sweep storage {local} is a directory; give --storage a file path or an RDB URL")
    if journal is not None:
        return _journal(journal)
    if probes.is_database(url):  # a server down or silent: one line within seconds, before Optuna tries
        probes.probe_database(url, "the Optuna storage", "or give --storage a journal file path")
    # A database server that does not answer fails in seconds, not after the system's TCP time-out.
    timeout = {"connect_args": {"connect_timeout": CONNECT_SECONDS}} if url.startswith(("postgresql", "mysql")) else {}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=timeout)
    except Exception as error:  # a bad URL, a missing driver, an unreachable server
        first_line = str(error).strip().splitlines()[0].rstrip(".") if str(error).strip() else type(error).__name__
        raise UserError(
            f"cannot open the Optuna storage {url}: {first_line}. Expected an Optuna RDB URL such as "
            "postgresql://user@host/db (with its driver installed) or a journal file path"
        ) from None


def _journal(path: Path) -> optuna.storages.JournalStorage:
    """The journal file at `path`, refused at once (not at the first write) where it cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if os.access(path.parent, os.W_OK) and (not path.exists() or os.access(path, os.W_OK)):
            backend = JournalFile(path)
            if backend.repaired:
                print(f"rnnbench: {backend.repaired}", file=sys.stderr, flush=True)
            return optuna.storages.JournalStorage(backend)
        reason = "it is read-only"
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise  # told as a full disk, naming the journal (rnnbench.faults)
        reason = error.strerror or str(error)
    raise UserError(
        f"cannot write the Optuna journal {path}: {reason}; make its folder writable, "
        "or pass --storage with another journal path or an RDB URL"
    )


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
    return build_definition(json.loads(study.user_attrs[names.STUDY_DEFINITION]))


def check_unchanged(stored: dict, definition: SweepDefinition) -> None:
    """Refuses `definition` (from a sweep file and overrides) where its settings differ from those the sweep was
    started with (`stored`, as kept with its studies), naming each difference."""
    before, now = stored_values(json.loads(json.dumps(stored))), json.loads(json.dumps(definition.values()))  # as JSON keeps them
    if before != now:
        raise UserError(_changed_settings(definition.sweep.name, before, now))


def create_studies(storage, definition: SweepDefinition, plan: Plan) -> dict[Study | None, optuna.Study]:
    """Creates the sweep's studies, or loads them, refusing to continue a sweep defined differently."""
    stored = json.dumps(definition.values(), sort_keys=True)
    studies = {}
    for study in [None, *plan.studies]:
        name = study_name(definition, study)
        created = optuna.create_study(storage=storage, study_name=name, direction="maximize", load_if_exists=True)
        before = created.user_attrs.get(names.STUDY_DEFINITION)
        if before is None:
            created.set_user_attr(names.STUDY_DEFINITION, stored)
        else:
            check_unchanged(json.loads(before), definition)
        studies[study] = created
    return studies


def enqueue_search_trials(optuna_study: optuna.Study, planned: int) -> None:
    """Tops the study up to `planned` trials that are waiting, running or finished (dead ones aside)."""
    missing = planned - len(live_trials(optuna_study.get_trials(deepcopy=False)))
    for _ in range(missing):
        enqueue(optuna_study, {})  # the sampler proposes the searched values when the trial starts


def enqueue(optuna_study: optuna.Study, params: dict, skip_if_exists: bool = False) -> None:
    """Adds a planned trial to the study's queue (a worker takes it with `take`)."""
    optuna_study.enqueue_trial(params, user_attrs={names.TRIAL_PLANNED: True}, skip_if_exists=skip_if_exists)


def live_trials(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """The trials that count: all but those that died and were re-enqueued as a retry, and unplanned ones."""
    superseded = {number for trial in trials for number in RetryHeartbeatStaleTrialCallback.retry_history(trial)}
    return [trial for trial in trials if trial.number not in superseded and not trial.user_attrs.get(names.TRIAL_UNPLANNED)]


def lost_trials(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """Planned trials that failed for a reason other than a diverged loss, and are not being retried: runs the sweep owes."""
    return [
        trial
        for trial in live_trials(trials)
        if trial.state == TrialState.FAIL and trial.user_attrs.get(names.FAILURE) != "diverged" and not _retry_due(trial)
    ]


def _retry_due(trial: FrozenTrial) -> bool:
    """A trial failed by another process because its worker died or was interrupted (no failure of its own recorded),
    under the retry limit, less than RETRY_SECONDS ago, and not retried yet (`live_trials`): its retry is on its way."""
    return (
        trial.state == TrialState.FAIL
        and names.FAILURE not in trial.user_attrs
        and len(RetryHeartbeatStaleTrialCallback.retry_history(trial)) < MAX_RETRIES
        and _seconds_since(trial.datetime_complete) < RETRY_SECONDS
    )


@dataclasses.dataclass
class Counts:
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    running: int = 0
    waiting: int = 0
    lost: int = 0
    """Of the failed: those that failed for another reason than a diverged loss (`lost_trials`)."""

    @property
    def finished(self) -> int:
        return self.complete + self.pruned + self.failed

    @property
    def decided(self) -> bool:
        """A finished study has a best learning rate for its final runs: a trial completed, and none was lost
        (a lost trial might have been the best; re-running the sweep retries it first)."""
        return self.complete > 0 and self.lost == 0


def count(trials: list[FrozenTrial]) -> Counts:
    counts = Counts(lost=len(lost_trials(trials)))
    fields = {
        TrialState.COMPLETE: "complete",
        TrialState.PRUNED: "pruned",
        TrialState.FAIL: "failed",
        TrialState.RUNNING: "running",
        TrialState.WAITING: "waiting",
    }
    for trial in live_trials(trials):
        field = fields[TrialState.RUNNING if _retry_due(trial) else trial.state]  # being retried: still owed
        setattr(counts, field, getattr(counts, field) + 1)
    return counts


def take(optuna_study: optuna.Study, storage_url: str | None) -> optuna.Trial | None:
    """The next WAITING trial of the study, now RUNNING for this process; None if none waits.

    `Study.ask` takes the first WAITING trial, and the journal and server databases make that move
    atomic. SQLite does not (it reads the state before it locks, so two processes can both take a
    trial: measured, 4 processes on 60 trials ran one twice), so there a lock file beside the
    database makes takers on this machine queue for it. Where the queue empties between the look and
    the ask, `ask` makes a new trial: it is failed at once, marked names.TRIAL_UNPLANNED, and None is returned.
    """
    with tracking.sqlite_lock(storage_url, "take"):
        trials = optuna_study.get_trials(deepcopy=False)
        if not any(queued.state == TrialState.WAITING for queued in trials):
            return None
        trial = optuna_study.ask()
    # A trial that existed before the ask was queued (also by rnnbench versions before the names.TRIAL_PLANNED attribute).
    if trial.user_attrs.get(names.TRIAL_PLANNED) or trial.number < len(trials):
        trial.set_user_attr(names.TRIAL_WORKER, processes.this_process())
        return trial
    trial.set_user_attr(names.TRIAL_UNPLANNED, True)
    optuna_study.tell(trial, state=TrialState.FAIL)
    return None


@contextlib.contextmanager
def heartbeat(trial: optuna.Trial):
    """While inside: the trial's names.TRIAL_HEARTBEAT attribute is renewed every HEARTBEAT_SECONDS, from a thread."""
    stop = threading.Event()

    def beat():
        while True:
            with contextlib.suppress(Exception):  # a storage that hiccups: the next beat tries again
                trial.set_user_attr(names.TRIAL_HEARTBEAT, time.time())
            if stop.wait(HEARTBEAT_SECONDS):
                return

    thread = threading.Thread(target=beat, name="rnnbench-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def fail_dead_trials(optuna_study: optuna.Study, on_dead_trial: DeadTrialHandler, min_age_seconds: float | None = None) -> int:
    """Fails (and, through `on_dead_trial`, retries) RUNNING trials whose worker is gone; returns how many.

    Dead means: the worker recorded on the trial ran on this machine and its process no longer
    exists; or it ran on another machine and its heartbeat is older than GRACE_SECONDS; or no worker
    signed the trial within `min_age_seconds` (YOUNG_TRIAL_SECONDS) of its start.
    """
    min_age_seconds = YOUNG_TRIAL_SECONDS if min_age_seconds is None else min_age_seconds
    found = 0
    for trial in optuna_study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if _seconds_since(trial.datetime_start) < min_age_seconds or not _worker_gone(trial):
            continue
        try:
            failed = optuna_study.tell(trial.number, state=TrialState.FAIL)
        except (optuna.exceptions.UpdateFinishedTrialError, ValueError):
            continue  # another process failed it first
        on_dead_trial(optuna_study, failed)
        found += 1
    return found


def _worker_gone(trial: FrozenTrial) -> bool:
    worker = trial.user_attrs.get(names.TRIAL_WORKER)
    return worker is None or owner_gone(worker, trial.user_attrs.get(names.TRIAL_HEARTBEAT))


def owner_gone(owner: str, last_beat: float | None) -> bool:
    """Whether the process `owner` (`processes.this_process()` as it recorded itself) is gone: on this machine, its
    process has exited; on another, its heartbeat (`last_beat`, seconds since the epoch) is older than GRACE_SECONDS."""
    if processes.host_of(owner) == processes.host_of(processes.this_process()):
        return processes.is_gone(owner)
    return last_beat is not None and time.time() - last_beat > GRACE_SECONDS


def retry(optuna_study: optuna.Study, trial: FrozenTrial, limit: int | None = MAX_RETRIES) -> None:
    """Re-enqueues a dead, interrupted or lost trial with its parameters (Optuna's own retry callback).

    Args:
        limit: retries after which a trial is left failed (a worker that dies on it each time);
            None for retries a person asked for (an interruption, a re-run of the sweep).
    """
    RetryHeartbeatStaleTrialCallback(max_retry=limit)(optuna_study, trial)


def _seconds_since(moment: datetime.datetime | None) -> float:
    if moment is None:
        return 0.0
    now = datetime.datetime.now(moment.tzinfo)  # the journal stores UTC, RDB storages local time
    return (now - moment).total_seconds()


def _changed_settings(sweep: str, before: dict, now: dict) -> str:
    changes = [
        f"{key}: {before.get(key)!r} -> {now.get(key)!r}"
        for key in sorted(set(before) | set(now))
        if before.get(key) != now.get(key)
    ]
    every_unroll = "final.train_every_unroll"
    hint = (
        f" (add {every_unroll}={str(before[every_unroll]).lower()})" if before.get(every_unroll) != now.get(every_unroll) else ""
    )
    return (
        f"sweep '{sweep}' already exists in this storage with other settings ({'; '.join(changes)}); "
        f"re-run it with its original settings to resume it{hint}, or start a new one with sweep.name=NEW_NAME"
    )
