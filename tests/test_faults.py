"""Faults lose nothing: stop signals, a full disk, a read-only store, a tracking server that does not answer,
sizes that cannot fit in memory, and runs orphaned by kill -9. Each is reproduced with the real command line;
each ends in one line naming the problem and the fix, with nothing already recorded lost or left RUNNING."""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import optuna
import pytest
from conftest import EXPERIMENTS, rnnbench, rnnbench_here
from conftest import start_rnnbench as start
from mlflow import MlflowClient
from optuna.trial import TrialState

from rnnbench import names, signals

pytestmark = pytest.mark.slow

SMOKE = str(EXPERIMENTS / "smoke.yaml")
TINY = str(EXPERIMENTS / "sweep_tiny.yaml")


def store_of(folder) -> dict:
    return {"MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}"}


def one_line(stderr: str) -> str:
    """The one line a fault must end in: no traceback, nothing else."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert "Traceback" not in stderr and len(lines) == 1, stderr
    return lines[0]


def wait_for_line(process: subprocess.Popen, prefix: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    for line in process.stdout:
        if line.startswith(prefix):
            return
        assert time.monotonic() < deadline
    raise AssertionError(f"the process ended before printing {prefix!r}: {process.communicate()}")


def runs_of(folder, experiment: str) -> list:
    client = MlflowClient(store_of(folder)["MLFLOW_TRACKING_URI"])
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id], max_results=1000) if found else []


def test_sigterm_ends_a_run_killed_with_its_metrics_kept(tmp_path):
    process = start(["run", SMOKE, "train.steps=100000", "tracking.experiment=sigterm"], tmp_path, store_of(tmp_path))
    wait_for_line(process, "step 40/")
    process.send_signal(signal.SIGTERM)  # docker stop, Kubernetes, a batch scheduler
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143
    assert "stopped by SIGTERM; run" in stderr and "recorded as KILLED" in stderr and "Traceback" not in stderr
    [run] = runs_of(tmp_path, "sigterm")
    assert run.info.status == "KILLED" and run.info.end_time is not None
    assert run.data.tags[names.FAILURE_REASON] == "stopped by SIGTERM"
    client = MlflowClient(store_of(tmp_path)["MLFLOW_TRACKING_URI"])
    assert len(client.get_metric_history(run.info.run_id, names.VAL_ACCURACY)) >= 2


def test_a_stop_while_the_run_is_created_closes_it_killed(store, monkeypatch):
    """Ctrl-C or a scheduler's SIGTERM just after MLflow created the run, before its id reached the code that closes
    runs (it happened to a sweep worker in 1 of 2 full test sessions): the run ends KILLED, never stays RUNNING."""
    from rnnbench import runner
    from rnnbench.config import load_config

    log_batch = MlflowClient.log_batch

    def stopped_while_logging_params(self, *args, **kwargs):  # the run exists; its params are being written
        monkeypatch.setattr(MlflowClient, "log_batch", log_batch)
        os.kill(os.getpid(), signal.SIGINT)
        return log_batch(self, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "log_batch", stopped_while_logging_params)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's own, also where tests run in the background
    try:
        with pytest.raises(KeyboardInterrupt):
            runner.run_experiment(load_config(SMOKE, ["tracking.experiment=creating"]))
    finally:
        signal.signal(signal.SIGINT, previous)
    [run] = MlflowClient(store).search_runs([MlflowClient(store).get_experiment_by_name("creating").experiment_id])
    assert run.info.status == "KILLED" and run.data.tags[names.FAILURE_REASON] == "stopped by Ctrl-C"


def test_a_stop_while_a_run_is_being_closed_lets_it_close_first(store, monkeypatch):
    """Ctrl-C or SIGTERM between a run's reason and its status (a sweep stopped as a trial was pruned): the run still
    ends KILLED with its reason, and the stop is raised after."""
    from rnnbench import tracking

    client = tracking.open_store()
    run_id = client.create_run(tracking.experiment_id(client, "closing")).info.run_id
    log_batch = MlflowClient.log_batch

    def stopped_while_writing_the_reason(self, *args, **kwargs):
        monkeypatch.setattr(MlflowClient, "log_batch", log_batch)
        os.kill(os.getpid(), signal.SIGINT)
        return log_batch(self, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "log_batch", stopped_while_writing_the_reason)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            tracking.end_run(client, run_id, "KILLED", failure="pruned", reason="pruned at step 50")
    finally:
        signal.signal(signal.SIGINT, previous)
    run = client.get_run(run_id)
    assert run.info.status == "KILLED" and run.data.tags[names.FAILURE] == "pruned"


@contextlib.contextmanager
def handlers_of_the_command_line(monkeypatch):
    """Inside: Ctrl-C and SIGTERM handled (and remembered) as by `rnnbench`'s command line, in this test's process."""
    monkeypatch.setattr(signals, "_received", None)
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        signals.install()
        yield
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)


def stop_during(monkeypatch, owner, method: str) -> None:
    """The next call of `owner.method` is preceded by a Ctrl-C to this process."""
    original = getattr(owner, method)

    def stopped_meanwhile(*arguments, **keywords):
        monkeypatch.setattr(owner, method, original)
        os.kill(os.getpid(), signal.SIGINT)
        return original(*arguments, **keywords)

    monkeypatch.setattr(owner, method, stopped_meanwhile)


class _AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


@pytest.mark.parametrize(
    "ending, stopped_in, state",
    [
        ("finished", "set_terminated", TrialState.COMPLETE),
        ("pruned", "set_terminated", TrialState.PRUNED),
        ("finished", "tell", TrialState.COMPLETE),
    ],
    ids=["finished-run-closed", "pruned-run-closed", "finished-trial-told"],
)
def test_a_stop_as_a_trial_ends_is_raised_once_the_trial_is_recorded_as_its_run_ended(
    store, tmp_path, monkeypatch, capsys, ending, stopped_in, state
):
    """Ctrl-C as a trial's run that ended on its own is closed, or as the trial is told: the trial is recorded as its
    run ended, not failed and queued again (it would run twice, with a run recorded as finished or pruned), and the
    worker stops after."""
    from conftest import TINY

    from rnnbench.data import load_dataset
    from rnnbench.sweep import studies, worker
    from rnnbench.sweep.definition import load_sweep, plan

    definition = load_sweep(TINY, ["train.steps=100", "train.eval_every_steps=50", "grid.cells=simple_rnn"])
    storage = studies.open_storage(str(tmp_path / "optuna.journal"))
    study = plan(definition).studies[0]
    name = studies.create_studies(storage, definition, plan(definition))[study].study_name
    optuna_study = optuna.load_study(study_name=name, storage=storage, pruner=_AlwaysPrune() if ending == "pruned" else None)
    studies.enqueue_search_trials(optuna_study, 1)
    stop_during(monkeypatch, MlflowClient if stopped_in == "set_terminated" else optuna.Study, stopped_in)
    with pytest.raises(KeyboardInterrupt), handlers_of_the_command_line(monkeypatch):
        trial = studies.take(optuna_study, None)
        worker._run_taken(definition, study, optuna_study, trial, load_dataset(definition.data))
        signals.raise_if_received()  # the worker's loop, before it takes another trial
    [done] = optuna_study.get_trials()
    assert done.state == state
    run = MlflowClient(store).get_run(done.user_attrs[names.MLFLOW_RUN])
    assert run.info.status == ("KILLED" if ending == "pruned" else "FINISHED")
    assert run.data.tags[names.TRIAL_STATE] == state.name
    assert "re-enqueued" not in capsys.readouterr().out


def test_a_run_stopped_as_it_closes_finished_stays_finished_and_the_command_exits_stopped(store, monkeypatch, capsys):
    """Ctrl-C as `rnnbench run` closes its finished run: the run is recorded FINISHED, with its summary printed, and
    the command still ends as stopped (130), so that a script's next command does not run."""
    from rnnbench import cli

    stop_during(monkeypatch, MlflowClient, "set_terminated")
    with handlers_of_the_command_line(monkeypatch):
        code = cli.main(["run", SMOKE, "tracking.experiment=closing-finished", "train.steps=20", "train.eval_every_steps=10"])
    assert code == 130
    out, err = capsys.readouterr()
    assert "test_acc" in out and "stopped by Ctrl-C" in err and "Traceback" not in err
    [run] = MlflowClient(store).search_runs([MlflowClient(store).get_experiment_by_name("closing-finished").experiment_id])
    assert run.info.status == "FINISHED"


