"""A sweep's MLflow runs of its own: the sweep's run and one per study, created once, reopened when the sweep is run
again, and closed when it ends, stops or fails (the runs of its trials and final runs are the workers').

The coordinator (`rnnbench.sweep.coordinator`) calls these as it plans, follows and ends a sweep.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Iterable

import optuna

from rnnbench import names, processes, tracking
from rnnbench.sweep import state, studies
from rnnbench.sweep.definition import Plan, Study, SweepDefinition
from rnnbench.sweep.space import values_of

EXIT_LOST = 1
"""The exit code of a sweep that ended with planned runs lost (failed for another reason than divergence)."""


def close_sweep(client, definition: SweepDefinition, sweep_plan: Plan, loaded, run_id: str) -> int:
    """The sweep's run FINISHED, or FAILED with the count of lost runs and the first of each study; the exit code."""
    lost = {study: studies.lost_trials(optuna_study.get_trials(deepcopy=False)) for study, optuna_study in loaded.items()}
    count = sum(len(trials) for trials in lost.values())
    if count == 0:
        tracking.end_run(client, run_id, "FINISHED")
        return 0
    examples = "; ".join(
        f"{studies.study_name(definition, study)} trial {trial.number}: "
        f"{trial.user_attrs.get(names.FAILURE_REASON) or 'no reason recorded: its worker died, again and again?'}"
        for study, trials in lost.items()
        for trial in trials[:1]
    )
    reason = (
        f"{count} of {sweep_plan.runs} planned runs failed ({examples}); re-run the same command to retry "
        "them (the worker logs in mlruns/logs/ have the details)"
    )
    tracking.log_metrics(client, run_id, {names.RUNS_LOST: count}, step=0)
    tracking.end_run(client, run_id, "FAILED", failure="runs_lost", reason=reason)
    print(f"rnnbench: error: {reason}", file=sys.stderr)
    return EXIT_LOST


def prepare(client, definition: SweepDefinition, sweep_plan: Plan, loaded, parents: dict[Study | None, str]) -> None:
    """The sweep's and each study's MLflow run (created once, reopened on a re-run), and the enqueued trials."""
    parents[None] = reopen(client, loaded[None]) or tracking.start_parent_run(
        client,
        definition.sweep.name,
        name=definition.sweep.name,
        stage="sweep",
        params={
            **{
                key: ",".join(map(str, value)) if isinstance(value, list) else value
                for key, value in definition.values().items()
                if key not in definition.set_by_the_sweep() and not key.startswith("space.")
            },
            **{f"space.{dimension.key}": dimension.describe() for dimension in definition.space},
            "space": ",".join(dimension.key for dimension in definition.space),  # the declared order
            "plan.studies": len(sweep_plan.studies),
            "plan.trials": sweep_plan.trials,
            "plan.final_runs": len(sweep_plan.final_runs),
            "plan.reference_runs": len(sweep_plan.reference_seeds),
            "plan.timing_runs": sum(run.timing for run in sweep_plan.final_runs),
        },
        tags={names.SWEEP: definition.sweep.name},
    )
    loaded[None].set_user_attr(names.MLFLOW_RUN, parents[None])
    for seed in sweep_plan.reference_seeds:
        studies.enqueue(loaded[None], {"reference": True, "seed": seed}, skip_if_exists=True)
    retried = 0
    for optuna_study in loaded.values():  # runs lost last time are owed: retried first
        for trial in studies.lost_trials(optuna_study.get_trials(deepcopy=False)):
            studies.retry(optuna_study, trial, limit=None)
            if trial.user_attrs.get(names.MLFLOW_RUN):
                client.set_tag(trial.user_attrs[names.MLFLOW_RUN], names.RETRIED, "true")
            retried += 1
    if retried:
        print(f"retrying {retried} run(s) that failed last time", flush=True)
    search = definition.search
    for study in sweep_plan.studies:
        optuna_study = loaded[study]
        run_id = reopen(client, optuna_study)
        if run_id is None:
            run_id = parents[study] = tracking.start_parent_run(  # in parents first: closed even if the storage fails next
                client,
                definition.sweep.name,
                name=study.key,
                stage="study",
                parent_run_id=parents[None],
                params={
                    "model.cell": study.cell,
                    "model.hidden_units": study.hidden_units,
                    "model.unroll": search.unroll,
                    **{f"search.{key}": value for key, value in dataclasses.asdict(search).items()},
                    **{
                        f"train.{key}": value
                        for key, value in dataclasses.asdict(definition.train).items()
                        if f"train.{key}" not in definition.set_by_the_sweep()
                    },
                    **{f"space.{dimension.key}": dimension.describe() for dimension in definition.space},
                    "data.source": definition.data.source,
                    "optuna.study": optuna_study.study_name,
                },
                tags={names.SWEEP: definition.sweep.name, names.STUDY: study.key},
            )
            optuna_study.set_user_attr(names.MLFLOW_RUN, run_id)
        parents[study] = run_id
        studies.enqueue_search_trials(optuna_study, sweep_plan.trials_per_study)  # dead trials count: they are retried


