"""The report's tables, derived from an experiment's recorded runs (`rnnbench.records`).

    rnnbench report --experiment rnnbench-sweep      # writes these tables beside the report, as CSV

Runs grouped for comparison, the reference runs, speeds, study summaries: everything the report (leaderboard,
study summary, figures) shows is computed here from the two tables `records.read` returns.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from rnnbench import names
from rnnbench.config import SEED_MODEL, SEED_TRAIN, ModelConfig
from rnnbench.records import COLUMNS, Recorded


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
    shapes = zip(runs.cell, runs.hidden_units, runs.unroll, strict=True)
    variant = pd.Series(
        [
            ModelConfig(cell, int(units), bool(unroll)).variant
            if not sweep or model_name(cell, units) in apart
            else model_name(cell, units)
            for cell, units, unroll in shapes
        ],
        index=runs.index,
        dtype="string",
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
    table = pd.DataFrame(
        {
            "trained": studies.trained_unroll.map({"true": True, "false": False}).astype("boolean"),
            "verdict": studies.unroll_check,
            "difference": studies.unroll_difference,
        }
    )
    return table.set_axis(studies.study.astype(str).astype(object)).rename_axis("model")


def speeds(recorded: Recorded) -> pd.DataFrame:
    """One row per (cell, hidden_units, unroll) that finished runs measured (final, timing and single runs): mean
    samples/s and peak memory, the compile time of the shape's first run in a process (the longest of its runs, trials
    included: later runs of a shape in a process reuse its compiled model), how many runs, whether the model was trained
    in full in that setting ("trained") or only timed, the seconds a full run's steps take at that speed
    (compilation and steps), and per model the unrolled setting's samples/s over the looped one's
    (`unrolled_over_looped`) and the faster setting."""
    finished = recorded.runs[recorded.runs.status == "FINISHED"].dropna(subset=["cell", "hidden_units", "unroll"])
    compiled = (
        finished[finished.stage.isin(["final", "timing", "run", "trial"])]
        .groupby(["cell", "hidden_units", "unroll"])
        .compile_s.max()
    )
    runs = finished[finished.stage.isin(["final", "timing", "run"])].dropna(subset=["train_samples_per_s"])
    columns = [
        "cell",
        "hidden_units",
        "unroll",
        "train_samples_per_s",
        "compile_s",
        "peak_memory_mb",
        "runs",
        "trained",
        "run_s",
        "unrolled_over_looped",
        "faster",
    ]
    if runs.empty:
        return pd.DataFrame(columns=columns)
    table = (
        runs.groupby(["cell", "hidden_units", "unroll"])
        .agg(
            train_samples_per_s=("train_samples_per_s", "mean"),
            peak_memory_mb=("peak_memory_mb", "mean"),
            runs=("run_id", "size"),
            trained=("stage", lambda stages: bool((stages != "timing").any())),
            batch_size=("batch_size", "first"),
            full_steps=("steps", "max"),
        )
        .reset_index()
    )
    table["compile_s"] = [
        compiled.get((cell, units, unroll), np.nan)
        for cell, units, unroll in zip(table.cell, table.hidden_units, table.unroll, strict=True)
    ]
    steps = int(table.full_steps.max())  # the full runs' length, for every setting alike
    table["run_s"] = table.compile_s.fillna(0) + steps * table.batch_size / table.train_samples_per_s
    by_model = table.pivot_table(index=["cell", "hidden_units"], columns="unroll", values="train_samples_per_s")
    ratio = (by_model[True] / by_model[False]) if {True, False} <= set(by_model.columns) else pd.Series(dtype=float)
    table["unrolled_over_looped"] = [
        ratio.get((cell, units), np.nan) for cell, units in zip(table.cell, table.hidden_units, strict=True)
    ]
    fastest = table.loc[table.groupby(["cell", "hidden_units"]).run_s.idxmin()].set_index(["cell", "hidden_units"]).unroll
    table["faster"] = [
        fastest[(cell, units)] == unroll for cell, units, unroll in zip(table.cell, table.hidden_units, table.unroll, strict=True)
    ]
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
            (runs.cell == SEED_MODEL.cell)
            & (runs.hidden_units == SEED_MODEL.hidden_units)
            & (runs.unroll == SEED_MODEL.unroll)
            & (runs.learning_rate == SEED_TRAIN.learning_rate)
            & (runs.steps == SEED_TRAIN.steps)
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
        summary[state.lower()] = counts.get(state, 0)
    summary = summary.fillna({"complete": 0, "pruned": 0, "fail": 0, "running": 0})
    # The study's own score once it is closed (the best complete trial's last evaluation), else so far.
    so_far = counted[counted.trial_state == "COMPLETE"].groupby("study").last_val_accuracy.max()
    summary["best_val_accuracy"] = summary.pop("study_best_val_accuracy").fillna(so_far)
    return summary.reset_index().sort_values("study", ignore_index=True)


def _chosen(study: pd.Series) -> dict:
    """A study's best trial's value of each searched setting, as its run recorded them (none while it runs)."""
    prefix = f"metrics.{names.BEST_VALUE_PREFIX}"
    chosen = {
        column.removeprefix(prefix): value for column, value in study.items() if column.startswith(prefix) and pd.notna(value)
    }
    old = study.get(f"metrics.{names.OLD_BEST_LEARNING_RATE}")
    if not chosen and old is not None and pd.notna(old):
        chosen["train.learning_rate"] = old
    return chosen