def test_a_stop_after_the_last_run_closes_the_sweep_run_and_says_how_to_resume(store, capsys):
    """Ctrl-C while the sweep is closing (its workers done, its summary being read): the sweep's run is closed KILLED,
    not left RUNNING, and the command says to re-run it, as for a stop in the middle."""
    from rnnbench.sweep.coordinator import run_sweep
    from rnnbench.sweep.definition import load_sweep

    small = ["sweep.name=closing", "grid.cells=gru", "grid.unroll=[false]", "search.trials=1", "train.steps=20"]
    definition = load_sweep(EXPERIMENTS / "sweep_tiny.yaml", [*small, "train.eval_every_steps=10"])

    pressed = []

    def pressed_while_reading(experiment):  # once: the stopped sweep prints its summary again, and is not stopped there
        if not pressed:
            pressed.append(experiment)
            raise KeyboardInterrupt
        return "summary"

    assert run_sweep(definition, None, 1, closing_summary=pressed_while_reading) == 130
    assert "re-run the same command to do only the rest" in capsys.readouterr().err
    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("closing").experiment_id])
    assert [run.info.status for run in runs if run.info.status == "RUNNING"] == []
    [sweep] = [run for run in runs if run.data.tags[names.STAGE] == "sweep"]
    assert sweep.info.status == "KILLED" and sweep.data.tags[names.FAILURE] == "interrupted"


