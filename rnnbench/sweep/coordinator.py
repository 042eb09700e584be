"""The sweep coordinator: plans a sweep into Optuna studies and MLflow runs, starts workers, follows them.

    rnnbench sweep experiments/sweep.yaml --workers 2
    rnnbench sweep experiments/sweep_tiny.yaml train.steps=200 --dry-run

Stage 1 trials (and the seed tutorial's reference runs) are enqueued up front; when a study has
finished all its trials, the coordinator closes its MLflow parent run with the best tuned values
and enqueues that study's final runs as Optuna trials with fixed parameters. In MLflow, one run of
the sweep holds its settings; the study runs (with their trials) and the final runs nest under it.
The workers (`rnnbench.sweep.worker`) do the training, in their own processes, so this process never
loads TensorFlow. Everything lives in the two stores, so a
re-run of the same command after Ctrl-C, `kill -9` or a crash does only what is missing.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

import optuna

from rnnbench import credentials, faults, names, probes, signals, tracking
from rnnbench.data import split_sizes
from rnnbench.errors import UserError
from rnnbench.links import Links, ui_url
from rnnbench.sweep import devices, estimate, runs, state, studies, unroll
from rnnbench.sweep.definition import FinalRun, Plan, Study, SweepDefinition, plan
from rnnbench.sweep.pool import POLL_SECONDS, Progress, Workers
from rnnbench.sweep.space import values_of


class Followed(UserError):
    """Another coordinator, alive, follows the sweep already."""

    def __init__(self, name: str, owner: str):
        self.name, self.owner = name, owner
        super().__init__(
            f"sweep '{name}' is already followed by its coordinator {owner}; add workers with `rnnbench worker {name}` "
            f"(the same --storage), or stop that coordinator first (one on another machine that died counts as gone "
            f"{studies.GRACE_SECONDS // 60} minutes after its last heartbeat)"
        )


def run_sweep(
    definition: SweepDefinition, storage_url: str | None, workers: int, closing_summary: Callable[[str], str] | None = None
) -> int:
    """Runs (or resumes) the sweep with `workers` local worker processes; returns the exit code:
    0 done, runs.EXIT_LOST when planned runs failed (re-running retries them), 130 or 143 when stopped.

    Args:
        closing_summary: the text printed when the sweep ends or is stopped, from its experiment's name (the command
            line passes the report's leaderboard as text, `rnnbench.report.summary.final_runs`).
    """
    sweep_plan = plan(definition)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage_url = storage_url or str(studies.DEFAULT_STORAGE.resolve())
    # A database storage is tried first (a server down is one line within seconds); a journal or SQLite file is made only
    # once the tracking store has opened, so that a tracking store that fails leaves no new storage file behind.
    storage = studies.open_storage(storage_url) if probes.is_database(storage_url) else None
    client = tracking.open_store()
    storage = storage or studies.open_storage(storage_url)
    loaded = studies.create_studies(storage, definition, sweep_plan)
    following = state.other_coordinator(loaded[None])
    if following:  # two coordinators would each queue the final runs
        raise Followed(definition.sweep.name, following)
    state.sign_coordinator(loaded[None])  # workers with nothing to take wait for it to queue the final runs
    parents: dict[Study | None, str] = {}
    """The MLflow runs of the studies, and of the sweep itself under None."""
    pool = Workers([], [])
    bar = None
    try:
        runs.prepare(client, definition, sweep_plan, loaded, parents)
        complete = state.sweep_complete(sweep_plan, loaded)  # a finished sweep run again: no worker to start
        print(
            f"sweep '{definition.sweep.name}': {len(sweep_plan.studies)} studies x {sweep_plan.trials_per_study} trials, "
            f"{final_stage(sweep_plan)}; {'complete, nothing left to run' if complete else f'{workers} worker(s)'}; "
            f"MLflow experiment '{definition.sweep.name}'",
            flush=True,
        )
        if not complete:
            pool = _start_workers(definition, storage_url, workers)
        bar = Progress(sweep_plan.runs)
        recorded: dict[Study, dict | None] = {}
        checked: set[Study] = set()
        last_beat = time.monotonic()
        while True:
            signals.raise_if_received()  # a stop whose exception Python dropped (see rnnbench.signals)
            if time.monotonic() - last_beat > studies.HEARTBEAT_SECONDS:
                state.sign_coordinator(loaded[None])
                last_beat = time.monotonic()
            _follow(client, definition, sweep_plan, loaded, parents, recorded)
            _check_unroll(client, definition, sweep_plan, loaded, parents, recorded, checked, bar.note)
            bar.show(state.totals(sweep_plan, loaded))
            if state.sweep_complete(sweep_plan, loaded):
                break
            if pool.alive() == 0:
                state.sign_coordinator(loaded[None])  # a storage that can no longer be written is why: it says so here
                codes = ", ".join(str(process.returncode) for process in pool.processes)
                logs = " ".join(str(log) for log in pool.logs)
                raise UserError(
                    f"all workers exited (codes {codes}) before the sweep was complete; see {logs}. "
                    "Re-run the same command to finish the remaining work"
                )
            time.sleep(POLL_SECONDS)
        # Closing is inside the try: a stop while the workers finish or the summary is read is an interruption (below)
        bar.close()
        pool.finish(POLL_SECONDS)
        state.sign_coordinator(loaded[None], present=False)
        if closing_summary:
            print(closing_summary(definition.sweep.name))
        where = "" if tracking.is_server(tracking.tracking_uri()) else " (`make ui` serves it)"
        final_runs = Links(ui_url(), tracking.experiment_id(client, definition.sweep.name)).final_runs()
        print(f"MLflow: the final runs, best first, to chart and compare{where}: {final_runs}")
        return runs.close_sweep(client, definition, sweep_plan, loaded, parents[None])
    except KeyboardInterrupt as stop:
        if bar:
            bar.close()
        print(
            f"\nrnnbench: {signals.describe(stop)}: stopping the workers; their runs are recorded as KILLED ...",
            file=sys.stderr,
            flush=True,
        )
        pool.stop()
        runs.close_unfinished(
            client,
            loaded,
            parents,
            "KILLED",
            "interrupted",
            f"the sweep was stopped by {signals.describe(stop)}; re-run it to resume",
        )
        totals = state.totals(sweep_plan, loaded)
        if closing_summary:
            print(closing_summary(definition.sweep.name))
        print(
            f"rnnbench: stopped by {signals.describe(stop)} with {totals.finished} of {totals.planned} runs done; "
            "re-run the same command to do only the rest",
            file=sys.stderr,
        )
        return signals.exit_code(stop)
    except BaseException as error:
        pool.stop()
        fault = faults.explain(error)  # a full disk, a store gone: the runs say so, and the command line in one line
        runs.close_unfinished(
            client,
            loaded,
            parents,
            "FAILED",
            fault.kind if fault else "coordinator_failed",
            f"{fault.message if fault else 'the sweep coordinator failed'}; re-run it to resume",
        )
        raise


def final_stage(sweep_plan: Plan) -> str:
    timing = sum(run.timing for run in sweep_plan.final_runs)
    full = len(sweep_plan.final_runs) - timing
    return f"{full} final runs" + (f" and {timing} timing runs" if timing else "")


def _follow(
    client,
    definition: SweepDefinition,
    sweep_plan: Plan,
    loaded,
    parents: dict[Study | None, str],
    recorded: dict[Study, dict | None],
) -> None:
    """Fails trials of dead workers; for each study that has just finished, records it, chooses the unroll setting its
    model trains in and enqueues its finals; `recorded` keeps each recorded study's tuned values (None: none)."""
    for optuna_study in loaded.values():
        studies.fail_dead_trials(optuna_study, state.close_dead_trial)
    speeds = None
    for study in sweep_plan.studies:
        if study in recorded:
            continue
        optuna_study = loaded[study]
        trials = optuna_study.get_trials(deepcopy=False)
        counts = studies.count(trials)
        if counts.finished < sweep_plan.trials_per_study:
            continue
        best = _best(optuna_study) if counts.decided else None
        tuned = recorded[study] = None if best is None else values_of(definition.space, best.params)
        if best is not None and tuned is not None:
            trained = state.trained_unroll(optuna_study)
            if trained is None:  # chosen once, and kept with the study: a resumed sweep trains the same setting
                if speeds is None:
                    speeds = estimate.measured_speeds(definition.train.batch_size, definition.data.task)
                trained = unroll.trained_setting(definition, study, speeds, split_sizes(definition.data)["valid"])
                optuna_study.set_user_attr(names.TRAINED_UNROLL, trained)
            client.set_tag(parents[study], names.TRAINED_UNROLL, str(trained).lower())
            for final in sweep_plan.finals_of(study, trained):
                studies.enqueue(loaded[None], _final_params(definition, final, tuned), skip_if_exists=True)
        if client.get_run(parents[study]).info.status == "RUNNING":  # a finished sweep's re-run leaves it as it was
            runs.close_study(client, definition, parents[study], counts, best)


