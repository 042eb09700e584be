"""The published-results table and what the report draws from it (the report itself: tests/test_end_to_end.py)."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from rnnbench import published
from rnnbench.cells import CELLS
from rnnbench.report import literature
from rnnbench.tasks import TASKS


def test_every_published_row_names_its_task_cell_source_table_and_paper():
    rows = published.table()
    assert len(rows) > 0 and not rows.duplicated(["task", "model", "authors", "year"]).any()
    assert set(rows.task) <= set(TASKS)
    assert set(rows.cell.dropna()) <= set(CELLS), "a cell column names an rnnbench cell, or is blank"
    assert rows.test_accuracy.between(0.1, 1).all(), "accuracies are fractions (above chance)"
    assert rows.table.str.fullmatch(r"(Table|Figure) \d+").all()
    assert rows.arxiv.str.fullmatch(r"\d{4}\.\d{4,5}").all()
    assert rows[["authors", "title"]].ne("").all().all() and rows.year.between(2010, 2030).all()
    for _, row in rows.iterrows():
        assert re.fullmatch(r".+ \d{4}, (Table|Figure) \d+ \(arXiv:\d{4}\.\d{4,5}\)", published.citation(row))


def test_the_published_models_size_is_said_as_the_paper_gives_it():
    rows = published.table()
    sizes = {published.size(row) for _, row in rows.iterrows()}
    assert {"100 units", "about 70K parameters", "size not given"} <= sizes


def runs(**columns) -> pd.DataFrame:
    """Two finished runs as the report's tables hold them: an LSTM and a GRU on permuted pixels of mnist5k."""
    base = {
        "cell": ["lstm", "gru"],
        "task": ["permuted_pixel"] * 2,
        "data_source": ["mnist5k"] * 2,
        "data_splits": ["train=3600 valid=400 test=1000"] * 2,
        "steps": [1000] * 2,
        "batch_size": [50] * 2,
    }
    return pd.DataFrame({**base, **columns})


def test_the_matching_rows_are_those_of_the_runs_task_and_cells():
    rows, missing = literature.matching(runs())
    assert missing is None
    table = published.table()
    expected = table[(table.task == "permuted_pixel") & table.cell.isin(["lstm", "gru"])]
    assert rows.index.tolist() == expected.index.tolist() and len(rows) >= 3


@pytest.mark.parametrize(
    "columns, reason",
    [
        ({"data_source": ["fashion_mnist"] * 2}, "the published figures are for MNIST"),
        ({"task": ["row", "row"]}, "no checked figure for row"),
        ({"cell": ["bn_lstm_we_do_not_have"] * 2}, "no checked figure for permuted_pixel with these cells"),
    ],
)
def test_no_figure_is_drawn_beside_runs_the_literature_does_not_cover(columns, reason):
    rows, missing = literature.matching(runs(**columns))
    assert rows.empty and reason in missing


def test_the_caption_says_how_much_smaller_the_training_set_was():
    assert "60,000 images" in literature.training_note(runs()) and "3,600 images (6% of them)" in literature.training_note(runs())
    full = runs(data_source=["mnist"] * 2, data_splits=["train=54000 valid=6000 test=10000"] * 2)
    assert "the same MNIST training set (54,000 images" in literature.training_note(full)