def test_sigterm_stops_a_joined_worker_and_then_the_sweep_with_nothing_left_running(tmp_path):
    env = store_of(tmp_path)
    coordinator = start(["sweep", TINY, "train.steps=2000", "train.eval_every_steps=50"], tmp_path, env)
    wait_for_line(coordinator, "sweep 'sweep-tiny'")
    worker = start(["worker", "sweep-tiny"], tmp_path, env)
    deadline = time.monotonic() + 240
    while not any(
        f":{worker.pid}@" in run.data.tags.get(names.PROCESS, "") and run.info.status == "RUNNING"
        for run in runs_of(tmp_path, "sweep-tiny")
    ):
        assert time.monotonic() < deadline and worker.poll() is None, worker.communicate()
        time.sleep(0.3)
    worker.send_signal(signal.SIGTERM)
    _, worker_stderr = worker.communicate(timeout=120)
    assert worker.returncode == 143, worker_stderr
    assert "stopped by SIGTERM" in worker_stderr and "Traceback" not in worker_stderr
    worker_runs = [run for run in runs_of(tmp_path, "sweep-tiny") if f":{worker.pid}@" in run.data.tags.get(names.PROCESS, "")]
    assert worker_runs and all(run.info.status != "RUNNING" for run in worker_runs)
    assert any(run.data.tags.get(names.FAILURE_REASON) == "stopped by SIGTERM" for run in worker_runs)

    coordinator.send_signal(signal.SIGTERM)
    _, stderr = coordinator.communicate(timeout=180)
    assert coordinator.returncode == 143, stderr
    assert "stopped by SIGTERM with" in stderr and "re-run the same command" in stderr and "Traceback" not in stderr
    runs = runs_of(tmp_path, "sweep-tiny")
    assert [run.info.run_name for run in runs if run.info.status == "RUNNING"] == []
    [sweep_run] = [run for run in runs if run.data.tags[names.STAGE] == "sweep"]
    assert sweep_run.info.status == "KILLED" and "SIGTERM" in sweep_run.data.tags[names.FAILURE_REASON]


