"""A sweep as a Slurm job array: the stores every task must reach, the job script, its submission, and the array's
tasks as `squeue` shows them.

    rnnbench sweep experiments/sweep.yaml --slurm slurm.tasks=8 slurm.gpus_per_task=1   # submit (sbatch)
    rnnbench sweep experiments/sweep.yaml --slurm --dry-run                             # print the script only
    rnnbench sweep experiments/sweep.yaml --status                                      # progress and the tasks

Task 0 of the array runs the sweep's coordinator with one worker of its own (`rnnbench sweep --workers 1 --join
--report`: it joins as a worker instead where a coordinator already follows the sweep), every other task one worker
(`rnnbench worker`). Slurm's SIGTERM (the time limit, `scancel`, pre-emption) stops a task as Ctrl-C does: its run
is recorded as KILLED and its trial goes back to the queue. The URLs of the stores reach the tasks through the
environment sbatch exports, never through the script, so a password stays out of the file and of every command line.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import optuna

from rnnbench import credentials, faults, names, probes, tracking
from rnnbench.errors import UserError
from rnnbench.sweep import runs, state, studies
from rnnbench.sweep.coordinator import final_stage
from rnnbench.sweep.definition import Plan, Study, SweepDefinition, plan
from rnnbench.sweep.slurm_settings import SlurmConfig

SCRIPTS = Path("mlruns") / "slurm"
"""Where `--slurm` writes each sweep's job script (`<sweep name>.sh`), to edit and submit again by hand."""
SBATCH_SECONDS = 60
"""How long sbatch and squeue may take to answer before rnnbench gives up on them."""


def check_shared(storage_url: str, tracking_uri: str, settings: SlurmConfig) -> None:
    """Refuses stores that tasks on other nodes cannot reach: a journal or SQLite file, unless the user says it is on a
    filesystem every node mounts (slurm.shared_filesystem=true); an MLflow store in a local folder alike."""
    if settings.shared_filesystem:
        return
    fix = (
        "; use a database every node reaches (--storage postgresql://user@host/db and an `mlflow server` in "
        "MLFLOW_TRACKING_URI: see the docs' Running on a Slurm cluster), or, if the file is on a filesystem every node "
        "mounts at the same path, add slurm.shared_filesystem=true"
    )
    if not probes.is_database(storage_url):
        raise UserError(f"--slurm: the Optuna storage {credentials.mask(storage_url)} is a file on this machine{fix}")
    if not (tracking.is_server(tracking_uri) or probes.is_database(tracking_uri)):
        raise UserError(f"--slurm: the MLflow store {credentials.mask(tracking_uri)} is a file on this machine{fix}")


def script(definition: SweepDefinition, sweep_file: Path, overrides: list[str], folder: Path) -> str:
    """The job array's batch script: every task in `folder` (the sweep's working folder, on a shared filesystem).

    Args:
        overrides: the sweep's `key=value` overrides, which each task passes on (those of slurm: are the script's own).
    """
    settings, name = definition.slurm, definition.sweep.name
    array = f"0-{settings.tasks - 1}" + (f"%{settings.max_running}" if settings.max_running else "")
    options = [
        f"--job-name=rnnbench-{name}",
        f"--array={array}",
        f"--output={folder / 'mlruns' / 'logs' / f'{name}-slurm-%A_%a.log'}",
        f"--chdir={folder}",
        f"--time={settings.time}",
        f"--cpus-per-task={settings.cpus_per_task}",
        *([f"--partition={settings.partition}"] if settings.partition else []),
        *([f"--account={settings.account}"] if settings.account else []),
        *([f"--gres=gpu:{settings.gpus_per_task}"] if settings.gpus_per_task else []),
        "--requeue" if settings.requeue else "--no-requeue",
    ]
    passed = " ".join(shlex.quote(override) for override in overrides if not override.startswith("slurm."))
    arguments = f"{shlex.quote(str(sweep_file))}{' ' + passed if passed else ''}"
    python = shlex.quote(sys.executable)
    return "\n".join(
        [
            "#!/bin/bash",
            f"# Sweep '{name}' as a Slurm job array, written by `rnnbench sweep ... --slurm`. To submit it again by hand,",
            "# export the two store URLs first (a password stays in the environment, never in this file), then sbatch it.",
            *(f"#SBATCH {shlex.quote(option)}" for option in options),
            "set -eu",
            ': "${RNNBENCH_STORAGE:?export RNNBENCH_STORAGE=<the Optuna storage URL of the sweep> before sbatch}"',
            ': "${MLFLOW_TRACKING_URI:?export MLFLOW_TRACKING_URI=<the MLflow tracking server URL> before sbatch}"',
            "export TF_CPP_MIN_LOG_LEVEL=2",
            'if [ "${SLURM_ARRAY_TASK_ID:-0}" = 0 ]; then  # the coordinator (queues final runs, writes the report) and a worker',
            f"  exec {python} -m rnnbench sweep {arguments} --workers 1 --join --report",
            "fi",
            f'exec {python} -m rnnbench worker {arguments} --threads "${{SLURM_CPUS_PER_TASK:-0}}"',
            "",
        ]
    )