def _check_unroll(
    client,
    definition: SweepDefinition,
    sweep_plan: Plan,
    loaded,
    parents: dict[Study | None, str],
    recorded: dict[Study, dict | None],
    checked: set[Study],
    say,
) -> None:
    """Each decided study's unroll check, once both of its runs have ended: recorded on the study's run and its timing
    runs; where the settings differ (or could not be checked), its model's full runs in every setting enqueued, and
    one line said."""
    final_trials = None
    for study, tuned in recorded.items():
        if tuned is None or study in checked:
            continue
        final_trials = final_trials or studies.live_trials(loaded[None].get_trials(deepcopy=False))
        trained = state.trained_unroll(loaded[study])
        if trained is None:  # chosen when the study was recorded; not yet in a storage that lags
            continue
        verdict = unroll.check(sweep_plan, study, trained, final_trials)
        if verdict.verdict == unroll.PENDING:
            continue
        checked.add(study)
        if verdict.other is None:
            continue
        client.set_tag(parents[study], names.UNROLL_CHECK, verdict.verdict)
        if verdict.difference is not None:
            tracking.log_metrics(client, parents[study], {names.UNROLL_DIFFERENCE: verdict.difference}, step=0)
        for trial in final_trials:
            if (
                trial.params.get("timing")
                and (trial.params.get("cell"), trial.params.get("hidden_units")) == (study.cell, study.hidden_units)
                and trial.user_attrs.get(names.MLFLOW_RUN)
            ):
                client.set_tag(trial.user_attrs[names.MLFLOW_RUN], names.UNROLL_CHECK, verdict.verdict)
        if verdict.trains_every_setting:
            say(f"rnnbench: {verdict.describe(study)}")
            for final in sweep_plan.finals_of(study, trained, differ=True):
                studies.enqueue(loaded[None], _final_params(definition, final, tuned), skip_if_exists=True)


