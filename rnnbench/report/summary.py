"""The sweep's closing summary in the terminal: the report's leaderboard, as text.

    rnnbench sweep experiments/sweep_tiny.yaml      # prints it when the sweep ends or is stopped

Read from the MLflow runs through `rnnbench.report.leaderboard`, the same function as the
HTML report's, so that the two never disagree.
"""

from __future__ import annotations

from rnnbench import records
from rnnbench.report import leaderboard, tables


def final_runs(experiment: str) -> str:
    """Per model, best first: test accuracy (mean and sd over seeds), seeds, the tuned values, the unroll setting it
    trains fastest in, and the speed of its final runs."""
    recorded = records.read(experiment, curves=False)
    compared = tables.compared_runs(recorded)
    board = leaderboard.leaderboard(
        compared,
        tables.reference_runs(recorded, compared),
        tuned=list(leaderboard.searched(recorded)),
        speeds=tables.speeds(recorded),
    )
    if board.empty:
        return "no final run has finished yet"
    table = board.set_index("group")[
        ["test_accuracy", "test_accuracy_sd", "seeds", "tuned", "train_unrolled", "train_samples_per_s"]
    ]
    table = table.rename_axis("model").rename(
        columns={"test_accuracy_sd": "sd", "train_unrolled": "train_it", "train_samples_per_s": "samples_per_s"}
    )
    text = table.to_string(
        formatters={
            "test_accuracy": "{:.4f}".format,
            "sd": lambda value: "-" if value != value else f"{value:.4f}",
            "tuned": leaderboard.format_tuned,
            "train_it": lambda unrolled: "unrolled" if unrolled else "looped",
            "samples_per_s": "{:,.0f}".format,
        }
    )
    return f"final runs of '{experiment}' (test accuracy: mean and sd over seeds)\n{text}"
