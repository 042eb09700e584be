"""Where a sweep stands, read from its Optuna studies: complete or not, the totals, and dead trials closed.

    rnnbench sweep experiments/sweep_tiny.yaml      # the coordinator and every worker read these

Shared by the coordinator and the workers, so that neither imports the other.
"""

from __future__ import annotations

import dataclasses
import time

import mlflow
import optuna
from optuna.trial import TrialState

from rnnbench import names, processes, tracking
from rnnbench.sweep import studies, unroll
from rnnbench.sweep.definition import FinalRun, Plan, Study


@dataclasses.dataclass
class Totals(studies.Counts):
    planned: int = 0
    """Every run the sweep plans: trials, final runs and reference runs."""


def totals(sweep_plan: Plan, loaded) -> Totals:
    """The trials of every study counted together, with what the sweep plans (more where a model is trained in every
    unroll setting since its check found them to differ)."""
    final_trials = studies.live_trials(loaded[None].get_trials(deepcopy=False))
    extra = 0
    for study in sweep_plan.studies:
        owed = study_finals(sweep_plan, study, loaded[study], final_trials)
        extra += 0 if owed is None else len(owed) - len(sweep_plan.finals_of(study))
    summed = Totals(planned=sweep_plan.runs + extra)
    for optuna_study in loaded.values():
        counts = studies.count(optuna_study.get_trials(deepcopy=False))
        for field in dataclasses.fields(studies.Counts):
            setattr(summed, field.name, getattr(summed, field.name) + getattr(counts, field.name))
    return summed


def sweep_complete(sweep_plan: Plan, loaded: dict[Study | None, optuna.Study]) -> bool:
    """Every planned trial has finished, and every final run due (studies that are decided) too."""
    finals_due = len(sweep_plan.reference_seeds)
    final_trials = studies.live_trials(loaded[None].get_trials(deepcopy=False))
    for study in sweep_plan.studies:
        counts = studies.count(loaded[study].get_trials(deepcopy=False))
        if counts.finished < sweep_plan.trials_per_study:
            return False
        if counts.decided:
            owed = study_finals(sweep_plan, study, loaded[study], final_trials)
            if owed is None:  # its final runs are not enqueued yet
                return False
            finals_due += len(owed)
    return studies.count(loaded[None].get_trials(deepcopy=False)).finished >= finals_due


def trained_unroll(search_study: optuna.Study) -> bool | None:
    """The unroll setting the study's model is trained in, once the coordinator has chosen it (None before)."""
    return search_study.user_attrs.get(names.TRAINED_UNROLL)


def study_finals(sweep_plan: Plan, study: Study, search_study: optuna.Study, final_trials) -> tuple[FinalRun, ...] | None:
    """The final runs `study` owes now (every unroll setting in full where its check says so); None while its setting is
    not chosen, i.e. its final runs are not enqueued yet."""
    trained = trained_unroll(search_study)
    if trained is None:
        return None
    verdict = unroll.check(sweep_plan, study, trained, final_trials)
    return sweep_plan.finals_of(study, trained, differ=verdict.trains_every_setting)


def close_dead_trial(optuna_study: optuna.Study, trial) -> None:
    """A trial found dead: its MLflow run closed as KILLED (if still open), and the trial retried.

    A worker killed between creating the run and recording its id on the trial leaves no id: its run is
    found by the worker's identity and the trial's number, both tagged on the run when it was created.
    """
    client = tracking.open_store()
    worker = trial.user_attrs.get(names.TRIAL_WORKER)
    run_ids = [trial.user_attrs[names.MLFLOW_RUN]] if trial.user_attrs.get(names.MLFLOW_RUN) else []
    if not run_ids and worker:
        found = mlflow.search_runs(
            search_all_experiments=True,
            output_format="list",
            filter_string=f"attributes.status = 'RUNNING' and tags.`{names.PROCESS}` = '{worker}' "
            f"and tags.`{names.TRIAL_NUMBER}` = '{trial.number}'",
        )
        run_ids = [run.info.run_id for run in found]
    for run_id in run_ids:
        if client.get_run(run_id).info.status == "RUNNING":
            tracking.end_run(client, run_id, "KILLED", failure="worker_died", reason=f"worker {worker or 'unknown'} died")
            client.set_tag(run_id, names.TRIAL_STATE, TrialState.FAIL.name)
    studies.retry(optuna_study, trial)


def sign_coordinator(final_study: optuna.Study, present: bool = True) -> None:
    """Records this process as the sweep's coordinator (with a heartbeat), or, with `present=False`, that it stopped."""
    final_study.set_user_attr(names.COORDINATOR, processes.this_process() if present else "")
    final_study.set_user_attr(names.COORDINATOR_HEARTBEAT, time.time())


def other_coordinator(final_study: optuna.Study) -> str | None:
    """The process (host:pid) of another coordinator that still follows the sweep; None when none does."""
    owner = final_study.user_attrs.get(names.COORDINATOR)
    if not owner or owner == processes.this_process() or coordinator_gone(final_study):
        return None
    return owner


def coordinator_gone(final_study: optuna.Study) -> str | None:
    """Why no coordinator is following the sweep (it stopped, or its process or heartbeat is gone); None while one is.

    Only a coordinator queues final runs (Optuna's `enqueue_trial(skip_if_exists=True)` is not atomic across
    processes, so two queuers could each add the same final run); a worker with nothing left to take asks this.
    """
    attributes = final_study.user_attrs
    owner = attributes.get(names.COORDINATOR)
    if not owner:
        return "its coordinator has stopped" if owner == "" else "no coordinator has recorded itself"
    return f"its coordinator {owner} is gone" if studies.owner_gone(owner, attributes.get(names.COORDINATOR_HEARTBEAT)) else None
