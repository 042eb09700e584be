"""End to end: the team set-up of the docs (Team sweeps), for real. A PostgreSQL server, an `mlflow server` backed by
it, a sweep's coordinator in one folder, an extra worker joining from another and killed with -9 mid-trial. Both URLs
carry a password, given through the environment as the docs say, and it is found nowhere: no output, file, param,
tag, Optuna attribute or process command line."""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from conftest import EXPERIMENTS, rnnbench_here
from mlflow import MlflowClient

from rnnbench import credentials, names
from rnnbench.sweep import studies
from rnnbench.sweep.definition import load_sweep, plan

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("team")]  # one MLflow server (conftest), started once

TINY = EXPERIMENTS / "sweep_tiny.yaml"


SECRET = "team-s3cret-Pa55"


def with_password(url: str) -> str:
    """`url` with the user rnnbench and SECRET as its password (the test's PostgreSQL trusts the role, and the MLflow
    server takes no login: both accept it, as a server with a login would)."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://rnnbench:{SECRET}@{rest.split('@')[-1]}"


def start(arguments: list[str], folder, url: str, storage: str | None = None) -> subprocess.Popen:
    storage_variable = {credentials.STORAGE_VARIABLE: storage} if storage else {}
    return subprocess.Popen(
        [sys.executable, "-m", "rnnbench", *arguments],
        cwd=folder,
        env={**os.environ, "MLFLOW_TRACKING_URI": url, **storage_variable},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


class CommandLines:
    """Every process's command line on this machine, read from /proc twice a second while inside: those with SECRET."""

    def __enter__(self):
        self.found, self.stop = set(), threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def _watch(self):
        while not self.stop.wait(0.5):
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    continue
                if SECRET in text:
                    self.found.add(text)

    def __exit__(self, *exception):
        self.stop.set()
        self.thread.join()


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


def recorded_sweep(client: MlflowClient, storage: str, name: str, settings: list[str]) -> tuple[dict, int]:
    """A finished team sweep's MLflow runs by stage, checked: none left open; every planned final run exactly once, under
    the sweep's run with the studies' runs; every trial under its study's run; each study's and the final stage's
    trials all finished, none lost. Returns the runs by stage and how many trials were done again."""
    definition = load_sweep(TINY, settings)
    sweep_plan = plan(definition)
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    by_stage = collections.defaultdict(list)
    for run in runs:
        by_stage[run.data.tags[names.STAGE]].append(run)
    assert [run.info.run_name for run in runs if run.info.status in ("RUNNING", "SCHEDULED")] == []

    finals = [run for stage in ("final", "timing") for run in by_stage[stage] if run.info.status == "FINISHED"]
    trained = {run.data.tags[names.STUDY]: run.data.tags[names.TRAINED_UNROLL] == "true" for run in by_stage["study"]}
    planned = sorted(
        (final.variant, str(final.seed), final.timing)
        for study in sweep_plan.studies
        for final in sweep_plan.finals_of(study, trained[study.key])
    )
    assert (
        sorted(
            (run.data.tags[names.VARIANT], run.data.params["train.seed"], run.data.tags[names.STAGE] == "timing")
            for run in finals
        )
        == planned
    )

    [sweep_run] = by_stage["sweep"]
    assert sweep_run.info.status == "FINISHED"
    study_runs = {run.info.run_id for run in by_stage["study"]}
    assert len(study_runs) == len(sweep_plan.studies)
    assert {run.data.tags["mlflow.parentRunId"] for run in by_stage["study"] + finals} == {sweep_run.info.run_id}
    assert all(run.data.tags["mlflow.parentRunId"] in study_runs for run in by_stage["trial"])

    optuna_storage = studies.open_storage(storage)
    retried = 0
    for study in [None, *sweep_plan.studies]:
        trials = optuna.load_study(study_name=studies.study_name(definition, study), storage=optuna_storage).get_trials()
        counts = studies.count(trials)
        assert counts.finished == (sweep_plan.trials_per_study if study else len(sweep_plan.final_runs))
        assert counts.lost == 0
        retried += len(trials) - len(studies.live_trials(trials))
    return by_stage, retried