def private_mounts() -> list[str]:
    """A command prefix that runs in its own mount namespace, where a test can mount a small or read-only
    file system without touching this machine's; skips where the system allows none."""
    for prefix in (["unshare", "--mount"], ["unshare", "--user", "--map-root-user", "--mount"]):
        try:
            if subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
                return prefix
        except FileNotFoundError:
            break
    pytest.skip("no private mount namespace here (`unshare --mount` as root, or with user namespaces)")


def test_a_read_only_store_or_journal_is_one_line_before_any_work(tmp_path):
    store, journal, outside = tmp_path / "store", tmp_path / "journal", tmp_path / "outside"
    for folder in (store, journal, outside):
        folder.mkdir()
    (journal / "optuna.journal").touch()
    writable = f"sqlite:///{outside / 'mlflow.db'}"
    script = f"""
for folder in {store} {journal}; do mount --bind $folder $folder && mount -o remount,ro,bind $folder; done
cd {outside}
MLFLOW_TRACKING_URI=sqlite:///{store}/mlflow.db {sys.executable} -m rnnbench run {SMOKE} 2> {outside}/run.err
echo $? > {outside}/run.code
MLFLOW_TRACKING_URI={writable} {sys.executable} -m rnnbench sweep {TINY} --storage {journal}/optuna.journal 2> {outside}/sweep.err
echo $? > {outside}/sweep.code
"""
    subprocess.run([*private_mounts(), "bash", "-c", script], check=True, timeout=300, capture_output=True)
    assert (outside / "run.code").read_text().strip() == "2"
    assert f"the MLflow store {store}/mlflow.db is read-only; make it writable" in one_line((outside / "run.err").read_text())
    assert (outside / "sweep.code").read_text().strip() == "2"
    assert f"cannot write the Optuna journal {journal}/optuna.journal: it is read-only" in one_line(
        (outside / "sweep.err").read_text()
    )


OPEN_TOGETHER = """
import sys, time
from pathlib import Path
from rnnbench import tracking
folder, count = Path(sys.argv[1]), int(sys.argv[2])
(folder / f"{sys.argv[3]}.ready").touch()  # imported: wait for the others, then open the new store together
while len(list(folder.glob("*.ready"))) < count:
    time.sleep(0.01)
tracking.open_store()
"""


def test_processes_opening_a_new_store_at_once_all_open_it_and_it_stays_openable(tmp_path):
    """MLflow makes a new SQLite store's tables without a lock; processes making them at the same moment (a sweep
    started with `make ui`, or with a worker in another shell) leave the database half-migrated and unopenable for good."""
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    opening = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_TOGETHER, str(tmp_path), "3", str(number)],
            cwd=tmp_path,
            env={**os.environ, "MLFLOW_TRACKING_URI": uri},
            stderr=subprocess.PIPE,
            text=True,
        )
        for number in range(3)
    ]
    for process in opening:
        _, stderr = process.communicate(timeout=240)
        assert process.returncode == 0, stderr
    client = MlflowClient(uri)
    assert client.get_experiment(client.create_experiment("after")).name == "after"


class _HealthOnly(http.server.BaseHTTPRequestHandler):
    """A tracking server whose /health answers and whose API never does (a server stuck behind its health check)."""

    def do_GET(self):
        if self.path == "/health":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"OK")
        else:
            time.sleep(120)

    def log_message(self, *arguments):
        pass


SECRET = "s3cret-Pa55"


STAGGER_SECONDS = 4
"""The 30-s bound test starts a command every 4 s: each waits mostly idle, and more Pythons starting at once on 2
cores, beside the other tests, would spend seconds of the time being measured on starting up."""