def _best(optuna_study: optuna.Study):
    if not any(trial.state == optuna.trial.TrialState.COMPLETE for trial in optuna_study.get_trials(deepcopy=False)):
        return None
    return optuna_study.best_trial


def _final_params(definition: SweepDefinition, final: FinalRun, tuned: dict) -> dict:
    """A final run's fixed parameters: its variant and seed, every tuned value of its study's best trial, and whether
    it is a timing run (a parameter only where the sweep has timing runs; see `worker.is_timing`)."""
    timing = {} if definition.final.train_every_unroll else {"timing": final.timing}
    return {
        "reference": False,
        **tuned,
        "cell": final.cell,
        "hidden_units": final.hidden_units,
        "unroll": final.unroll,
        "seed": final.seed,
        **timing,
    }


def _start_workers(definition: SweepDefinition, storage_url: str, count: int) -> Workers:
    """`count` worker processes, each with its share of the CPU threads and of the GPUs (see `devices`), logging to
    mlruns/logs/."""
    threads = devices.cpu_threads(count)
    base = {  # the URLs through the environment: a password in one is not on a command line that `ps` shows
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking.tracking_uri(),
        credentials.STORAGE_VARIABLE: storage_url,
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    gpus = devices.visible_gpus(base)
    return Workers.start(
        [sys.executable, "-m", "rnnbench", "worker", definition.sweep.name, "--threads", str(threads)],
        [devices.worker_environment(index, base, gpus) for index in range(count)],
        log_stem=tracking.DEFAULT_STORE / "logs" / definition.sweep.name,
    )
