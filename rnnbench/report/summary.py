"""The sweep's closing summary in the terminal: the report's leaderboard, as text.

    rnnbench sweep experiments/sweep_tiny.yaml      # prints it when the sweep ends or is stopped

Read from the MLflow runs through `rnnbench.report.tables.leaderboard`, the same function as the
HTML report's, so that the two never disagree.
"""

from __future__ import annotations

from rnnbench.report import leaderboard, tables


def final_runs(experiment: str) -> str:
    """Per variant, best first: test accuracy (mean and sd over seeds), seeds, the tuned values, speed."""
    recorded = tables.read(experiment, curves=False)
    compared = tables.compared_runs(recorded)
    board = leaderboard.leaderboard(compared, tables.reference_runs(recorded, compared), tuned=list(leaderboard.searched(recorded)))
    if board.empty:
        return "no final run has finished yet"
    table = board.set_index("group")[["test_accuracy", "test_accuracy_sd", "seeds", "tuned", "train_samples_per_s"]]
    table = table.rename_axis("variant").rename(columns={"test_accuracy_sd": "sd", "train_samples_per_s": "samples_per_s"})
    text = table.to_string(formatters={
        "test_accuracy": "{:.4f}".format, "sd": lambda value: "-" if value != value else f"{value:.4f}",
        "tuned": leaderboard.format_tuned, "samples_per_s": "{:,.0f}".format,
    })
    return f"final runs of '{experiment}' (test accuracy: mean and sd over seeds)\n{text}"