def test_a_team_sweep_survives_a_worker_killed_mid_trial(mlflow_server, postgres_database, tmp_path):
    """On PostgreSQL, the team storage the docs set up. The same on a SQLite storage would repeat these assertions:
    what differs, dead workers' trials failed and retried on each storage, is tests/test_studies.py's."""
    name = "team-postgresql"
    storage = with_password(postgres_database)
    tracking_uri = with_password(mlflow_server)
    coordinator_folder, worker_folder = tmp_path / "coordinator", tmp_path / "extra-worker"
    coordinator_folder.mkdir()
    worker_folder.mkdir()
    client = MlflowClient(mlflow_server)
    started = time.monotonic()

    settings = [f"sweep.name={name}", "search.trials=2", "grid.unroll=[false]"]  # no timing runs: not what is tested here
    watched = CommandLines().__enter__()
    coordinator = start(["sweep", str(TINY), *settings, "--workers", "1"], coordinator_folder, tracking_uri, storage)
    deadline = time.monotonic() + 120
    while True:  # the extra worker joins once the sweep exists in the storage
        try:
            studies.load_definition(studies.open_storage(storage), name)
            break
        except Exception:
            assert coordinator.poll() is None and time.monotonic() < deadline, coordinator.communicate()[0]
            time.sleep(0.5)
    extra = start(["worker", name], worker_folder, tracking_uri, storage)
    victim = running_run_of(client, name, extra.pid)
    extra.kill()  # kill -9 in the middle of a trial: no clean-up at all
    extra.wait()

    output, _ = coordinator.communicate(timeout=600)
    elapsed = time.monotonic() - started
    assert coordinator.returncode == 0, output
    assert "Traceback" not in output

    experiment = client.get_experiment_by_name(name)
    by_stage, retried = recorded_sweep(client, storage, name, settings)
    killed = client.get_run(victim.info.run_id)
    assert killed.info.status == "KILLED" and killed.data.tags[names.FAILURE] == "worker_died"
    assert retried >= 1  # the killed worker's trial, done again
    definition = load_sweep(TINY, settings)
    sweep_plan = plan(definition)
    finals = [run for stage in ("final", "timing") for run in by_stage[stage] if run.info.status == "FINISHED"]

    on_server = {"MLFLOW_TRACKING_URI": tracking_uri}  # the report and a single run, in this process: what they write
    report = rnnbench_here("report", "--experiment", name, cwd=coordinator_folder, env=on_server)
    report_output = report.stdout + report.stderr
    assert report.returncode == 0, report_output
    single = rnnbench_here(
        "run", str(EXPERIMENTS / "smoke.yaml"), f"tracking.experiment={name}-run", cwd=worker_folder, env=on_server
    )
    single_output = single.stdout + single.stderr
    assert single.returncode == 0, single_output
    watched.__exit__(None, None, None)
    page = (coordinator_folder / "reports" / name / "index.html").read_text()
    assert f"{mlflow_server}/#/experiments/{experiment.experiment_id}/runs/" in page  # run links open the team's server
    assert "rnnbench:***@" in single_output  # the store it names, masked
    assert_secret_nowhere(
        [output, extra.stdout.read(), report_output, single_output],
        tmp_path,
        client,
        [name, f"{name}-run"],
        studies.open_storage(storage),
        [studies.study_name(definition, study) for study in [None, *sweep_plan.studies]],
        watched,
    )
    print(
        f"\npostgresql: {sweep_plan.runs} runs planned, {len(finals)} of {len(sweep_plan.final_runs)} final runs finished, "
        f"{retried} retried, {sum(map(len, by_stage.values()))} MLflow runs of the sweep, {elapsed:.0f} s"
    )


def assert_secret_nowhere(
    outputs: list[str],
    folder: Path,
    client: MlflowClient,
    experiments: list[str],
    storage,
    study_names: list[str],
    watched: CommandLines,
) -> None:
    """SECRET in no command's output, no file under `folder` (logs, the report, its tables), no param or tag of any run
    of `experiments`, no Optuna study or trial attribute, and no process's command line while they ran."""
    assert not [line for output in outputs for line in output.splitlines() if SECRET in line]
    files = [path for path in folder.rglob("*") if path.is_file()]
    assert len(files) > 10 and not [path for path in files if SECRET.encode() in path.read_bytes()]
    for experiment in experiments:
        runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id], max_results=1000)
        assert runs
        for run in runs:
            assert SECRET not in str(run.data.params) + str(run.data.tags), run.info.run_name
    for study_name in study_names:
        study = optuna.load_study(study_name=study_name, storage=storage)
        attributes = [study.user_attrs] + [(trial.user_attrs, trial.system_attrs, trial.params) for trial in study.get_trials()]
        assert SECRET not in str(attributes)
    assert watched.found == set(), watched.found