def test_a_store_or_storage_that_does_not_answer_fails_within_30_seconds_in_one_line(tmp_path):
    """Every kind of URL, down (nothing listens) or silent (takes the connection, never answers): one line within the
    time the README states, without MLflow's tracebacks, the password masked, and no storage file left behind."""
    silent = socket.socket()  # takes connections, never answers: a hung server
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    hung = f"127.0.0.1:{silent.getsockname()[1]}"
    health_only = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HealthOnly)
    health_only.daemon_threads = True
    threading.Thread(target=health_only.serve_forever, daemon=True).start()
    api_silent = f"http://me:{SECRET}@127.0.0.1:{health_only.server_address[1]}"
    server = "the MLflow tracking server {} does not answer"
    database = "the MLflow tracking store {} cannot be reached"
    cases = {  # name: (arguments, tracking URI, what the line says)
        "run-http-down": (["run", SMOKE], "http://127.0.0.1:9", server.format("http://127.0.0.1:9")),
        "evaluate-http-down": (
            ["evaluate", "0" * 32, "--data", "mnist5k"],
            "http://127.0.0.1:9",
            server.format("http://127.0.0.1:9"),
        ),
        "run-postgresql-down": (
            ["run", SMOKE],
            f"postgresql://me:{SECRET}@127.0.0.1:9/db",
            database.format("postgresql://me:***@127.0.0.1:9/db"),
        ),
        "report-http-silent": (["report"], f"http://{hung}", server.format(f"http://{hung}")),
        "sweep-http-api-silent": (["sweep", TINY], api_silent, "its /health answers, but its API does not"),
        "sweep-postgresql-silent": (
            ["sweep", TINY],
            f"postgresql://me:{SECRET}@{hung}/db",
            database.format(f"postgresql://me:***@{hung}/db"),
        ),
        "run-mysql-silent": (
            ["run", SMOKE],
            f"mysql+pymysql://me:{SECRET}@{hung}/db",
            database.format(f"mysql+pymysql://me:***@{hung}/db"),
        ),
        "sweep-storage-postgresql-silent": (
            ["sweep", TINY, "--storage", f"postgresql://me:{SECRET}@{hung}/db"],
            None,
            f"the Optuna storage postgresql://me:***@{hung}/db cannot be reached",
        ),
    }

    def ended(process: subprocess.Popen, started: float) -> tuple[int, str, float]:
        _, stderr = process.communicate(timeout=120)
        return process.returncode, stderr, time.monotonic() - started

    with concurrent.futures.ThreadPoolExecutor(len(cases)) as waiting:
        outcomes = {}
        for name, (arguments, uri, _) in cases.items():
            (tmp_path / name).mkdir()
            process = start(arguments, tmp_path / name, {"MLFLOW_TRACKING_URI": uri} if uri else store_of(tmp_path / name))
            outcomes[name] = waiting.submit(ended, process, time.monotonic())
            time.sleep(STAGGER_SECONDS)
        for name, outcome in outcomes.items():
            code, stderr, elapsed = outcome.result()
            assert code == 2, (name, stderr)
            assert elapsed < 30, f"{name} took {elapsed:.0f} s"
            line = one_line(stderr)
            assert cases[name][2] in line and SECRET not in line, (name, line)
            assert not list((tmp_path / name).glob("**/optuna.journal")), name  # no storage file left behind
    silent.close()
    health_only.shutdown()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["run", SMOKE, "train.batch_size=100000000"], "train.batch_size=100000000 is more than the 3,600 training images"),
        (["run", SMOKE, "model.hidden_units=100000000"], "model.hidden_units=100000000 with train.batch_size=50 needs at least"),
        (
            ["sweep", TINY, "grid.hidden_units=[16,100000000]"],
            "model.hidden_units=100000000 with train.batch_size=50 needs at least",
        ),
    ],
    ids=["batch", "hidden-units", "sweep"],
)
def test_sizes_that_cannot_fit_are_refused_before_any_run_with_the_estimate(tmp_path, arguments, message):
    result = rnnbench(*arguments, cwd=tmp_path, env=store_of(tmp_path))
    assert result.returncode == 2, result.stderr
    line = one_line(result.stderr)
    assert message in line and ("use at most 3600" in line or "of memory is available; lower" in line)
    client = MlflowClient(store_of(tmp_path)["MLFLOW_TRACKING_URI"])
    assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []


def test_the_report_names_runs_still_running_whose_process_is_gone(tmp_path, monkeypatch):
    """A run recorded as rnnbench records one, by a process that has since exited without closing it (as after kill -9;
    tests/test_sweep.py kills a real sweep with -9)."""
    from rnnbench import processes, tracking
    from rnnbench.config import load_config

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_of(tmp_path)["MLFLOW_TRACKING_URI"])
    monkeypatch.chdir(tmp_path)
    client = tracking.open_store()
    run_id = tracking.start_run(client, load_config(SMOKE, ["tracking.experiment=orphans"]), stage="run")
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    exited.wait()
    client.set_tag(run_id, names.PROCESS, f"{processes.host_of(processes.this_process())}:{exited.pid}")
    [run] = runs_of(tmp_path, "orphans")
    assert run.info.status == "RUNNING" and processes.is_gone(run.data.tags[names.PROCESS])
    result = rnnbench_here("report", "--experiment", "orphans", cwd=tmp_path, env=store_of(tmp_path))
    assert result.returncode == 0, result.stderr
    note = "1 run(s) are still RUNNING, but the process that recorded them is gone"
    assert f"{note} (kill -9, a crash or a reboot), so they will never end: {run.info.run_name}" in result.stdout
    assert note in (tmp_path / "reports" / "orphans" / "index.html").read_text()


def test_the_report_of_an_experiment_without_runs_is_one_line(tmp_path):
    (tmp_path / "mlruns").mkdir()
    MlflowClient(store_of(tmp_path)["MLFLOW_TRACKING_URI"]).create_experiment("empty")
    result = rnnbench("report", "--experiment", "empty", cwd=tmp_path, env=store_of(tmp_path))
    assert result.returncode == 2
    assert "experiment 'empty' in sqlite:" in one_line(result.stderr) and "has no runs" in result.stderr


def test_a_worker_whose_coordinator_has_stopped_does_not_wait_forever(tmp_path):
    """The search trials are done and nobody queues the final runs: the worker waits while the coordinator lives, and
    says so in one line once it has stopped."""
    from rnnbench.sweep import studies
    from rnnbench.sweep.definition import load_sweep, plan

    journal = tmp_path / "optuna.journal"
    definition = load_sweep(TINY)
    loaded = studies.create_studies(studies.open_storage(str(journal)), definition, plan(definition))
    for study in plan(definition).studies:
        studies.enqueue_search_trials(loaded[study], plan(definition).trials_per_study)
        for _trial in loaded[study].get_trials():
            loaded[study].tell(loaded[study].ask(), 0.5)
    loaded[None].set_user_attr(names.COORDINATOR, f"{socket.gethostname()}:{os.getpid()}")  # this test: alive
    worker = start(["worker", TINY, "--storage", str(journal)], tmp_path, store_of(tmp_path))
    wait_for_line(worker, "worker ")
    time.sleep(3)
    assert worker.poll() is None, worker.communicate()  # a coordinator is following the sweep: the worker waits for it

    loaded[None].set_user_attr(names.COORDINATOR, "")  # as a coordinator leaves it when it stops
    _, stderr = worker.communicate(timeout=30)
    assert worker.returncode == 1
    line = one_line(stderr)
    assert "nothing is left to take in sweep 'sweep-tiny', and its coordinator has stopped" in line
    assert "re-run `rnnbench sweep SWEEP_FILE`" in line


