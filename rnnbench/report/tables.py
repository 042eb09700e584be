"""The report's data: what an experiment recorded, read through MLflow's search API into tidy tables.

    python -c "from rnnbench.report.tables import read; print(read('rnnbench-sweep').runs)"

`runs` has one row per MLflow run (typed params, final metrics, tags, stage); `curves` one row per
(run, metric, step). Everything else in the report (leaderboard, study summary, figures) is
computed from these two tables, which are saved beside the report as CSV.
"""

from __future__ import annotations

import dataclasses
import re

import mlflow
import numpy as np
import pandas as pd

from rnnbench import names, tracking
from rnnbench.config import ModelConfig, xla_on_cpu_for
from rnnbench.errors import UserError
from rnnbench.sweep.definition import SEED_MODEL, SEED_TRAIN

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
            search_all_experiments=True, filter_string=filter_string, order_by=["attributes.start_time DESC"],
            max_results=1, output_format="list",
        )
        if latest:
            return mlflow.get_experiment(latest[0].info.experiment_id).name
    raise UserError(
        f"the tracking store {tracking.shown_uri()} has no runs yet; `make sweep` or `make run` records some"
    )


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
        raise UserError(f"experiment '{experiment}' in {tracking.shown_uri()} has no runs; experiments with runs: "
                        f"{_listing(client)}")
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
    runs["xla"] = [bool(known and xla_on_cpu_for(mode, unroll)) for known, mode, unroll in zip(model, runs.xla_on_cpu, runs.unroll)]
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


def compared_runs(recorded: Recorded) -> pd.DataFrame:
    """The runs the report compares, with a `group` column: runs that differ only by seed share it.

    A sweep's final runs, grouped by model (cell and size, e.g. gru-h128): `model.unroll` changes speed, not the
    function, so runs of one seed in either setting are repeats of one model; where the sweep's check found a model's
    settings to differ (or could not check them), by variant (gru-h128-unrolled). In an experiment without final runs,
    its single runs by variant, with whatever else varies within a variant (e.g. the learning rate) added to the name.
    """
    runs = recorded.stage("final")
    sweep = not runs.empty
    if not sweep:
        runs = recorded.stage("run")
    runs = runs[runs.status == "FINISHED"].copy()
    if runs.empty:
        runs["group"] = pd.Series(dtype="string")
        return runs
    apart = set(unroll_checks(recorded).query("verdict in ['differ', 'unchecked']").index)
    shapes = zip(runs.cell, runs.hidden_units, runs.unroll)
    variant = pd.Series(
        [ModelConfig(cell, int(units), bool(unroll)).variant if not sweep or model_name(cell, units) in apart
         else model_name(cell, units) for cell, units, unroll in shapes], index=runs.index, dtype="string"
    )
    labels = variant.copy()
    repeats = {"train.seed", "model.unroll"} if sweep else {"train.seed"}  # what runs of one group may differ by
    for _, members in settings(runs).groupby(variant):
        varying = [key for key in members.columns if members[key].nunique(dropna=False) > 1 and key not in repeats]
        for index, row in members.iterrows():
            labels[index] += "".join(f" {key}={row[key]}" for key in varying)
    runs["group"] = labels.astype("string")
    return runs


def model_name(cell: str, hidden_units: int) -> str:
    """e.g. gru-h128: a model whatever its unroll setting (the sweep's study of it has the same name)."""
    return f"{cell}-h{int(hidden_units)}"


def is_variant(group: str) -> bool:
    """Whether a compared group names a variant (gru-h128-unrolled, perhaps with more settings), not a model."""
    return re.search(r"-h\d+-(unrolled|looped)\b", group) is not None


def unroll_checks(recorded: Recorded) -> pd.DataFrame:
    """Per model of a sweep (index: its study's name): the unroll setting it was trained in, and the verdict and
    relative loss difference of the check that the settings agree (rnnbench.sweep.unroll); empty for other experiments."""
    studies = recorded.stage("study")
    table = pd.DataFrame({
        "trained": studies.trained_unroll.map({"true": True, "false": False}).astype("boolean"),
        "verdict": studies.unroll_check, "difference": studies.unroll_difference,
    })
    return table.set_axis(studies.study.astype(str).astype(object)).rename_axis("model")