def write_script(definition: SweepDefinition, text: str) -> Path:
    path = (SCRIPTS / f"{definition.sweep.name}.sh").resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    (Path("mlruns") / "logs").mkdir(parents=True, exist_ok=True)  # sbatch --output's folder must exist
    path.write_text(text)
    return path


def submit_sweep(definition: SweepDefinition, storage_url: str, script: Path) -> int:
    """Creates or resumes the sweep's studies and MLflow runs (SCHEDULED until the array's coordinator task starts),
    then submits `script` with sbatch; returns the exit code. Where a coordinator follows the
    sweep already, the new array only adds workers: its task 0 joins as one."""
    sweep_plan = plan(definition)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = studies.open_storage(storage_url)
    client = tracking.open_store()
    loaded = studies.create_studies(storage, definition, sweep_plan)
    if state.sweep_complete(sweep_plan, loaded):
        print(f"sweep '{definition.sweep.name}' is complete, nothing left to run: `rnnbench report` writes its report")
        return 0
    following = state.other_coordinator(loaded[None])
    parents: dict[Study | None, str] = {}
    try:
        if not following:
            runs.prepare(client, definition, sweep_plan, loaded, parents)
            for run_id in parents.values():  # waiting in the queue (before sbatch: task 0 may reopen them at once)
                if client.get_run(run_id).info.status == "RUNNING":
                    client.update_run(run_id, status="SCHEDULED")
        job = submit(script, storage_url, tracking.tracking_uri())
    except BaseException as error:
        fault = faults.explain(error)
        reason = credentials.mask(f"{fault.message if fault else error}; re-run it to submit")
        runs.close_open(client, parents.values(), "FAILED", "not_submitted", reason)
        raise
    record_job(loaded[None], job)
    for run_id in parents.values():
        client.set_tag(run_id, names.SLURM_JOB, job)
    tasks = definition.slurm.tasks
    print(
        f"sweep '{definition.sweep.name}': {len(sweep_plan.studies)} studies x {sweep_plan.trials_per_study} trials, "
        f"{final_stage(sweep_plan)}; submitted as Slurm job array {job} ({tasks} task(s): "
        + (f"workers; coordinator {following} follows the sweep)" if following else "task 0 coordinates and writes the report)")
        + f"\nscript: {script}\nlogs: {Path('mlruns/logs').resolve()}/{definition.sweep.name}-slurm-{job}_*.log"
        f"\nfollow it: rnnbench sweep SWEEP_FILE --status (the same file, overrides and --storage)"
    )
    return 0


