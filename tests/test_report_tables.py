"""Unit tests of the report's tables: grouping, ranking and the Pareto front, on small made-up records."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rnnbench import records
from rnnbench.report import figures, leaderboard, tables


def recorded(*runs: dict) -> records.Recorded:
    """Runs as MLflow's search returns them (strings for params and tags), through the report's tidying."""
    rows = []
    for number, run in enumerate(runs):
        rows.append(
            {
                "run_id": f"run{number}",
                "status": run.get("status", "FINISHED"),
                "start_time": pd.Timestamp("2026-11-29", tz="UTC") + pd.Timedelta(minutes=number),
                "end_time": pd.NaT,
                "tags.rnnbench.stage": run.get("stage", "run"),
                "params.model.cell": run["cell"],
                "params.model.hidden_units": str(run["units"]),
                "params.model.unroll": str(run.get("unroll", True)),
                "params.train.learning_rate": str(run.get("lr", 1e-3)),
                "params.train.seed": str(run.get("seed", 0)),
                "params.train.steps": str(run.get("steps", 5000)),
                "params.train.batch_size": "50",
                "params.data.source": "mnist5k",
                "metrics.test/accuracy": run["accuracy"],
                **({"params.train.backend": run["backend"]} if "backend" in run else {}),
                **({"params.train.xla_on_cpu": run["xla_on_cpu"]} if "xla_on_cpu" in run else {}),
                **({"tags.rnnbench.study": run["study"]} if "study" in run else {}),
                **({"tags.rnnbench.unroll_check": run["unroll_check"]} if "unroll_check" in run else {}),
            }
        )
    runs_table = records.tidy(pd.DataFrame(rows))
    return records.Recorded("made-up", "1", runs_table, pd.DataFrame(columns=["run_id", "metric", "step", "value"]))


def test_tidy_types_the_params():
    runs = recorded({"cell": "gru", "units": 64, "unroll": False, "lr": 2e-3, "accuracy": 0.9}).runs
    row = runs.iloc[0]
    assert (row.cell, row.hidden_units, row.unroll, row.learning_rate, row.seed) == ("gru", 64, False, 2e-3, 0)


def test_runs_that_differ_only_by_seed_share_a_group_and_other_differences_are_named():
    made_up = recorded(
        {"cell": "lstm", "units": 32, "seed": 0, "accuracy": 0.90},
        {"cell": "lstm", "units": 32, "seed": 1, "accuracy": 0.92},
        {"cell": "gru", "units": 32, "lr": 1e-3, "accuracy": 0.91},
        {"cell": "gru", "units": 32, "lr": 3e-3, "accuracy": 0.93},
        {"cell": "gru", "units": 32, "status": "FAILED", "accuracy": float("nan")},
    )
    groups = tables.compared_runs(made_up).group.tolist()
    assert groups == [
        "lstm-h32-unrolled",
        "lstm-h32-unrolled",
        "gru-h32-unrolled train.learning_rate=0.001",
        "gru-h32-unrolled train.learning_rate=0.003",
    ]


def test_a_jax_run_is_its_own_group_and_runs_from_before_train_backend_count_as_tensorflow():
    made_up = recorded(
        {"cell": "lstm", "units": 32, "seed": 0, "accuracy": 0.90},  # recorded before train.backend existed
        {"cell": "lstm", "units": 32, "seed": 1, "accuracy": 0.92, "backend": "tensorflow"},
        {"cell": "lstm", "units": 32, "seed": 0, "accuracy": 0.91, "backend": "jax"},
    )
    assert made_up.runs.backend.tolist() == ["tensorflow", "tensorflow", "jax"]
    # the same for the settings that came later: rows, and no XLA
    assert made_up.runs.task.tolist() == ["row"] * 3 and made_up.runs.xla_on_cpu.tolist() == ["none"] * 3
    assert made_up.runs.xla.tolist() == [False] * 3
    groups = tables.compared_runs(made_up).group.tolist()
    assert groups == ["lstm-h32-unrolled train.backend=tensorflow"] * 2 + ["lstm-h32-unrolled train.backend=jax"]


def test_xla_says_whether_train_xla_on_cpu_asked_it_for_the_runs_model():
    made_up = recorded(
        {"cell": "gru", "units": 32, "unroll": False, "xla_on_cpu": "looped", "accuracy": 0.9},
        {"cell": "gru", "units": 32, "unroll": True, "xla_on_cpu": "looped", "accuracy": 0.9},
        {"cell": "gru", "units": 32, "unroll": True, "xla_on_cpu": "all", "accuracy": 0.9},
        {"cell": "gru", "units": 32, "unroll": False, "xla_on_cpu": "none", "accuracy": 0.9},
        {"cell": "gru", "units": 32, "unroll": None, "xla_on_cpu": "looped", "accuracy": 0.9, "stage": "sweep"},  # no model
    )
    assert made_up.runs.xla.tolist() == [True, False, True, False, False]


def test_the_leaderboard_ranks_by_mean_accuracy_and_measures_gaps_in_fractions():
    made_up = recorded(
        {"cell": "lstm", "units": 32, "seed": 0, "accuracy": 0.90, "stage": "final"},
        {"cell": "lstm", "units": 32, "seed": 1, "accuracy": 0.94, "stage": "final"},
        {"cell": "gru", "units": 32, "accuracy": 0.93, "stage": "final"},
        {"cell": "simple_rnn", "units": 50, "accuracy": 0.91, "stage": "reference"},
    )
    compared = tables.compared_runs(made_up)
    board = leaderboard.leaderboard(compared, tables.reference_runs(made_up, compared))
    assert board.group.tolist() == ["gru-h32", "lstm-h32", "reference: the seed tutorial"]  # a sweep ranks models
    assert board.test_accuracy.tolist() == pytest.approx([0.93, 0.92, 0.91])
    assert board.seeds.tolist() == [1, 2, 1]
    assert board["rank"].tolist()[:2] == [1, 2] and pd.isna(board["rank"].iloc[2])  # the reference is not ranked
    assert board.behind_best.tolist() == pytest.approx([0, 0.01, 0.02])
    assert board.over_reference.tolist()[:2] == pytest.approx([0.02, 0.01])


def test_a_sweep_ranks_models_whose_unroll_settings_are_repeats_unless_its_check_found_them_to_differ():
    """Final runs of one seed in both unroll settings (final.train_every_unroll) are repeats of one model; a model whose
    study's check said the settings differ is ranked per setting."""
    made_up = recorded(
        {"cell": "lstm", "units": 32, "unroll": False, "seed": 0, "accuracy": 0.90, "stage": "final"},
        {"cell": "lstm", "units": 32, "unroll": True, "seed": 0, "accuracy": 0.92, "stage": "final"},
        {"cell": "gru", "units": 32, "unroll": False, "seed": 0, "accuracy": 0.93, "stage": "final"},
        {"cell": "gru", "units": 32, "unroll": True, "seed": 0, "accuracy": 0.80, "stage": "final"},
        {"cell": "gru", "units": 32, "accuracy": float("nan"), "stage": "study", "study": "gru-h32", "unroll_check": "differ"},
        {"cell": "lstm", "units": 32, "accuracy": float("nan"), "stage": "study", "study": "lstm-h32", "unroll_check": "agree"},
    )
    board = leaderboard.leaderboard(tables.compared_runs(made_up), tables.reference_runs(made_up, made_up.runs.iloc[:0]))
    assert board.group.tolist() == ["gru-h32-looped", "lstm-h32", "gru-h32-unrolled"]
    lstm = board.set_index("group").loc["lstm-h32"]
    assert (lstm.seeds, lstm.runs, lstm.test_accuracy) == (1, 2, pytest.approx(0.91))