def speeds(recorded: Recorded) -> pd.DataFrame:
    """One row per (cell, hidden_units, unroll) that finished runs measured (final, timing and single runs): mean
    samples/s and peak memory, the compile time of the shape's first run in a process (the longest of its runs, trials
    included: later runs of a shape in a process reuse its compiled model), how many runs, whether the model was trained
    in full in that setting ("trained") or only timed, the seconds a full run's steps take at that speed
    (compilation and steps), and per model the unrolled setting's samples/s over the looped one's
    (`unrolled_over_looped`) and the faster setting."""
    finished = recorded.runs[recorded.runs.status == "FINISHED"].dropna(subset=["cell", "hidden_units", "unroll"])
    compiled = finished[finished.stage.isin(["final", "timing", "run", "trial"])].groupby(
        ["cell", "hidden_units", "unroll"]).compile_s.max()
    runs = finished[finished.stage.isin(["final", "timing", "run"])].dropna(subset=["train_samples_per_s"])
    columns = ["cell", "hidden_units", "unroll", "train_samples_per_s", "compile_s", "peak_memory_mb", "runs", "trained",
               "run_s", "unrolled_over_looped", "faster"]
    if runs.empty:
        return pd.DataFrame(columns=columns)
    table = runs.groupby(["cell", "hidden_units", "unroll"]).agg(
        train_samples_per_s=("train_samples_per_s", "mean"), peak_memory_mb=("peak_memory_mb", "mean"),
        runs=("run_id", "size"), trained=("stage", lambda stages: bool((stages != "timing").any())),
        batch_size=("batch_size", "first"), full_steps=("steps", "max"),
    ).reset_index()
    table["compile_s"] = [compiled.get((cell, units, unroll), np.nan)
                          for cell, units, unroll in zip(table.cell, table.hidden_units, table.unroll)]
    steps = int(table.full_steps.max())  # the full runs' length, for every setting alike
    table["run_s"] = table.compile_s.fillna(0) + steps * table.batch_size / table.train_samples_per_s
    by_model = table.pivot_table(index=["cell", "hidden_units"], columns="unroll", values="train_samples_per_s")
    ratio = (by_model[True] / by_model[False]) if {True, False} <= set(by_model.columns) else pd.Series(dtype=float)
    table["unrolled_over_looped"] = [ratio.get((cell, units), np.nan) for cell, units in zip(table.cell, table.hidden_units)]
    fastest = table.loc[table.groupby(["cell", "hidden_units"]).run_s.idxmin()].set_index(["cell", "hidden_units"]).unroll
    table["faster"] = [fastest[(cell, units)] == unroll for cell, units, unroll in zip(table.cell, table.hidden_units, table.unroll)]
    return table.sort_values(["cell", "hidden_units", "unroll"], ignore_index=True)[columns]


