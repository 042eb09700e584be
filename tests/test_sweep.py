"""End to end: `rnnbench sweep` on the tiny sweep against temporary stores, killed, interrupted, resumed."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from conftest import TINY, WITH_REFERENCE, answers_ctrl_c, rnnbench, rnnbench_here
from mlflow import MlflowClient

from rnnbench import names, tracking
from rnnbench.sweep import studies, unroll
from rnnbench.sweep.definition import load_sweep, plan

pytestmark = pytest.mark.slow

DEFINITION = load_sweep(TINY)
ONE_CELL = ["grid.cells=simple_rnn"]
"""The lost-runs test's sweep: the tiny sweep's SimpleRNN study alone, the cell that compiles fastest. What a lost run
and a retry do depends neither on the number of studies nor on the cell. (The stop test keeps both studies: it builds a
report between finding a run in progress and pressing Ctrl-C, and its re-run must still have work left to kill.)"""
FULL_PLAN = plan(DEFINITION)
SHARED_PLAN = plan(load_sweep(TINY, WITH_REFERENCE))
"""The plan of the session's shared tiny sweep (`tiny_sweep_store`), which has the reference runs."""


def environment(folder):
    return {"MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}"}


def recorded(folder, tracking_uri: str | None = None, sweep_plan=FULL_PLAN):
    """The sweep's MLflow runs by stage, and its Optuna studies."""
    client = MlflowClient(tracking_uri or environment(folder)["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name(DEFINITION.sweep.name)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    by_stage = collections.defaultdict(list)
    for run in runs:
        by_stage[run.data.tags[names.STAGE]].append(run)
    storage = studies.open_storage(str(folder / "mlruns" / "optuna.journal"))
    loaded = {
        study: optuna.load_study(study_name=studies.study_name(DEFINITION, study), storage=storage)
        for study in [None, *sweep_plan.studies]
    }
    return by_stage, loaded


def assert_complete(folder, sweep_plan=FULL_PLAN, searched=("train.learning_rate",)):
    """Every planned run exactly once, linked and closed; final runs with every tuned value of their study's best trial."""
    by_stage, loaded = recorded(folder, sweep_plan=sweep_plan)
    everything = [run for runs in by_stage.values() for run in runs]
    assert [run.info.run_name for run in everything if run.info.status == "RUNNING"] == []

    [sweep_run] = by_stage["sweep"]  # one run of the sweep, holding the others
    assert sweep_run.info.status == "FINISHED"
    assert sweep_run.data.params["grid.cells"] == ",".join(dict.fromkeys(study.cell for study in sweep_plan.studies))
    parents = {run.info.run_id: run for run in by_stage["study"]}
    assert len(parents) == len(sweep_plan.studies)
    assert all(run.info.status == "FINISHED" for run in parents.values())
    nested = by_stage["study"] + by_stage["final"] + by_stage["timing"] + by_stage["reference"]
    assert {run.data.tags["mlflow.parentRunId"] for run in nested} == {sweep_run.info.run_id}
    assert len(by_stage["reference"]) == len(sweep_plan.reference_seeds)
    trials = [run for run in by_stage["trial"] if run.data.tags.get(names.FAILURE) not in names.RETRIED_FAILURES]
    assert len(trials) == sweep_plan.trials
    assert all(run.data.tags["mlflow.parentRunId"] in parents for run in by_stage["trial"])
    assert all("test/accuracy" not in run.data.metrics for run in by_stage["trial"])  # no search on test data

    finished_finals = [run for run in by_stage["final"] if run.info.status == "FINISHED"]
    timing = [run for run in by_stage["timing"] if run.info.status == "FINISHED"]
    keys = [(run.data.tags[names.VARIANT], run.data.params["train.seed"]) for run in finished_finals]
    assert len(keys) == len(set(keys)) == len(sweep_plan.final_runs) - len(timing)
    assert len(timing) == sum(run.timing for run in sweep_plan.final_runs)
    best = {}
    for parent in parents.values():
        study = parent.data.tags[names.STUDY]
        # each model trained in full in one setting, timed in the other, and the two checked against each other
        trained = parent.data.tags[names.TRAINED_UNROLL] == "true"
        assert {run.data.params["model.unroll"] for run in finished_finals if run.data.tags[names.STUDY] == study} == {
            str(trained)
        }
        [timed] = [run for run in timing if run.data.tags[names.STUDY] == study]
        assert timed.data.params["model.unroll"] == str(not trained) and "test/accuracy" not in timed.data.metrics
        assert timed.data.params["train.steps"] == timed.data.params["train.eval_every_steps"]
        assert parent.data.tags[names.UNROLL_CHECK] == timed.data.tags[names.UNROLL_CHECK] == "agree"
        assert parent.data.metrics[names.UNROLL_DIFFERENCE] <= unroll.RELATIVE_TOLERANCE
        best[study] = {key: parent.data.metrics[names.best_value(key)] for key in searched}
        optuna_study = next(s for key, s in loaded.items() if key is not None and key.key == study)
        assert optuna_study.best_trial.params == pytest.approx(best[study])
        counts = studies.count(optuna_study.get_trials())
        assert counts.finished == sweep_plan.trials_per_study
        assert parent.data.metrics[names.TRIALS_PRUNED] == counts.pruned
    for run in finished_finals + timing:
        tuned = {key: float(run.data.params[key]) for key in searched}
        assert tuned == pytest.approx(best[run.data.tags[names.STUDY]])
        assert "test/accuracy" in run.data.metrics or run in timing

    # either side leads to the other: each Optuna trial names its MLflow run, with the same state
    runs_by_id = {run.info.run_id: run for run in everything}
    for _key, optuna_study in loaded.items():
        for trial in studies.live_trials(optuna_study.get_trials()):
            run = runs_by_id[trial.user_attrs[names.MLFLOW_RUN]]
            assert run.data.tags[names.TRIAL_STATE] == trial.state.name
            assert run.data.tags[names.TRIAL_NUMBER] == str(trial.number)
    return by_stage, loaded


@pytest.fixture(scope="module")
def tiny_sweep(tiny_sweep_store):
    folder, _, result = tiny_sweep_store
    return folder, result


def test_tiny_sweep_records_the_plan_in_mlflow_and_optuna(tiny_sweep):
    folder, result = tiny_sweep
    by_stage, _ = assert_complete(folder, SHARED_PLAN, searched=("train.learning_rate", "model.dropout"))
    dropouts = {float(run.data.params["model.dropout"]) for run in by_stage["final"]}
    assert len(dropouts) > 1 and all(0 < dropout < 0.5 for dropout in dropouts)  # searched, and carried per study
    assert "Traceback" not in result.stdout + result.stderr


def test_pruned_trials_show_as_pruned_in_optuna_and_mlflow(tiny_sweep):
    folder, _ = tiny_sweep
    by_stage, loaded = recorded(folder, sweep_plan=SHARED_PLAN)
    pruned = [t for key, s in loaded.items() if key for t in s.get_trials() if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned, "the tiny sweep is expected to prune at least one trial"
    runs = {run.info.run_id: run for run in by_stage["trial"]}
    for trial in pruned:
        run = runs[trial.user_attrs[names.MLFLOW_RUN]]
        assert run.info.status == "KILLED"
        assert run.data.tags[names.TRIAL_STATE] == "PRUNED"
        assert run.data.tags[names.FAILURE] == "pruned"
        assert "pruned at step" in run.data.tags[names.FAILURE_REASON]


def test_summary_table_lists_every_model_and_the_setting_to_train_it_in(tiny_sweep):
    _, result = tiny_sweep
    summary = result.stdout.split("final runs of 'sweep-tiny'")[1]
    for study in SHARED_PLAN.studies:
        [row] = [line for line in summary.splitlines() if line.startswith(study.key + " ")]
        assert "unrolled" in row or "looped" in row
    assert "-unrolled" not in summary and "-looped" not in summary  # models, not settings
    assert "test_accuracy" in summary and "learning_rate" in summary and "dropout" in summary and "train_it" in summary


def test_a_finished_sweep_run_again_does_nothing_more(tiny_sweep):
    folder, _ = tiny_sweep
    before = sum(len(runs) for runs in recorded(folder, sweep_plan=SHARED_PLAN)[0].values())
    result = rnnbench("sweep", str(TINY), *WITH_REFERENCE, cwd=folder, env=environment(folder), timeout=300)
    assert result.returncode == 0, result.stderr
    assert "complete, nothing left to run" in result.stdout  # and no worker started (seconds, not a TensorFlow start-up)
    assert sum(len(runs) for runs in recorded(folder, sweep_plan=SHARED_PLAN)[0].values()) == before


def start_sweep(folder, overrides: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "rnnbench", "sweep", str(TINY), *overrides],
        cwd=folder,
        env={**os.environ, **environment(folder)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=answers_ctrl_c,
    )


def wait_for_a_running_run(folder, process, finished_before: int = 2, timeout: float = 300):
    """Waits until some trials are done and a trial or final run is in progress in MLflow."""
    client = tracking.client_of(environment(folder)["MLFLOW_TRACKING_URI"])  # as the sweep: one process makes a new store
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        experiment = client.get_experiment_by_name(DEFINITION.sweep.name)
        if experiment:
            runs = client.search_runs([experiment.experiment_id])
            runs = [run for run in runs if run.data.tags[names.STAGE] not in ("sweep", "study")]  # the units of work
            done = [run for run in runs if run.info.status != "RUNNING"]
            running = [run for run in runs if run.info.status == "RUNNING"]
            if len(done) >= finished_before and running:
                return running
        time.sleep(0.2)
    raise AssertionError("the sweep never had a run in progress")


def test_ctrl_c_stops_cleanly_then_sigkill_and_a_resume_with_two_workers_finishes_only_the_rest(tmp_path):
    """One sweep through both ways of stopping: Ctrl-C (a clean stop: every run closed, the command says to re-run it),
    then, in the re-run, kill -9 (no clean-up at all: the worker dies with it), then a resume with two workers that
    closes the dead runs and finishes only the rest."""
    process = start_sweep(tmp_path, [])
    in_progress = wait_for_a_running_run(tmp_path, process, finished_before=1)
    page = tmp_path / "reports" / DEFINITION.sweep.name / "index.html"
    report = rnnbench_here("report", cwd=tmp_path, env=environment(tmp_path))  # the report of a sweep in progress
    assert report.returncode == 0, report.stderr
    assert "The sweep is still running" in page.read_text()
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stdout + stderr
    assert "re-run the same command" in stderr
    assert "Traceback" not in stdout + stderr

    by_stage, loaded = recorded(tmp_path, sweep_plan=FULL_PLAN)
    everything = [run for runs in by_stage.values() for run in runs]
    assert [run.info.run_name for run in everything if run.info.status == "RUNNING"] == []
    by_id = {run.info.run_id: run for run in everything}
    for run in in_progress:  # stopped in the middle, unless it ended (finished or pruned) first
        run = by_id[run.info.run_id]
        assert run.info.status == "FINISHED" or run.data.tags[names.FAILURE] in ("interrupted", "pruned")
    assert all(run.info.status == "KILLED" for run in by_stage["study"] if run.info.status != "FINISHED")
    assert [run.info.status for run in by_stage["sweep"]] == ["KILLED"]
    done_before = {
        run.info.run_id
        for run in everything
        if run.info.status == "FINISHED" and run.data.tags[names.STAGE] not in ("sweep", "study")
    }
    report = rnnbench_here("report", cwd=tmp_path, env=environment(tmp_path))
    assert report.returncode == 0, report.stderr
    assert "The sweep was stopped (KILLED)" in page.read_text()

    ended = len([run for run in everything if run.data.tags[names.STAGE] not in ("sweep", "study")])
    process = start_sweep(tmp_path, [])
    victims = wait_for_a_running_run(tmp_path, process, finished_before=ended + 1)  # the re-run's own work under way
    process.kill()
    process.wait()
    time.sleep(1)

    result = rnnbench("sweep", str(TINY), "--workers", "2", cwd=tmp_path, env=environment(tmp_path), timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    by_stage, _ = assert_complete(tmp_path, FULL_PLAN)  # every planned run once, with two workers, and no duplicate
    second = tmp_path / "mlruns" / "logs" / f"{DEFINITION.sweep.name}-worker2.log"  # started by the resume only
    assert "trial" in second.read_text(), "both workers took work"
    assert " on the CPU, threads: " in second.read_text().splitlines()[0], "a worker says which device it trains on"
    client = MlflowClient(environment(tmp_path)["MLFLOW_TRACKING_URI"])
    for victim in victims:
        run = client.get_run(victim.info.run_id)
        assert run.info.status == "KILLED"
        assert run.data.tags[names.FAILURE] == "worker_died"
    after = [run for stage in ("trial", "final", "timing") for run in by_stage[stage] if run.info.status == "FINISHED"]
    assert done_before <= {run.info.run_id for run in after}
    for run in by_stage["sweep"] + by_stage["study"]:  # finished now: why they stopped last time is no longer said (in
        # MLflow, and so in the report's runs.csv, which exports these tags)
        assert run.info.status == "FINISHED" and names.FAILURE not in run.data.tags and names.FAILURE_REASON not in run.data.tags


def test_runs_lost_to_a_fault_fail_the_sweep_and_a_rerun_retries_them(tmp_path, monkeypatch):
    """The artifact folder read-only for the first attempt: every trial trains, then cannot save its figures."""
    from urllib.parse import urlparse

    from test_faults import private_mounts

    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'db' / 'mlflow.db'}"}
    (tmp_path / "db").mkdir()
    monkeypatch.chdir(tmp_path)  # MLflow puts a new experiment's files under ./mlruns
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment(client.create_experiment(DEFINITION.sweep.name))
    artifacts = Path(urlparse(experiment.artifact_location).path)
    artifacts.mkdir(parents=True)
    arguments = ["sweep", str(TINY), "search.trials=2", *ONE_CELL, "train.steps=40", "train.eval_every_steps=20"]
    script = (
        f"mount --bind {artifacts} {artifacts} && mount -o remount,ro,bind {artifacts} && cd {tmp_path} && "
        f"{sys.executable} -m rnnbench {' '.join(arguments)}"
    )
    first = subprocess.run(
        [*private_mounts(), "bash", "-c", script], env={**os.environ, **env}, capture_output=True, text=True, timeout=600
    )
    assert first.returncode == 1, first.stdout + first.stderr
    line = first.stderr.strip().splitlines()[-1]
    assert line.startswith("rnnbench: error: 2 of 4 planned runs failed") and "re-run the same command to retry them" in line
    rerun_plan = plan(load_sweep(TINY, arguments[2:]))
    by_stage, _ = recorded(tmp_path, env["MLFLOW_TRACKING_URI"], rerun_plan)
    [sweep_run] = by_stage["sweep"]
    assert sweep_run.info.status == "FAILED" and sweep_run.data.metrics[names.RUNS_LOST] == 2
    assert all(run.data.tags[names.FAILURE] == "read_only" for run in by_stage["trial"])
    assert by_stage["final"] == []  # a study with a lost trial has no best learning rate yet

    second = rnnbench(*arguments, cwd=tmp_path, env=env, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "retrying 2 run(s) that failed last time" in second.stdout
    by_stage, loaded = recorded(tmp_path, env["MLFLOW_TRACKING_URI"], rerun_plan)
    assert [run.info.status for run in by_stage["sweep"]] == ["FINISHED"]
    for study in rerun_plan.studies:
        counts = studies.count(loaded[study].get_trials())
        assert (counts.finished, counts.lost) == (2, 0)
    finals = [run for stage in ("final", "timing") for run in by_stage[stage] if run.info.status == "FINISHED"]
    assert len(finals) == len(rerun_plan.final_runs)


def test_make_dashboard_serves_the_sweeps_studies_in_optuna_dashboard(tiny_sweep):
    """`make dashboard STORAGE=...`: optuna-dashboard (the dashboard extra) reads the sweep's journal as it is."""
    import requests
    from conftest import ROOT, free_port, wait_until_serving

    if not (ROOT / ".venv" / "bin" / "optuna-dashboard").exists():
        pytest.skip("optuna-dashboard is in the dev extra: make install")
    folder, _ = tiny_sweep
    port = free_port()
    server = subprocess.Popen(
        [
            "make",
            "--no-print-directory",
            "dashboard",
            f"STORAGE={folder / 'mlruns' / 'optuna.journal'}",
            f"DASHBOARD_PORT={port}",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/api/studies", server)
        answer = requests.get(f"http://127.0.0.1:{port}/api/studies", timeout=10)
    finally:
        os.killpg(server.pid, signal.SIGKILL)  # make, optuna-dashboard and its gunicorn workers
        server.wait(timeout=30)
    listed = {study["study_name"] for study in answer.json()["study_summaries"]}
    assert {name for name in listed if name.startswith(f"{DEFINITION.sweep.name}:")} == {
        studies.study_name(DEFINITION, study) for study in [None, *SHARED_PLAN.studies]
    }