def test_full_disks_are_one_line_naming_the_full_place_and_the_journal_stays_readable(tmp_path):
    """Three disks fill up: the sweep's journal's (its MLflow runs are closed, its journal stays whole, and a re-run after
    space is freed goes on), the SQLite store's (no MLflow tracebacks), and the artifacts' (the run ends FAILED with its
    curves kept, and the destination is named, not the temporary folder the files were made in)."""
    journal_disk, store_disk, artifact_disk, outside = (tmp_path / name for name in ("journal", "store", "artifacts", "outside"))
    for folder in (journal_disk, store_disk, artifact_disk, outside):
        folder.mkdir()
    many_trials = "search.trials=60"  # more queued trials than 32 KiB holds: the journal fills while the sweep is planned
    script = f"""
set -e
for disk in {journal_disk} {store_disk} {artifact_disk}; do mount -t tmpfs -o size=32k tmpfs $disk; done
cd {outside}
export MLFLOW_TRACKING_URI=sqlite:///{outside}/mlruns/mlflow.db
set +e
{sys.executable} -m rnnbench sweep {TINY} {many_trials} --storage {journal_disk}/optuna.journal > journal.out 2> journal.err
echo $? > journal.code
cp {journal_disk}/optuna.journal full.journal
mkdir first && cp mlruns/mlflow.db first/
mount -o remount,size=16m {journal_disk}
{sys.executable} -m rnnbench sweep {TINY} {many_trials} --storage {journal_disk}/optuna.journal > rerun.out 2> rerun.err &
rerun=$!
for _ in $(seq 600); do grep -q "^sweep 'sweep-tiny'" rerun.out && break; sleep 0.2; done
kill -TERM $rerun; wait $rerun; echo $? > rerun.code

MLFLOW_TRACKING_URI=sqlite:///{store_disk}/mlflow.db {sys.executable} -m rnnbench sweep {TINY} 2> store.err
echo $? > store.code

cd {artifact_disk}
MLFLOW_TRACKING_URI=sqlite:///{outside}/artifacts.db {sys.executable} -m rnnbench run {SMOKE} \\
    > /dev/null 2> {outside}/artifacts.err
echo $? > {outside}/artifacts.code
"""
    subprocess.run([*private_mounts(), "bash", "-c", script], check=True, timeout=600, capture_output=True)

    assert (outside / "journal.code").read_text().strip() == "1", (outside / "journal.err").read_text()
    assert one_line((outside / "journal.err").read_text()) == (
        f"rnnbench: error: no space left on the device holding {journal_disk}/optuna.journal; free some space "
        "(df -h shows how much is left) and run again"
    )
    full = (outside / "full.journal").read_bytes()
    assert full.endswith(b"\n") and all(json.loads(line)["op_code"] is not None for line in full.splitlines())
    client = MlflowClient(f"sqlite:///{outside / 'first' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("sweep-tiny").experiment_id])
    assert runs and all(run.info.status == "FAILED" and run.data.tags[names.FAILURE] == "disk_full" for run in runs)
    assert f"{journal_disk}/optuna.journal" in runs[0].data.tags[names.FAILURE_REASON]
    assert (outside / "rerun.code").read_text().strip() == "143", (outside / "rerun.err").read_text()
    assert "Traceback" not in (outside / "rerun.err").read_text()
    [sweep_run] = [run for run in runs_of(outside, "sweep-tiny") if run.data.tags[names.STAGE] == "sweep"]
    assert sweep_run.info.status == "KILLED"  # resumed, then stopped: the journal took the re-run's writes

    assert (outside / "store.code").read_text().strip() == "1"
    assert f"no space left on the device holding the tracking store sqlite:///{store_disk}/mlflow.db" in one_line(
        (outside / "store.err").read_text()
    )

    assert (outside / "artifacts.code").read_text().strip() == "1"
    line = one_line((outside / "artifacts.err").read_text())
    assert line.startswith("rnnbench: run ") and f"FAILED: no space left on the device holding {artifact_disk}/mlruns/" in line
    client = MlflowClient(f"sqlite:///{outside / 'artifacts.db'}")  # the run's curves, logged before its files, are kept
    [run] = client.search_runs([client.get_experiment_by_name("smoke").experiment_id])
    assert run.info.status == "FAILED" and run.data.tags[names.FAILURE] == "disk_full"
    assert [point.step for point in client.get_metric_history(run.info.run_id, names.VAL_ACCURACY)] == [20, 40, 60]


def test_a_store_deleted_mid_run_is_called_deleted_in_one_line(tmp_path):
    process = start(["run", SMOKE, "train.steps=100000", "tracking.experiment=deleted"], tmp_path, store_of(tmp_path))
    wait_for_line(process, "step 20/")
    shutil.rmtree(tmp_path / "mlruns")
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1
    line = one_line(stderr)
    assert f"the tracking store {tmp_path}/mlruns/mlflow.db was deleted while in use" in line and "read-only" not in line
