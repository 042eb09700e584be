"""`rnnbench sweep --slurm`, for real: a one-node Slurm cluster (Debian's slurm-wlm and munge, on 127.0.0.1, its own
configuration, state and spool folders), with the PostgreSQL storage and `mlflow server` of the team set-up. The tiny
sweep goes in as a 2-task job array; one task is scancelled mid-trial and the sweep is submitted again."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import TINY, free_port, rnnbench
from mlflow import MlflowClient
from test_team import SECRET, recorded_sweep, with_password

from rnnbench import names

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("team"),  # the MLflow server of the team tests (conftest), started once
    pytest.mark.skipif(
        any(shutil.which(program) is None for program in ("slurmctld", "slurmd", "munged", "sbatch")),
        reason="Slurm is not installed (apt-get install slurm-wlm munge; .ci/run does)",
    ),
]


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    """munged, slurmctld and slurmd (the node `localhost`, all this machine's cores) on 127.0.0.1; the environment
    variables that point sbatch, squeue and scancel at it. Every job ended and every daemon stopped at the end."""
    folder = tmp_path_factory.mktemp("slurm")
    munge = folder / "munge"
    munge.mkdir(mode=0o700)
    key = munge / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    socket_path = munge / "munge.socket"
    subprocess.run(
        [
            "munged",
            "--force",
            f"--key-file={key}",
            f"--socket={socket_path}",
            f"--pid-file={munge / 'munged.pid'}",
            f"--log-file={munge / 'munged.log'}",
            f"--seed-file={munge / 'munged.seed'}",
        ],
        check=True,
        capture_output=True,
    )
    for part in ("state", "spool", "log"):
        (folder / part).mkdir()
    configuration = folder / "slurm.conf"
    configuration.write_text(
        "\n".join(
            [
                "ClusterName=rnnbench-test",
                "SlurmctldHost=localhost(127.0.0.1)",
                f"SlurmctldPort={free_port()}",
                f"SlurmdPort={free_port()}",
                "AuthType=auth/munge",
                "CredType=cred/munge",
                f"AuthInfo=socket={socket_path}",
                "SlurmUser=root",
                f"StateSaveLocation={folder / 'state'}",
                f"SlurmdSpoolDir={folder / 'spool'}",
                f"SlurmctldPidFile={folder / 'slurmctld.pid'}",
                f"SlurmdPidFile={folder / 'slurmd.pid'}",
                f"SlurmctldLogFile={folder / 'log' / 'slurmctld.log'}",
                f"SlurmdLogFile={folder / 'log' / 'slurmd.log'}",
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "JobAcctGatherType=jobacct_gather/none",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_Core",
                "MpiDefault=none",
                "ReturnToService=2",
                f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={os.cpu_count()} State=UNKNOWN",
                "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
                "",
            ]
        )
    )
    environment = {"SLURM_CONF": str(configuration)}
    slurm = {**os.environ, **environment}
    subprocess.run(["slurmctld"], env=slurm, check=True, capture_output=True)
    subprocess.run(["slurmd", "-N", "localhost"], env=slurm, check=True, capture_output=True)
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(["sinfo", "-h", "-o", "%T"], env=slurm, capture_output=True, text=True).stdout.strip() != "idle":
            assert time.monotonic() < deadline, (folder / "log" / "slurmctld.log").read_text()[-2000:]
            time.sleep(0.5)
        yield environment
    finally:
        subprocess.run(["scancel", "--full", "--partition=debug"], env=slurm, capture_output=True)
        deadline = time.monotonic() + 90
        while _tasks(slurm) and time.monotonic() < deadline:
            time.sleep(1)
        for pid_file in (folder / "slurmd.pid", folder / "slurmctld.pid", munge / "munged.pid"):
            if pid_file.exists():
                with_pid = int(pid_file.read_text())
                os.kill(with_pid, signal.SIGTERM)
                _wait_gone(with_pid)


def _tasks(environment: dict, job: str | None = None) -> list[str]:
    command = ["squeue", "-h", "--array", "-o", "%i %T"] + ([f"--jobs={job}"] if job else [])
    return subprocess.run(command, env=environment, capture_output=True, text=True).stdout.split("\n")[:-1]


def _wait_gone(pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)


def _task_of(owner: str) -> str | None:
    """The Slurm array task (SLURM_ARRAY_TASK_ID) of the process `owner` (`host:pid@started`), on this machine."""
    pid = owner.rpartition(":")[2].partition("@")[0]
    try:
        variables = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    found = [variable for variable in variables if variable.startswith(b"SLURM_ARRAY_TASK_ID=")]
    return found[0].split(b"=", 1)[1].decode() if found else None


def test_a_sweep_submitted_as_a_slurm_array_survives_a_scancelled_task_and_a_resubmission(
    slurm_cluster, mlflow_server, postgres_database, tmp_path
):
    name = "slurm-team"
    settings = [  # one study of 2 trials and its final run: each task's worker takes a trial at the start
        f"sweep.name={name}",
        "grid.cells=[simple_rnn]",
        "grid.unroll=[false]",
        "search.trials=2",
        "slurm.cpus_per_task=1",
        "slurm.time=00:20:00",
    ]
    env = {
        **slurm_cluster,
        "RNNBENCH_STORAGE": with_password(postgres_database),
        "MLFLOW_TRACKING_URI": with_password(mlflow_server),
    }
    slurm = {**os.environ, **env}
    started = time.monotonic()

    dry = rnnbench("sweep", str(TINY), *settings, "--slurm", "--dry-run", cwd=tmp_path, env=env)
    assert dry.returncode == 0, dry.stderr
    (tmp_path / "dry.sh").write_text(dry.stdout)
    accepted = subprocess.run(["sbatch", "--test-only", str(tmp_path / "dry.sh")], env=slurm, capture_output=True, text=True)
    assert accepted.returncode == 0, accepted.stderr  # "sbatch: Job ... to start at ..."
    assert not _tasks(slurm), "--dry-run submits nothing"

    first = rnnbench("sweep", str(TINY), *settings, "--slurm", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    job = re.search(r"Slurm job array (\d+)", first.stdout)[1]

    client = MlflowClient(mlflow_server)
    deadline = time.monotonic() + 300
    victim = None
    while victim is None:  # task 1's worker in the middle of a trial
        assert time.monotonic() < deadline, _tasks(slurm)
        experiment = client.get_experiment_by_name(name)
        for run in client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'"):
            if run.data.tags[names.STAGE] in ("trial", "final") and _task_of(run.data.tags.get(names.PROCESS, "")) == "1":
                victim = run
        time.sleep(0.3)
    subprocess.run(["scancel", f"{job}_1"], env=slurm, check=True)
    while any(line.startswith(f"{job}_1 ") for line in _tasks(slurm, job)):
        assert time.monotonic() < deadline
        time.sleep(0.5)

    again = rnnbench("sweep", str(TINY), *settings, "--slurm", cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    second = re.search(r"Slurm job array (\d+)|(complete, nothing left to run)", again.stdout)
    assert second, again.stdout
    deadline = time.monotonic() + 600
    while _tasks(slurm):
        assert time.monotonic() < deadline, _tasks(slurm)
        time.sleep(1)
    elapsed = time.monotonic() - started

    status = rnnbench("sweep", str(TINY), *settings, "--status", cwd=tmp_path, env=env)
    assert status.returncode == 0, status.stderr
    assert f"sweep '{name}' (complete)" in status.stdout and "every task has ended" in status.stdout

    by_stage, retried = recorded_sweep(client, with_password(postgres_database), name, settings)
    killed = client.get_run(victim.info.run_id)
    assert killed.info.status == "KILLED"  # scancel's SIGTERM: recorded, and its trial back in the queue
    assert retried >= 1, "the scancelled trial was failed and done again"
    [sweep_run] = by_stage["sweep"]
    assert sweep_run.data.tags[names.SLURM_JOB] == job
    if second[1]:  # submitted while task 0's coordinator followed the sweep: the new array's task 0 joined as a worker
        said = (tmp_path / "mlruns" / "logs" / f"{name}-slurm-{second[1]}_0.log").read_text().splitlines()[0]
        assert "this process joins it as a worker" in said or "complete, nothing left to run" in said, said

    page = tmp_path / "reports" / name / "index.html"  # written by task 0's coordinator, over the http:// URI
    assert page.exists() and mlflow_server.partition("://")[2] in page.read_text()  # its links open that server's UI
    logs = sorted((tmp_path / "mlruns" / "logs").glob(f"{name}-slurm-{job}_*.log"))
    assert [log.name for log in logs] == [f"{name}-slurm-{job}_0.log", f"{name}-slurm-{job}_1.log"]
    script = tmp_path / "mlruns" / "slurm" / f"{name}.sh"
    for text in [first.stdout, again.stdout, status.stdout, script.read_text(), page.read_text()] + [
        log.read_text() for log in logs
    ]:
        assert SECRET not in text
    print(
        f"slurm: 2-task array {job}, task 1 scancelled mid-trial, submitted again ({second[0]}); "
        f"{len(by_stage['trial'])} trial runs and {len(by_stage['final'])} final run(s) recorded, {retried} trial(s) "
        f"done again; {elapsed:.0f} s"
    )