def settings(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs' configuration, one column per config key (`train.learning_rate`, ...), as recorded."""
    typed = {column.removeprefix("params."): name for name, (column, _) in COLUMNS.items() if column.startswith("params.")}
    table = pd.DataFrame({key: runs[name] for key, name in typed.items()}, index=runs.index)
    rest = [column for column in runs.columns if column.startswith("params.")]
    table = pd.concat([table, runs[rest].rename(columns=lambda column: column.removeprefix("params."))], axis=1)
    return table.drop(columns=["tracking.experiment"], errors="ignore")


def reference_runs(recorded: Recorded, compared: pd.DataFrame) -> pd.DataFrame:
    """The seed tutorial's finished runs on the compared runs' data: the sweep's reference runs, or
    single runs with the seed's settings."""
    runs = recorded.stage("reference")
    if runs.empty:
        runs = recorded.stage("run")
        seed = (
            (runs.cell == SEED_MODEL.cell) & (runs.hidden_units == SEED_MODEL.hidden_units) & (runs.unroll == SEED_MODEL.unroll)
            & (runs.learning_rate == SEED_TRAIN.learning_rate) & (runs.steps == SEED_TRAIN.steps)
            & (runs.batch_size == SEED_TRAIN.batch_size)
        )
        runs = runs[seed.fillna(False)]
    if not compared.empty:
        runs = runs[runs.data_source.isin(compared.data_source.unique())]
    return runs[runs.status == "FINISHED"]


def trial_scores(trials: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per study, each planned trial's score as the search saw it: its last validation accuracy (a pruned
    trial's when it was stopped; 0 for a trial that failed before any evaluation)."""
    counted = trials[~superseded(trials) & (trials.status != "RUNNING")]
    return {study: group.last_val_accuracy.fillna(0.0).to_numpy() for study, group in counted.groupby("study")}


def validation_images(runs: pd.DataFrame) -> int | None:
    """The size of the validation split, from the runs' `rnnbench.data_splits` tag (valid=400)."""
    sizes = split_images(runs, "valid")
    return int(sizes.iloc[0]) if len(sizes) else None


def split_images(runs: pd.DataFrame, split: str) -> pd.Series:
    """Images in `split` (train, valid or test) of each run that recorded its `rnnbench.data_splits` tag."""
    return runs.data_splits.dropna().str.extract(rf"{split}=(\d+)")[0].dropna().astype(int)


def superseded(runs: pd.DataFrame) -> pd.Series:
    """Sweep runs whose trial was re-enqueued (a dead worker, an interruption, a lost run): their retry counts."""
    return (runs.failure.isin(names.RETRIED_FAILURES) | (runs.retried == "true")).fillna(False).astype(bool)


def trial_states(trials: pd.DataFrame) -> pd.Series:
    """Each trial's Optuna state (COMPLETE, PRUNED, FAIL); RUNNING while its run is; FAIL for a run that
    ended without one (its worker was killed before it could say)."""
    return trials.trial_state.fillna(trials.status.map({"RUNNING": "RUNNING"})).fillna("FAIL")


def study_summary(recorded: Recorded) -> pd.DataFrame:
    """One row per study: its run's state and outcome, and its trials counted from their runs."""
    studies = recorded.stage("study")
    if studies.empty:
        return pd.DataFrame()
    trials = recorded.stage("trial")
    counted = trials[~superseded(trials)]
    counts = counted.assign(state=trial_states(counted)).groupby(["study", "state"]).size().unstack(fill_value=0)
    summary = studies[["study", "status", "run_id", "study_best_val_accuracy", "params.search.trials"]]
    summary = summary.rename(columns={"params.search.trials": "planned"}).set_index("study")
    summary["chosen"] = [_chosen(row) for _, row in studies.iterrows()]
    for state in ("COMPLETE", "PRUNED", "FAIL", "RUNNING"):
        summary[state.lower()] = counts[state] if state in counts else 0
    summary = summary.fillna({"complete": 0, "pruned": 0, "fail": 0, "running": 0})
    # The study's own score once it is closed (the best complete trial's last evaluation), else so far.
    so_far = counted[counted.trial_state == "COMPLETE"].groupby("study").last_val_accuracy.max()
    summary["best_val_accuracy"] = summary.pop("study_best_val_accuracy").fillna(so_far)
    return summary.reset_index().sort_values("study", ignore_index=True)


def _chosen(study: pd.Series) -> dict:
    """A study's best trial's value of each searched setting, as its run recorded them (none while it runs)."""
    prefix = f"metrics.{names.BEST_VALUE_PREFIX}"
    chosen = {column.removeprefix(prefix): value for column, value in study.items() if column.startswith(prefix) and pd.notna(value)}
    old = study.get(f"metrics.{names.OLD_BEST_LEARNING_RATE}")
    if not chosen and old is not None and pd.notna(old):
        chosen["train.learning_rate"] = old
    return chosen