def reopen(client, optuna_study: optuna.Study) -> str | None:
    """The MLflow run recorded with the study, back to RUNNING (owned by this process) if a stopped or
    failed sweep left it unfinished."""
    run_id = optuna_study.user_attrs.get(names.MLFLOW_RUN)
    if run_id is None:
        return None
    run = client.get_run(run_id)
    if run.info.status != "FINISHED":
        client.update_run(run_id, status="RUNNING")  # resumed
        client.set_tag(run_id, names.PROCESS, processes.this_process())
        for key in (names.FAILURE, names.FAILURE_REASON):  # why it stopped last time is no longer true
            if key in run.data.tags:
                client.delete_tag(run_id, key)
    return run_id


def close_study(client, definition: SweepDefinition, run_id: str, counts: studies.Counts, best) -> None:
    metrics = {names.TRIALS_COMPLETE: counts.complete, names.TRIALS_PRUNED: counts.pruned, names.TRIALS_FAILED: counts.failed}
    failed = None
    if counts.lost:
        failed = (
            "trials_lost",
            f"{counts.lost} trial(s) failed with an error: its final runs wait until a re-run of the sweep has retried them",
        )
    elif best is None:
        failed = "no_trial_completed", "no trial completed: its final runs are skipped; widen the ranges of space:"
    if failed:
        tracking.log_metrics(client, run_id, metrics, step=0)
        tracking.end_run(client, run_id, "FAILED", failure=failed[0], reason=failed[1])
        return
    metrics.update({names.best_value(key): value for key, value in values_of(definition.space, best.params).items()})
    metrics[names.BEST_VAL_ACCURACY] = best.value
    tracking.log_metrics(client, run_id, metrics, step=0)
    client.set_tag(run_id, names.BEST_TRIAL, str(best.number))
    tracking.end_run(client, run_id, "FINISHED")


def close_unfinished(client, loaded, parents: dict[Study | None, str], status: str, failure: str, reason: str) -> None:
    """After an interruption or a failure: open sweep and study runs closed (KILLED or FAILED, saying why), dead trials
    failed and retried, and the coordinator signed off. Each step on its own, as far as the stores still take writes:
    after a full journal disk, the MLflow runs are still closed."""
    close_open(client, parents.values(), status, failure, reason)
    with contextlib.suppress(Exception):
        for optuna_study in loaded.values():  # our workers have exited: no trial is being taken
            studies.fail_dead_trials(optuna_study, state.close_dead_trial, min_age_seconds=0)
    with contextlib.suppress(Exception):
        state.sign_coordinator(loaded[None], present=False)


def close_open(client, run_ids: Iterable[str], status: str, failure: str, reason: str) -> None:
    """Each of the runs still open (RUNNING, or SCHEDULED on Slurm) closed with `status`, saying why; each on its own, as
    far as the store still takes writes."""
    for run_id in run_ids:
        with contextlib.suppress(Exception):
            if client.get_run(run_id).info.status in ("RUNNING", "SCHEDULED"):
                tracking.end_run(client, run_id, status, failure=failure, reason=reason)
