"""The `slurm:` section of a sweep file: how `rnnbench sweep FILE --slurm` submits the sweep as a Slurm job array
(`rnnbench.sweep.slurm` writes and submits the script)."""

from __future__ import annotations

import dataclasses

from rnnbench.config import _invalid


@dataclasses.dataclass(frozen=True)
class SlurmConfig:
    """How `rnnbench sweep FILE --slurm` submits the sweep as a Slurm job array: not part of what the sweep is (a
    re-submission may change it)."""

    tasks: int = 2
    """Tasks of the job array, each on its own allocation: task 0 runs the sweep's coordinator and one worker, every
    other task one worker (`rnnbench worker`)."""
    max_running: int = 0
    """At most this many tasks run at once (the array's %M); 0: as many as the cluster allows."""
    time: str = "04:00:00"
    """Each task's time limit (sbatch --time): at the limit Slurm stops the task with SIGTERM, and a re-submission
    does the rest."""
    partition: str = ""
    """sbatch --partition (empty: the cluster's default)."""
    account: str = ""
    """sbatch --account (empty: the user's default)."""
    cpus_per_task: int = 2
    """CPU cores per task (sbatch --cpus-per-task): the worker trains with as many threads."""
    gpus_per_task: int = 0
    """GPUs per task (sbatch --gres=gpu:K); 0: none."""
    requeue: bool = True
    """sbatch --requeue: a task pre-empted or on a failed node goes back to the queue and resumes."""
    shared_filesystem: bool = False
    """The Optuna storage or MLflow store is a file (a journal, sqlite:) on a filesystem every node mounts at the same
    path. Without it, such stores are refused: tasks on other nodes could not reach them."""

    def __post_init__(self):
        if self.tasks <= 0:
            _invalid("slurm.tasks", self.tasks, "a positive integer")
        if self.max_running < 0:
            _invalid("slurm.max_running", self.max_running, "an integer >= 0 (0: no limit)")
        if self.cpus_per_task <= 0:
            _invalid("slurm.cpus_per_task", self.cpus_per_task, "a positive integer")
        if self.gpus_per_task < 0:
            _invalid("slurm.gpus_per_task", self.gpus_per_task, "an integer >= 0")
        for key in ("time", "partition", "account"):
            if any(character.isspace() or character in "'\"#;$`" for character in getattr(self, key)):
                _invalid(f"slurm.{key}", getattr(self, key), "a value without spaces, quotes, '#', ';', '$' or '`'")
