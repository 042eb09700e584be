"""The leaderboard and the paired comparisons as tables to paste into a paper: LaTeX (booktabs) and Markdown.

    rnnbench report      # writes leaderboard.tex, leaderboard.md, comparisons.tex and comparisons.md beside the page

The LaTeX needs only `\\usepackage{booktabs}`; each file is one `table` environment with its caption and label.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rnnbench.report import compare

PLUS_MINUS = "±"


def write(folder: Path, board: pd.DataFrame, result: compare.Verdict | None) -> list[Path]:
    """Writes the tables that the data allows (the comparisons need per-image predictions); returns their paths."""
    tables = {}
    if not board.empty:
        seeds = int(board.seeds.max())
        tables["leaderboard"] = (
            leaderboard(board, result),
            (
                f"Test accuracy (\\%) of each model, mean {PLUS_MINUS} standard deviation over up to {seeds} seeds; differences "
                "in percentage points with 95\\% intervals from a paired two-level bootstrap over test images and seeds; "
                "tied: not significantly below the best after Holm's correction."
            ),
        )
    if result is not None and (result.vs_best or result.vs_reference):
        tables["comparisons"] = (
            comparisons(result),
            (
                "Paired comparisons: difference in mean test accuracy (percentage points) with its 95\\% bootstrap interval, "
                "the two-sided p-value Holm-corrected within each family (against the best, against the seed tutorial), "
                "and the probability that a run of the model scores higher than a run of the other."
            ),
        )
    written = []
    for name, (table, caption) in tables.items():
        markdown = folder / f"{name}.md"
        markdown.write_text(table.to_markdown(index=False, disable_numparse=True) + "\n", encoding="utf-8")
        latex = folder / f"{name}.tex"
        latex.write_text(to_latex(table, caption, f"tab:rnnbench-{name}"), encoding="utf-8")
        written += [markdown, latex]
    return written


def leaderboard(board: pd.DataFrame, result: compare.Verdict | None) -> pd.DataFrame:
    tied = set(result.tied) if result else set()
    rows = []
    for _, row in board.iterrows():
        versus_best = result.vs_best.get(row.group) if result else None
        versus_reference = result.vs_reference.get(row.group) if result else None
        spread = "" if pd.isna(row.test_accuracy_sd) else f" {PLUS_MINUS} {row.test_accuracy_sd * 100:.2f}"
        rows.append(
            {
                "Model": row.group,
                "Test accuracy (%)": f"{row.test_accuracy * 100:.2f}{spread}",
                "Seeds": str(row.seeds),
                "vs best": "best" if row.group == (result.best if result else None) else _difference(versus_best),
                "P(beats best)": "" if versus_best is None else f"{versus_best.beats:.2f}",
                "vs seed tutorial": _difference(versus_reference),
                "Tied": "yes" if row.group in tied else "",
            }
        )
    table = pd.DataFrame(rows)
    return table.loc[:, (table != "").any()]  # no empty column (no seed tutorial, no comparisons)


def comparisons(result: compare.Verdict) -> pd.DataFrame:
    rows = [
        {
            "Model": row.variant,
            "Compared with": "best" if row.other == result.best else row.other,
            "Difference (points)": f"{row.difference * 100:+.2f}",
            "95% CI": f"[{row.low * 100:+.2f}, {row.high * 100:+.2f}]",
            "p (Holm)": f"{row.adjusted_p:.3f}",
            "P(beats)": f"{row.beats:.2f}",
        }
        for family in (result.vs_best, result.vs_reference)
        for row in family.values()
    ]
    return pd.DataFrame(rows)


def to_latex(table: pd.DataFrame, caption: str, label: str) -> str:
    """A booktabs table: text columns left, numbers right, LaTeX's special characters escaped."""
    columns = "".join("l" if name in ("Model", "Compared with") else "r" for name in table.columns)
    styled = table.style.hide(axis="index").format(escape="latex").format_index(escape="latex", axis=1)
    text = styled.to_latex(
        hrules=True, column_format=columns, position="htbp", position_float="centering", caption=caption, label=label
    )
    return text.replace(PLUS_MINUS, r"$\pm$").replace("\\centering\n", "\\centering\n\\small\n", 1)


def _difference(row: compare.Difference | None) -> str:
    if row is None:
        return ""
    return f"{row.difference * 100:+.2f} [{row.low * 100:+.2f}, {row.high * 100:+.2f}]"
