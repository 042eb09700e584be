"""`--slurm` without a cluster: the job script from the sweep's settings, the stores every task must reach, and one
coordinator per sweep (tests/test_slurm.py submits to a real one)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from conftest import TINY, rnnbench_here

from rnnbench.errors import ConfigError, UserError
from rnnbench.sweep import slurm, studies
from rnnbench.sweep.definition import load_sweep


def options(text: str) -> list[str]:
    return [line.removeprefix("#SBATCH ") for line in text.splitlines() if line.startswith("#SBATCH ")]


def test_the_script_asks_for_what_the_slurm_settings_say_and_passes_the_sweeps_overrides_on(tmp_path):
    overrides = ["search.trials=2", "train.steps=300", "slurm.tasks=4", "slurm.max_running=2", "slurm.gpus_per_task=1"]
    definition = load_sweep(TINY, [*overrides, "slurm.partition=gpu", "slurm.requeue=false"])
    text = slurm.script(definition, TINY, overrides, tmp_path)
    assert options(text) == [
        "--job-name=rnnbench-sweep-tiny",
        "--array=0-3%2",
        f"--output={tmp_path}/mlruns/logs/sweep-tiny-slurm-%A_%a.log",
        f"--chdir={tmp_path}",
        "--time=04:00:00",
        "--cpus-per-task=2",
        "--partition=gpu",
        "--gres=gpu:1",
        "--no-requeue",
    ]
    coordinator, worker = (line for line in text.splitlines() if "exec " in line)
    assert f"-m rnnbench sweep {TINY} search.trials=2 train.steps=300 --workers 1 --join --report" in coordinator
    assert f"-m rnnbench worker {TINY} search.trials=2 train.steps=300 --threads" in worker
    assert "slurm." not in coordinator + worker
    default = options(slurm.script(load_sweep(TINY), TINY, [], tmp_path))
    assert "--array=0-1" in default and "--requeue" in default and not any(o.startswith("--gres") for o in default)


def test_a_sweep_submitted_with_other_slurm_settings_is_the_same_sweep():
    before = load_sweep(TINY, ["slurm.tasks=2"])
    studies.check_unchanged(before.values(), load_sweep(TINY, ["slurm.tasks=16", "slurm.time=1-00:00:00"]))
    with pytest.raises(UserError, match="search.trials"):
        studies.check_unchanged(before.values(), load_sweep(TINY, ["search.trials=9"]))


@pytest.mark.parametrize(
    "setting, message",
    [
        ("slurm.tasks=0", "slurm.tasks: received 0, expected a positive integer"),
        ("slurm.time=4 hours", "slurm.time: received '4 hours', expected a value without spaces"),
        ("slurm.partition=gpu;rm", "slurm.partition"),
    ],
)
def test_bad_slurm_settings_are_one_line(setting, message):
    with pytest.raises(ConfigError, match=message):
        load_sweep(TINY, [setting])


@pytest.mark.parametrize(
    "storage, tracking, refused",
    [
        ("mlruns/optuna.journal", "http://mlflow-host:5000", "the Optuna storage mlruns/optuna.journal is a file"),
        ("sqlite:///studies.db", "http://mlflow-host:5000", "the Optuna storage sqlite:///studies.db is a file"),
        ("postgresql://me:pa55@db/optuna", "sqlite:///mlruns/mlflow.db", "the MLflow store sqlite:///mlruns/mlflow.db"),
        ("postgresql://me:pa55@db/optuna", "http://me:pa55@mlflow-host:5000", None),
        ("postgresql://me:pa55@db/optuna", "postgresql://me:pa55@db/mlflow", None),
    ],
)
def test_stores_that_other_nodes_cannot_reach_are_refused_unless_on_a_shared_filesystem(storage, tracking, refused):
    settings = load_sweep(TINY).slurm
    if refused is None:
        slurm.check_shared(storage, tracking, settings)
        return
    with pytest.raises(UserError, match=refused) as error:
        slurm.check_shared(storage, tracking, settings)
    assert "slurm.shared_filesystem=true" in str(error.value) and "pa55" not in str(error.value)
    slurm.check_shared(storage, tracking, load_sweep(TINY, ["slurm.shared_filesystem=true"]).slurm)


def test_without_sbatch_submitting_is_one_line_naming_the_login_node(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError, match="--slurm needs Slurm's sbatch on the PATH: run this on the cluster's login node"):
        slurm.submit(tmp_path / "job.sh", "postgresql://db/optuna", "http://mlflow-host:5000")


def test_a_second_coordinator_of_a_followed_sweep_is_refused_in_one_line(store, tmp_path):
    """Two coordinators would each queue the final runs: while one follows the sweep, another `rnnbench sweep` of it
    says so and names the fix (a Slurm task's `--join` works as a worker instead)."""
    from rnnbench import names
    from rnnbench.sweep.definition import plan

    journal = str(tmp_path / "studies.journal")
    definition = load_sweep(TINY)
    loaded = studies.create_studies(studies.open_storage(journal), definition, plan(definition))
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        loaded[None].set_user_attr(names.COORDINATOR, f"{socket.gethostname()}:{alive.pid}")
        result = rnnbench_here("sweep", str(TINY), "--storage", journal, cwd=tmp_path)
        assert result.returncode == 2, result.stdout + result.stderr
        [line] = result.stderr.strip().splitlines()
        assert f"sweep 'sweep-tiny' is already followed by its coordinator {socket.gethostname()}:{alive.pid}" in line
        assert "rnnbench worker sweep-tiny" in line
    finally:
        alive.kill()
        alive.wait()


def test_status_of_a_sweep_not_yet_run_shows_its_plan_and_no_coordinator(store, tmp_path):
    from rnnbench.sweep.definition import plan

    journal = str(tmp_path / "studies.journal")
    definition = load_sweep(TINY)
    sweep_plan = plan(definition)
    studies.create_studies(studies.open_storage(journal), definition, sweep_plan)
    result = rnnbench_here("sweep", str(TINY), "--status", "--storage", journal, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"sweep 'sweep-tiny' (in progress): 0 of {sweep_plan.runs} planned runs ended")
    assert [line.split(":")[0].strip() for line in lines[1:-1]] == [f"study {s.key}" for s in sweep_plan.studies] + [
        "final stage"
    ]
    assert lines[-1] == "coordinator: none (no coordinator has recorded itself)"  # and no Slurm job: none submitted
