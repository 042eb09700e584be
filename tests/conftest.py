"""Shared fixtures: the repository root, a temporary tracking store, the real offline data, a real PostgreSQL."""

from __future__ import annotations

import contextlib
import glob
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

from rnnbench import backend  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = ROOT / "experiments"
TINY = EXPERIMENTS / "sweep_tiny.yaml"
WITH_REFERENCE = ["final.reference=true", "space.model.dropout={low: 0.0, high: 0.5}"]
"""The shared tiny sweep (`tiny_sweep_store`): with the seed tutorial's reference runs, and searching two keys
(the learning rate and the recurrent layer's input dropout), so that every sweep and report test sees both."""
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
UI_ENVIRONMENT = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
"""An `mlflow ui` or `mlflow server` as `make ui` and the docs start it: without MLflow's job runner (GenAI scorer jobs)."""

needs_fashion_mnist = pytest.mark.skipif(
    not FASHION_MNIST.is_dir(),
    reason="Debian's dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist; .ci/run does)",
)


def pytest_configure(config):
    """A process that runs tests starts as an rnnbench process does: Keras on TensorFlow, JAX kept out, TensorFlow's
    start-up chatter hidden, the imported libraries frozen for the garbage collector (rnnbench.startup). The controller
    of pytest-xdist's workers (`make test`) runs no test, and does not load TensorFlow."""
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        return
    backend.load("tensorflow")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Tests of the shared tiny sweep run in one pytest-xdist worker (`make test` runs two with --dist loadgroup), so
    that the sweep is made once; modules whose tests share an expensive module fixture name their group themselves.

    The slow tests are handed out first and the fast tier last, so that the workers end together: the last tests a
    worker takes are seconds long, not minutes (pytest-xdist hands out groups by size, then tests in this order)."""
    for item in items:
        if "tiny_sweep_store" in item.fixturenames:
            item.add_marker(pytest.mark.xdist_group("tiny-sweep"))
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture
def store(tmp_path, monkeypatch) -> str:
    """A fresh SQLite tracking store; the working directory is its folder, so artifacts land there too."""
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    (tmp_path / "mlruns").mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    return uri


def answers_ctrl_c() -> None:
    """preexec_fn: Ctrl-C (SIGINT) at its default, even when the tests run in the background
    (`cmd &` starts with SIGINT ignored, and Python then never raises KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def rnnbench(*arguments: str, cwd: Path, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Runs the real command line, `python -m rnnbench ...`, and captures its output."""
    return subprocess.run(
        [sys.executable, "-m", "rnnbench", *arguments],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def rnnbench_here(*arguments: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """`rnnbench ARGS...` in this process: the command line's own `main`, in `cwd` with `env` added to the environment,
    what it prints captured. For tests of what a command does, without the seconds a new process spends starting
    TensorFlow and MLflow; `rnnbench` (a real process) for what only a process shows: its exit on a signal, its output
    at the file-descriptor level (a library's chatter, a traceback), its start-up. pytest keeps its own signal handlers."""
    from unittest import mock

    from rnnbench import cli, signals

    saved_environment, saved_folder = dict(os.environ), os.getcwd()
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        os.environ.update(env or {})
        os.chdir(cwd)
        with mock.patch.object(signals, "install"), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = cli.main(list(arguments))
    finally:
        os.chdir(saved_folder)
        for key in set(os.environ) - set(saved_environment):  # key by key: the environment is never empty meanwhile
            del os.environ[key]
        os.environ.update(saved_environment)
    return subprocess.CompletedProcess(["rnnbench", *arguments], code, stdout.getvalue(), stderr.getvalue())


def start_rnnbench(arguments: list[str], folder, env: dict) -> subprocess.Popen:
    """Starts the real command line in the background, unbuffered, answering Ctrl-C, with its output piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "rnnbench", *arguments],
        cwd=folder,
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=answers_ctrl_c,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server():
    """A private PostgreSQL server for the session, on 127.0.0.1 only: Debian's `postgresql` (.ci/run installs it).

    Its own data folder and port, trust authentication for the local role `rnnbench`, stopped at the end.
    initdb refuses to run as root, so as root it runs as the `postgres` user the package creates.
    """
    initdb = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not initdb:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does)")
    bin_folder = Path(initdb[-1]).parent
    as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder = Path(tempfile.mkdtemp(prefix="rnnbench-postgres-"))
    if as_owner:
        shutil.chown(folder, "postgres")
    port = free_port()
    data = folder / "data"
    subprocess.run(
        [*as_owner, bin_folder / "initdb", "-D", data, "-U", "rnnbench", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={folder} -c fsync=off"
    subprocess.run(
        [*as_owner, bin_folder / "pg_ctl", "-D", data, "-l", folder / "server.log", "-o", options, "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://rnnbench@127.0.0.1:{port}"
    finally:
        subprocess.run([*as_owner, bin_folder / "pg_ctl", "-D", data, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_database(postgres_server) -> str:
    """A new, empty database on the session's PostgreSQL server; its URL."""
    import psycopg

    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return f"{postgres_server}/{name}"


@pytest.fixture(scope="session")
def tiny_sweep_store(tmp_path_factory):
    """`rnnbench sweep sweep_tiny.yaml final.reference=true --report`, as `make sweep` runs it, in a store of its own:
    one sweep for the sweep tests and the report tests (which add other experiments beside it)."""
    folder = tmp_path_factory.mktemp("tiny-sweep")
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}"}
    result = rnnbench("sweep", str(TINY), *WITH_REFERENCE, "--report", cwd=folder, env=env, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    return folder, env, result


def wait_until_serving(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    """Waits until `url` answers OK (a server started by a test), failing if its process exits first."""
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} never answered")


@pytest.fixture(scope="session")
def mlflow_server(postgres_server, tmp_path_factory):
    """`mlflow server` on 127.0.0.1, its runs in PostgreSQL and its artifacts in a folder it serves: the team set-up of
    the docs, which the team and Slurm tests share (their modules are in one pytest-xdist group, "team")."""
    import psycopg

    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as connection:
        connection.execute("CREATE DATABASE mlflow_team")
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    with open(folder / "server.log", "w") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                f"{postgres_server}/mlflow_team",
                "--artifacts-destination",
                str(folder / "artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            env={**os.environ, **UI_ENVIRONMENT},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(f"{url}/health", server)
        yield url
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