def submit(path: Path, storage_url: str, tracking_uri: str) -> str:
    """Submits the script with sbatch, the store URLs in its environment; returns the array's job id."""
    environment = {**os.environ, credentials.STORAGE_VARIABLE: storage_url, "MLFLOW_TRACKING_URI": tracking_uri}
    result = _slurm(["sbatch", "--parsable", str(path)], environment)
    if result.returncode:
        said = (result.stderr.strip().splitlines() or ["(nothing)"])[-1]
        raise UserError(f"sbatch refused the job array ({credentials.mask(said)}); the script is {path}")
    return result.stdout.strip().split(";")[0]


def record_job(final_study, job_id: str) -> None:
    """The array's job id with the sweep, after those of earlier submissions, for `--status`."""
    final_study.set_user_attr(names.SLURM_JOBS, [*final_study.user_attrs.get(names.SLURM_JOBS, []), job_id])


def tasks(job_ids: list[str]) -> list[str]:
    """The arrays' tasks that Slurm still holds (pending or running), one line each; [] when none is left."""
    if not job_ids:
        return []
    result = _slurm(["squeue", "--noheader", "--array", f"--jobs={','.join(job_ids)}", "--format=%i %T %M %R"], dict(os.environ))
    if result.returncode:  # squeue refuses ids it no longer knows: every task has ended
        return []
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def _slurm(command: list[str], environment: dict) -> subprocess.CompletedProcess:
    if shutil.which(command[0]) is None:
        raise UserError(
            f"--slurm needs Slurm's {command[0]} on the PATH: run this on the cluster's login node (or print the script "
            "with --slurm --dry-run)"
        )
    try:
        return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=SBATCH_SECONDS)
    except subprocess.TimeoutExpired:
        raise UserError(f"{command[0]} did not answer within {SBATCH_SECONDS} s: is slurmctld up? (sinfo tells)") from None


def progress(definition: SweepDefinition, storage_url: str) -> str:
    """The sweep's progress as its studies record it, its coordinator, and its arrays' tasks that Slurm still holds."""
    sweep_plan = plan(definition)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = studies.open_storage(storage_url, create=False)
    studies.load_definition(storage, definition.sweep.name)  # no such sweep: one line naming the fix
    loaded: dict[Study | None, optuna.Study] = {
        study: optuna.load_study(study_name=studies.study_name(definition, study), storage=storage)
        for study in [None, *sweep_plan.studies]
    }
    totals = state.totals(sweep_plan, loaded)
    done = "complete" if state.sweep_complete(sweep_plan, loaded) else "in progress"
    lines = [
        f"sweep '{definition.sweep.name}' ({done}): {totals.finished} of {totals.planned} planned runs ended "
        f"({totals.complete} complete, {totals.pruned} pruned, {totals.failed} failed), {totals.running} running, "
        f"{totals.waiting} waiting",
        *_study_lines(sweep_plan, loaded),
        f"coordinator: {_coordinator(loaded[None])}",
    ]
    jobs = loaded[None].user_attrs.get(names.SLURM_JOBS, [])
    if jobs:
        held = tasks(jobs) if shutil.which("squeue") else ["(squeue is not on the PATH: run this on a login node)"]
        lines.append(f"Slurm job arrays {', '.join(jobs)}: " + ("every task has ended" if not held else f"{len(held)} task(s)"))
        lines += [f"  {line}" for line in held]
    return "\n".join(lines)


def _coordinator(final_study) -> str:
    alive = state.other_coordinator(final_study)
    return f"{alive}, following the sweep" if alive else f"none ({state.coordinator_gone(final_study)})"


def _study_lines(sweep_plan: Plan, loaded) -> list[str]:
    lines = []
    for study in sweep_plan.studies:
        counts = studies.count(loaded[study].get_trials(deepcopy=False))
        lines.append(
            f"  study {study.key}: {counts.finished} of {sweep_plan.trials_per_study} trials ended, {counts.running} running"
        )
    finals = studies.count(loaded[None].get_trials(deepcopy=False))
    lines.append(f"  final stage: {finals.finished} ended, {finals.running} running, {finals.waiting} waiting")
    return lines
