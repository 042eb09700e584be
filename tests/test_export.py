"""The tables for a paper: the LaTeX compiles (with Debian's TeX Live, which .ci/run installs) and the Markdown reads."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from test_report_tables import recorded

from rnnbench.config import REFERENCE_LABEL
from rnnbench.report import compare, export, leaderboard, tables


@pytest.fixture
def written(tmp_path):
    made_up = recorded(
        {"cell": "lstm", "units": 32, "seed": 0, "accuracy": 0.90, "stage": "final"},
        {"cell": "lstm", "units": 32, "seed": 1, "accuracy": 0.92, "stage": "final"},
        {"cell": "simple_rnn", "units": 32, "seed": 0, "accuracy": 0.80, "stage": "final"},
        {"cell": "simple_rnn", "units": 32, "seed": 1, "accuracy": 0.82, "stage": "final"},
        {"cell": "simple_rnn", "units": 50, "accuracy": 0.85, "stage": "reference"},
    )
    compared = tables.compared_runs(made_up)
    board = leaderboard.leaderboard(compared, tables.reference_runs(made_up, compared))
    rng = np.random.default_rng(0)
    correct = {
        group: rng.random((2 if group != REFERENCE_LABEL else 1, 500)) < accuracy
        for group, accuracy in zip(board.group, board.test_accuracy, strict=True)
    }
    result = compare.verdict(board[~board.is_reference].group.tolist(), REFERENCE_LABEL, correct)
    return export.write(tmp_path, board, result)


def test_the_leaderboard_and_comparisons_are_written_in_both_forms(written):
    assert sorted(path.name for path in written) == ["comparisons.md", "comparisons.tex", "leaderboard.md", "leaderboard.tex"]
    latex = next(path for path in written if path.name == "leaderboard.tex").read_text()
    assert r"\toprule" in latex and r"\bottomrule" in latex and r"\label{tab:rnnbench-leaderboard}" in latex
    assert r"simple\_rnn-h32" in latex and r"$\pm$" in latex  # escaped for LaTeX
    assert latex.count(r"\begin{") == latex.count(r"\end{")
    markdown = next(path for path in written if path.name == "leaderboard.md").read_text().splitlines()
    assert markdown[0].startswith("| Model") and len(markdown) == 2 + 3  # header, rule, two models and the reference
    assert "91.00 ± 1.41" in markdown[2]


def test_the_latex_compiles(written, tmp_path):
    if shutil.which("pdflatex") is None:
        pytest.skip("no TeX here (apt-get install texlive-latex-base texlive-latex-recommended; .ci/run does)")
    inputs = "\n".join(rf"\input{{{path.name}}}" for path in written if path.suffix == ".tex")
    (tmp_path / "paper.tex").write_text(
        rf"\documentclass{{article}}\usepackage{{booktabs}}\begin{{document}}{inputs}\end{{document}}" + "\n"
    )
    result = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "paper.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert (tmp_path / "paper.pdf").stat().st_size > 1000
