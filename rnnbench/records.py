"""Reading an experiment's recorded runs back: MLflow's search API into two tidy tables.

    python -c "from rnnbench.records import read; print(read('rnnbench-sweep').runs)"

`runs` has one row per MLflow run (typed params, final metrics, tags, stage); `curves` one row per
(run, metric, step). The sweep's estimates read measured speeds through `tidy`; the report computes
everything it shows (leaderboard, study summary, figures) from these two tables.
"""

from __future__ import annotations

import dataclasses

import mlflow
import numpy as np
import pandas as pd

from rnnbench import names, tracking
from rnnbench.config import xla_on_cpu_for
from rnnbench.errors import UserError

CURVES = (names.VAL_ACCURACY, names.VAL_LOSS, names.TRAIN_ACCURACY, names.TRAIN_LOSS)
"""The per-evaluation metrics whose whole history is read (the others are final values)."""

COLUMNS = {
    "run_name": ("tags.mlflow.runName", str),
    "stage": (f"tags.{names.STAGE}", str),
    "sweep": (f"tags.{names.SWEEP}", str),
    "study": (f"tags.{names.STUDY}", str),
    "variant": (f"tags.{names.VARIANT}", str),
    "cell": ("params.model.cell", str),
    "hidden_units": ("params.model.hidden_units", "Int64"),
    "unroll": ("params.model.unroll", "boolean"),
    "learning_rate": ("params.train.learning_rate", float),
    "seed": ("params.train.seed", "Int64"),
    "steps": ("params.train.steps", "Int64"),
    "batch_size": ("params.train.batch_size", "Int64"),
    "data_source": ("params.data.source", str),
    "task": ("params.data.task", str),
    "backend": ("params.train.backend", str),
    "xla_on_cpu": ("params.train.xla_on_cpu", str),
    "trial_number": (f"tags.{names.TRIAL_NUMBER}", "Int64"),
    "trial_state": (f"tags.{names.TRIAL_STATE}", str),
    "failure": (f"tags.{names.FAILURE}", str),
    "failure_reason": (f"tags.{names.FAILURE_REASON}", str),
    "retried": (f"tags.{names.RETRIED}", str),
    "parent_run_id": ("tags.mlflow.parentRunId", str),
    "test_accuracy": (f"metrics.{names.TEST_ACCURACY}", float),
    "test_loss": (f"metrics.{names.TEST_LOSS}", float),
    "last_val_accuracy": (f"metrics.{names.VAL_ACCURACY}", float),
    "parameters": (f"metrics.{names.PARAMETERS}", "Int64"),
    "train_samples_per_s": (f"metrics.{names.TRAIN_SAMPLES_PER_S}", float),
    "eval_samples_per_s": (f"metrics.{names.EVAL_SAMPLES_PER_S}", float),
    "compile_s": (f"metrics.{names.COMPILE_S}", float),
    "peak_memory_mb": (f"metrics.{names.PEAK_MEMORY_MB}", float),
    "training_s": (f"metrics.{names.WALL_S}", float),
    "study_best_val_accuracy": (f"metrics.{names.BEST_VAL_ACCURACY}", float),
    "trained_unroll": (f"tags.{names.TRAINED_UNROLL}", str),
    "unroll_check": (f"tags.{names.UNROLL_CHECK}", str),
    "unroll_difference": (f"metrics.{names.UNROLL_DIFFERENCE}", float),
    "data_splits": (f"tags.{names.DATA_SPLITS}", str),
    "test_split": (f"tags.{names.TEST_SPLIT}", str),
    "git_commit": (f"tags.{names.GIT_COMMIT}", str),
    "git_dirty": (f"tags.{names.GIT_DIRTY}", str),
    "tensorflow_version": (f"tags.{names.TENSORFLOW_VERSION}", str),
    "keras_version": (f"tags.{names.KERAS_VERSION}", str),
    "jax_version": (f"tags.{names.JAX_VERSION}", str),
    "python_version": (f"tags.{names.PYTHON_VERSION}", str),
    "cpu": (f"tags.{names.CPU}", str),
    "process": (f"tags.{names.PROCESS}", str),
    "gpu": (f"tags.{names.GPU}", str),
}
"""Tidy name -> (MLflow column, type). MLflow's other params and metrics follow under their own names."""


@dataclasses.dataclass(frozen=True)
class Recorded:
    experiment: str
    experiment_id: str
    runs: pd.DataFrame
    """One row per run: run_id, status, start_time, end_time, the COLUMNS, best_val_accuracy, then the rest."""
    curves: pd.DataFrame
    """One row per point: run_id, metric, step, value."""

    @property
    def sweep_run(self) -> pd.Series | None:
        """The sweep's own run (settings, plan, status); None for an experiment of single runs."""
        sweeps = self.runs[self.runs.stage == "sweep"]
        return None if sweeps.empty else sweeps.sort_values("start_time").iloc[-1]

    def stage(self, stage: str) -> pd.DataFrame:
        return self.runs[self.runs.stage == stage]


