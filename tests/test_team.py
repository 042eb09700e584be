"""End to end: the team set-up of the README, for real. A PostgreSQL server, an `mlflow server` backed by it,
a sweep's coordinator in one folder, an extra worker joining from another and killed with -9 mid-trial.
The same again with the Optuna studies in a SQLite database."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from conftest import EXPERIMENTS, free_port, wait_until_serving
from mlflow import MlflowClient

from rnnbench import names
from rnnbench.sweep import studies
from rnnbench.sweep.definition import load_sweep, plan

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("team")]  # one MLflow server, started once

TINY = EXPERIMENTS / "sweep_tiny.yaml"


@pytest.fixture(scope="module")
def mlflow_server(postgres_server, tmp_path_factory):
    """`mlflow server` on 127.0.0.1, its runs in PostgreSQL and its artifacts in a folder it serves."""
    import psycopg

    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as connection:
        connection.execute("CREATE DATABASE mlflow_team")
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = open(folder / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"{postgres_server}/mlflow_team",
         "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_serving(f"{url}/health", server)
    yield url
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)
    log.close()


def start(arguments: list[str], folder, url: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "rnnbench", *arguments], cwd=folder,
        env={**os.environ, "MLFLOW_TRACKING_URI": url}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def running_run_of(client: MlflowClient, experiment: str, pid: int, timeout: float = 240):
    """Waits until the process `pid` has a trial or final run RUNNING in the experiment; returns it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = client.get_experiment_by_name(experiment)
        if found:
            for run in client.search_runs([found.experiment_id], "attributes.status = 'RUNNING'"):
                owner = run.data.tags.get(names.PROCESS, "")
                if f":{pid}@" in owner + "@" and run.data.tags[names.STAGE] in ("trial", "final", "timing"):
                    return run
        time.sleep(0.3)
    raise AssertionError(f"process {pid} never had a run in progress")


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_a_team_sweep_survives_a_worker_killed_mid_trial(kind, mlflow_server, postgres_database, tmp_path):
    name = f"team-{kind}"
    storage = postgres_database if kind == "postgresql" else f"sqlite:///{tmp_path / 'studies.db'}"
    coordinator_folder, worker_folder = tmp_path / "coordinator", tmp_path / "extra-worker"
    coordinator_folder.mkdir()
    worker_folder.mkdir()
    client = MlflowClient(mlflow_server)
    started = time.monotonic()

    settings = [f"sweep.name={name}", "search.trials=2"]
    coordinator = start(["sweep", str(TINY), *settings, "--workers", "1", "--storage", storage], coordinator_folder, mlflow_server)
    deadline = time.monotonic() + 120
    while True:  # the extra worker joins once the sweep exists in the storage
        try:
            studies.load_definition(studies.open_storage(storage), name)
            break
        except Exception:
            assert coordinator.poll() is None and time.monotonic() < deadline, coordinator.communicate()[0]
            time.sleep(0.5)
    extra = start(["worker", name, "--storage", storage], worker_folder, mlflow_server)
    victim = running_run_of(client, name, extra.pid)
    extra.kill()  # kill -9 in the middle of a trial: no clean-up at all
    extra.wait()

    output, _ = coordinator.communicate(timeout=600)
    elapsed = time.monotonic() - started
    assert coordinator.returncode == 0, output
    assert "Traceback" not in output

    definition = load_sweep(TINY, settings)
    sweep_plan = plan(definition)
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    by_stage = collections.defaultdict(list)
    for run in runs:
        by_stage[run.data.tags[names.STAGE]].append(run)
    assert [run.info.run_name for run in runs if run.info.status == "RUNNING"] == []

    finals = [run for stage in ("final", "timing") for run in by_stage[stage] if run.info.status == "FINISHED"]
    trained = {run.data.tags[names.STUDY]: run.data.tags[names.TRAINED_UNROLL] == "true" for run in by_stage["study"]}
    planned = sorted((final.variant, str(final.seed), final.timing)
                     for study in sweep_plan.studies for final in sweep_plan.finals_of(study, trained[study.key]))
    assert sorted((run.data.tags[names.VARIANT], run.data.params["train.seed"], run.data.tags[names.STAGE] == "timing")
                  for run in finals) == planned

    [sweep_run] = by_stage["sweep"]
    assert sweep_run.info.status == "FINISHED"
    study_runs = {run.info.run_id for run in by_stage["study"]}
    assert len(study_runs) == len(sweep_plan.studies)
    assert {run.data.tags["mlflow.parentRunId"] for run in by_stage["study"] + finals} == {sweep_run.info.run_id}
    assert all(run.data.tags["mlflow.parentRunId"] in study_runs for run in by_stage["trial"])

    killed = client.get_run(victim.info.run_id)
    assert killed.info.status == "KILLED" and killed.data.tags[names.FAILURE] == "worker_died"
    optuna_storage = studies.open_storage(storage)
    retried = 0
    for study in [None, *sweep_plan.studies]:
        trials = optuna.load_study(study_name=studies.study_name(definition, study), storage=optuna_storage).get_trials()
        counts = studies.count(trials)
        assert counts.finished == (sweep_plan.trials_per_study if study else len(sweep_plan.final_runs))
        assert counts.lost == 0
        retried += len(trials) - len(studies.live_trials(trials))
    assert retried >= 1  # the killed worker's trial, done again

    report = subprocess.run(
        [sys.executable, "-m", "rnnbench", "report", "--experiment", name], cwd=coordinator_folder,
        env={**os.environ, "MLFLOW_TRACKING_URI": mlflow_server}, capture_output=True, text=True, timeout=300,
    )
    assert report.returncode == 0, report.stderr
    page = (coordinator_folder / "reports" / name / "index.html").read_text()
    assert f"{mlflow_server}/#/experiments/{experiment.experiment_id}/runs/" in page  # run links open the team's server
    print(f"\n{kind}: {sweep_plan.runs} runs planned, {len(finals)} of {len(sweep_plan.final_runs)} final runs finished, "
          f"{retried} retried, {len(runs)} MLflow runs in all, {elapsed:.0f} s")