def test_single_runs_of_the_seed_configuration_are_the_reference():
    made_up = recorded(
        {"cell": "simple_rnn", "units": 50, "accuracy": 0.91},
        {"cell": "simple_rnn", "units": 50, "lr": 3e-3, "accuracy": 0.93},  # not the seed's learning rate
        {"cell": "simple_rnn", "units": 50, "steps": 2000, "accuracy": 0.88},  # nor its steps
    )
    reference = tables.reference_runs(made_up, tables.compared_runs(made_up))
    assert reference.run_id.tolist() == ["run0"]


@pytest.mark.parametrize(
    "costs, accuracies, front",
    [
        ([1, 2, 3], [0.5, 0.7, 0.9], [0, 1, 2]),  # each costlier one is better: all on the front
        ([1, 2, 3], [0.9, 0.7, 0.8], [0]),  # the cheapest is also the best
        ([1, 1, 2], [0.6, 0.8, 0.7], [1]),  # equal cost: only the more accurate counts
    ],
)
def test_the_pareto_front_keeps_exactly_the_undominated_variants(costs, accuracies, front):
    board = pd.DataFrame({"training_s": costs, "test_accuracy": accuracies})
    assert sorted(figures._front(board, "training_s").index) == front


def test_seeds_are_distinct_train_seeds_and_repeats_of_one_seed_are_nondeterminism():
    from rnnbench.report.page import _spread

    made_up = recorded(  # two repeats of seed 0 (say, runs on nondeterministic GPU kernels), and seed 1
        {"cell": "lstm", "units": 32, "seed": 0, "accuracy": 0.90, "stage": "final"},
        {"cell": "lstm", "units": 32, "seed": 0, "accuracy": 0.92, "stage": "final"},
        {"cell": "lstm", "units": 32, "seed": 1, "accuracy": 0.95, "stage": "final"},
        {"cell": "gru", "units": 32, "seed": 0, "accuracy": 0.93, "stage": "final"},
    )
    compared = tables.compared_runs(made_up)
    board = leaderboard.leaderboard(compared, tables.reference_runs(made_up, compared)).set_index("group")
    lstm, gru = board.loc["lstm-h32"], board.loc["gru-h32"]
    assert (lstm.seeds, lstm.runs) == (2, 3)
    assert lstm.test_accuracy == pytest.approx((0.91 + 0.95) / 2)  # repeats averaged first, then seeds
    assert lstm.test_accuracy_sd == pytest.approx(np.std([0.91, 0.95], ddof=1))
    assert lstm.repeat_sd == pytest.approx(np.std([0.90, 0.92], ddof=1))
    assert "± 2.83 points sd over 2 seeds, and 3 runs whose repeats of a seed differ by 1.41 points sd" in _spread(lstm)
    assert (gru.seeds, gru.runs) == (1, 1) and pd.isna(gru.test_accuracy_sd)
    assert _spread(gru) == " (1 seed: its spread over seeds cannot be estimated)"
