"""Published test accuracies on the sequential-MNIST tasks, as data: the yardstick the report draws beside a sweep.

    python -c "from rnnbench import published; print(published.table().to_string())"

The rows live in `published.csv` beside this module, one per (paper's model, task). Every number was read
from the table its row names (`table`, in the paper `arxiv`); a row that reproduces another paper's figure
inside that table names the original in `quoted_from`. `cell` is the rnnbench cell the row is drawn beside,
blank for models rnnbench does not build (BN-LSTM, uRNN, TCN, ...). Adding a published result is one row,
checked against its source table; tests/test_published.py checks the row's form.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

FILE = Path(__file__).with_name("published.csv")
FULL_TRAINING_SET = 60_000
"""MNIST's training images, which the published runs trained on (less any validation hold-out)."""


def table() -> pd.DataFrame:
    """All published rows: task, cell, model, hidden_units, parameters, test_accuracy (a fraction), authors,
    year, title, table, arxiv, quoted_from, setup."""
    return pd.read_csv(
        FILE,
        dtype={
            "cell": "string",
            "hidden_units": "Int64",
            "parameters": "Int64",
            "arxiv": str,
            "quoted_from": "string",
            "setup": "string",
        },
    )


def citation(row: pd.Series) -> str:
    """Where the number is printed: "Cooijmans et al. 2017, Table 1 (arXiv:1603.09025)"."""
    return f"{row.authors} {row.year}, {row.table} (arXiv:{row.arxiv})"


def size(row: pd.Series) -> str:
    """The published model's size as the paper gives it: "100 units", "about 70K parameters", or "size not given"."""
    if pd.notna(row.hidden_units):
        return f"{row.hidden_units} units"
    if pd.notna(row.parameters):
        return f"about {row.parameters / 1000:.0f}K parameters"
    return "size not given"