def latest_sweep_experiment() -> str:
    """The experiment of the most recently started sweep, else of the most recent run; UserError if none."""
    tracking.open_store(write=False)
    for filter_string in (f"tags.`{names.STAGE}` = 'sweep'", ""):
        latest = mlflow.search_runs(
            search_all_experiments=True,
            filter_string=filter_string,
            order_by=["attributes.start_time DESC"],
            max_results=1,
            output_format="list",
        )
        if latest:
            return mlflow.get_experiment(latest[0].info.experiment_id).name
    raise UserError(f"the tracking store {tracking.shown_uri()} has no runs yet; `make sweep` or `make run` records some")


def recorded_run(run_id: str):
    """The MLflow run `run_id` (its params, metrics and tags).

    Raises:
        UserError: the tracking store has no such run (the message says where run ids are listed).
    """
    from mlflow.exceptions import MlflowException

    client = tracking.open_store(write=False)
    try:
        return client.get_run(run_id)
    except MlflowException:
        raise UserError(f"no run '{run_id}' in the tracking store {tracking.shown_uri()}; copy a run id from `make ui`") from None


def read(experiment: str, curves: bool = True) -> Recorded:
    """Every run of `experiment` and (unless `curves` is False) the curves of those that trained.

    Raises:
        UserError: no such experiment (the message lists the ones that exist).
    """
    client = tracking.open_store(write=False)
    found = client.get_experiment_by_name(experiment)
    if found is None or found.lifecycle_stage == "deleted":
        raise UserError(f"no experiment '{experiment}' in {tracking.shown_uri()}; experiments there: {_listing(client)}")
    raw = mlflow.search_runs(experiment_ids=[found.experiment_id], max_results=50_000)
    if raw.empty:
        raise UserError(
            f"experiment '{experiment}' in {tracking.shown_uri()} has no runs; experiments with runs: {_listing(client)}"
        )
    runs = tidy(raw)
    history = _curves(client, runs if curves else runs.iloc[:0])
    best = history[history.metric == names.VAL_ACCURACY].groupby("run_id").value.max()
    runs.insert(runs.columns.get_loc("last_val_accuracy") + 1, "best_val_accuracy", runs.run_id.map(best))
    return Recorded(experiment, found.experiment_id, runs, history)


def _listing(client) -> str:
    """The experiments that hold runs, quoted, or how to record some."""
    existing = [
        f"'{found.name}'" for found in client.search_experiments() if client.search_runs([found.experiment_id], max_results=1)
    ]
    return ", ".join(existing) if existing else "none yet (`make sweep` or `make run` records some)"


def tidy(raw: pd.DataFrame) -> pd.DataFrame:
    """MLflow's runs as `mlflow.search_runs` returns them, typed under the COLUMNS' names, with `xla`: whether the
    run's `train.xla_on_cpu` asked XLA for its model (which it takes on a CPU-only machine). Runs recorded before a
    setting existed read what it now defaults to."""
    runs = raw[["run_id", "status", "start_time", "end_time"]].copy()
    for name, (column, kind) in COLUMNS.items():
        values = raw[column] if column in raw else pd.Series(np.nan, index=raw.index)
        if kind is str:
            runs[name] = values.astype("string")
        elif kind == "boolean":
            runs[name] = values.map({"True": True, "False": False}).astype("boolean")
        else:
            runs[name] = pd.to_numeric(values, errors="coerce").astype(kind)
    trained = runs.steps.notna()  # runs recorded before a setting existed ran with what it now defaults to
    for name, before in (("backend", "tensorflow"), ("task", "row"), ("xla_on_cpu", "none")):
        runs.loc[trained & runs[name].isna(), name] = before
    model = trained & runs.unroll.notna()  # a sweep's and its studies' runs record train settings, but no model
    runs["xla"] = [
        bool(known and xla_on_cpu_for(mode, unroll))
        for known, mode, unroll in zip(model, runs.xla_on_cpu, runs.unroll, strict=True)
    ]
    used = {column for column, _ in COLUMNS.values()}
    rest = [column for column in raw.columns if column.startswith(("params.", "metrics.")) and column not in used]
    runs = pd.concat([runs, raw[sorted(rest)]], axis=1)
    return runs.sort_values("start_time", ignore_index=True)


def _curves(client, runs: pd.DataFrame) -> pd.DataFrame:
    rows = [
        (run_id, key, point.step, point.value)
        for run_id in runs.run_id[~runs.stage.isin(["sweep", "study"])]
        for key in CURVES
        for point in client.get_metric_history(run_id, key)
    ]
    curves = pd.DataFrame(rows, columns=["run_id", "metric", "step", "value"])
    return curves.sort_values(["run_id", "metric", "step"], ignore_index=True)


def validation_images(runs: pd.DataFrame) -> int | None:
    """The size of the validation split, from the runs' `rnnbench.data_splits` tag (valid=400)."""
    sizes = split_images(runs, "valid")
    return int(sizes.iloc[0]) if len(sizes) else None


def split_images(runs: pd.DataFrame, split: str) -> pd.Series:
    """Images in `split` (train, valid or test) of each run that recorded its `rnnbench.data_splits` tag."""
    return runs.data_splits.dropna().str.extract(rf"{split}=(\d+)")[0].dropna().astype(int)
