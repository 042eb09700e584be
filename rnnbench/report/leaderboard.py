"""The leaderboard: one row per compared model (or variant), best first, from the tidy tables. The one ranking rnnbench
makes: the HTML report, its LaTeX/Markdown export and the sweep's terminal summary all read it.

    python -c "from rnnbench.report import leaderboard; help(leaderboard.leaderboard)"
"""

from __future__ import annotations

from collections.abc import Sequence

import mlflow
import numpy as np
import pandas as pd

from rnnbench import names
from rnnbench.config import REFERENCE_LABEL
from rnnbench.records import Recorded
from rnnbench.report.tables import is_variant, settings
from rnnbench.sweep.space import described_as_log, short


def searched(recorded: Recorded) -> dict[str, bool]:
    """The settings the experiment's sweep searched -> whether on a log scale (the learning rate for a sweep
    recorded before the `space:` section, or an experiment of single runs)."""
    sweep = recorded.sweep_run
    declared = (
        {}
        if sweep is None
        else {
            column.removeprefix("params.space."): described_as_log(str(value))
            for column, value in sweep.items()
            if column.startswith("params.space.") and pd.notna(value)
        }
    )
    order = str(sweep.get("params.space", "")).split(",") if sweep is not None else []
    ordered = {key: declared[key] for key in order if key in declared}
    return {**ordered, **declared} or {"train.learning_rate": True}


def format_tuned(tuned: dict) -> str:
    """{"train.learning_rate": 0.0012, "model.dropout": 0.21} -> "learning_rate 0.0012, dropout 0.21"."""
    parts = []
    for key, value in tuned.items():
        number = pd.to_numeric(value, errors="coerce")
        text = f"{number:.3g}" if pd.notna(number) else "-" if pd.isna(value) else str(value)  # a choice: as it is
        parts.append(f"{short(key)} {text}")
    return ", ".join(parts)


def leaderboard(
    compared: pd.DataFrame,
    reference: pd.DataFrame,
    tuned: Sequence[str] = ("train.learning_rate",),
    speeds: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per group (a sweep's model, or a variant), best first: test accuracy over seeds, its `tuned` settings,
    speed, size, runs, and (from `speeds`, `tables.speeds`) the unroll setting it trains fastest in, `train_unrolled`.

    Seeds are the distinct `train.seed` values; runs of one seed are repeats, averaged first. So
    `test_accuracy` is the mean over seeds of each seed's mean, `test_accuracy_sd` its standard
    deviation over seeds (NaN with one seed: the spread cannot be estimated), and `repeat_sd` the
    pooled standard deviation between repeats of one seed: run-to-run nondeterminism, not seed variance.
    """
    rows = pd.concat([compared, reference.assign(group=REFERENCE_LABEL)])
    if rows.empty:
        return pd.DataFrame()
    values = settings(rows)
    rows = rows.assign(tuned=[{key: values.at[index, key] for key in tuned if key in values} for index in rows.index])
    per_seed = rows.groupby(["group", "seed"], sort=False).test_accuracy.agg(["mean", "var", "size"]).reset_index()
    repeated = per_seed[per_seed["size"] > 1]
    pooled = (repeated["var"] * (repeated["size"] - 1)).groupby(repeated.group).sum() / (repeated["size"] - 1).groupby(
        repeated.group
    ).sum()
    seeds = per_seed.groupby("group").agg(
        test_accuracy=("mean", "mean"), test_accuracy_sd=("mean", "std"), seeds=("mean", "size")
    )
    board = (
        rows.groupby("group", sort=False)
        .agg(
            cell=("cell", "first"),
            hidden_units=("hidden_units", "first"),
            unroll=("unroll", "first"),
            runs=("run_id", "size"),
            tuned=("tuned", "first"),
            parameters=("parameters", "first"),
            train_samples_per_s=("train_samples_per_s", "mean"),
            compile_s=("compile_s", "mean"),
            training_s=("training_s", "mean"),
            steps=("steps", "first"),
            run_ids=("run_id", list),
            seeds_of_runs=("seed", list),
        )
        .join(seeds)
        .assign(repeat_sd=np.sqrt(pooled))
        .sort_values("test_accuracy", ascending=False)
        .reset_index()
    )
    ranked = (board.group != REFERENCE_LABEL).to_numpy(dtype=bool)
    board["is_reference"] = ~ranked
    board.insert(0, "rank", np.where(ranked, np.cumsum(ranked), np.nan))  # the reference is not ranked
    best = board.loc[~board.is_reference, "test_accuracy"].max()
    board["behind_best"] = best - board.test_accuracy
    reference_accuracy = board.loc[board.is_reference, "test_accuracy"]
    board["over_reference"] = board.test_accuracy - (reference_accuracy.iloc[0] if len(reference_accuracy) else np.nan)
    faster = (
        {}
        if speeds is None or speeds.empty
        else {(row.cell, row.hidden_units): row.unroll for row in speeds[speeds.faster].itertuples()}
    )
    board["train_unrolled"] = [  # a variant (the reference, a model whose settings differ) trains in its own setting
        unroll if reference or is_variant(group) else faster.get((cell, units), unroll)
        for group, cell, units, unroll, reference in zip(
            board.group, board.cell, board.hidden_units, board.unroll, board.is_reference, strict=True
        )
    ]
    return board


def tuned_columns(board: pd.DataFrame, column: str = "tuned") -> pd.DataFrame:
    """The table with its dict column of tuned values (`tuned`, a study's `chosen`) as one plain column per key."""
    values = pd.DataFrame(board[column].tolist(), index=board.index)
    return pd.concat([board.drop(columns=[column]), values.apply(pd.to_numeric, errors="coerce")], axis=1)


def correctness(runs: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per group, (seeds, images): how often each seed's runs got each test image right (repeats averaged),
    from the runs' `test_predictions.csv`; only runs on the test split most of them share, and only groups
    all of whose runs saved their predictions (runs recorded before rnnbench saved them did not)."""
    import tempfile

    if runs.empty or runs.test_split.isna().all():
        return {}
    runs = runs[runs.test_split == runs.test_split.mode().iloc[0]]
    by_seed: dict[str, dict[int, list[np.ndarray]]] = {}
    missing = set()
    with tempfile.TemporaryDirectory(prefix="rnnbench-predictions-") as folder:
        for _, run in runs.iterrows():
            try:
                path = mlflow.artifacts.download_artifacts(
                    run_id=run.run_id, artifact_path=names.PREDICTIONS_ARTIFACT, dst_path=f"{folder}/{run.run_id}"
                )
            except Exception:  # MLflow raises several types for an artifact that is not there
                missing.add(run.group)
                continue
            table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
            by_seed.setdefault(run.group, {}).setdefault(int(run.seed), []).append(table[:, 0] == table[:, 1])
    return {
        group: np.stack([np.mean(repeats, axis=0) for _, repeats in sorted(seeds.items())])
        for group, seeds in by_seed.items()
        if group not in missing
    }
