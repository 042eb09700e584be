"""The report's speed: each model in each unroll setting, the check that its settings agree, and how to train the best.

    rnnbench report      # the speed table, speed.csv and the headline's last sentence come from here

Read from `tables.speeds` (final, timing and single runs' measurements) and `tables.unroll_checks` (the sweep's
verdicts, rnnbench.sweep.unroll).
"""

from __future__ import annotations

import pandas as pd

from rnnbench.report import tables


def table(speeds: pd.DataFrame, checks: pd.DataFrame) -> pd.DataFrame:
    """`speeds` with each row's model and its check (`unroll_check`, `unroll_difference`): speed.csv."""
    models = [tables.model_name(cell, units) for cell, units in zip(speeds.cell, speeds.hidden_units, strict=True)]
    checked = checks.drop(columns=["trained"]).rename(columns={"verdict": "unroll_check", "difference": "unroll_difference"})
    return speeds.assign(model=pd.Series(models, index=speeds.index, dtype=object)).join(checked, on="model")


def rows(speeds: pd.DataFrame, checks: pd.DataFrame) -> list[dict]:
    """The speed table: one row per model and unroll setting, with the model's unroll check."""
    listed = []
    for row in speeds.itertuples():
        model = tables.model_name(row.cell, row.hidden_units)
        check = checks.loc[model] if model in checks.index else None
        verdict = "-" if check is None or pd.isna(check.verdict) else check.verdict
        if check is not None and pd.notna(check.difference):
            verdict += f" ({check.difference:.1e})"
        listed.append(
            {
                "model": model,
                "setting": "unrolled" if row.unroll else "looped",
                "runs": f"{row.runs} {'trained' if row.trained else 'timing'}",
                "faster": bool(row.faster),
                "speed": f"{row.train_samples_per_s:,.0f}",
                "compile": f"{row.compile_s:.1f}",
                "memory": "-" if pd.isna(row.peak_memory_mb) else f"{row.peak_memory_mb:,.0f}",
                "run": f"{row.run_s:.0f}",
                "ratio": "-" if pd.isna(row.unrolled_over_looped) else f"{row.unrolled_over_looped:.2f}x",
                "check": verdict,
            }
        )
    return listed


def sentence(best: pd.Series, contenders: pd.DataFrame, speeds: pd.DataFrame | None, kind: str = "model") -> str:
    """How to train the best model: the unroll setting it trains fastest in (its measured speeds in both settings), and
    how it compares in speed with the fastest model."""
    shape = (
        pd.DataFrame()
        if speeds is None or speeds.empty
        else speeds[(speeds.cell == best.cell) & (speeds.hidden_units == best.hidden_units)]
    )
    if len(shape) > 1 and not best.is_reference:
        chosen = shape[shape.faster].iloc[0]
        other = shape[~shape.faster].iloc[0]
        setting, other_setting = ("unrolled", "looped") if chosen.unroll else ("looped", "unrolled")
        text = (
            f"Train it {setting}: {chosen.train_samples_per_s:,.0f} samples/s and {chosen.compile_s:.1f} s to "
            f"compile, against {other.train_samples_per_s:,.0f} and {other.compile_s:.1f} s {other_setting}"
        )
        rate = chosen.train_samples_per_s
    else:
        text, rate = f"It trains at {best.train_samples_per_s:,.0f} samples/s", best.train_samples_per_s
    fastest = contenders.sort_values("train_samples_per_s", ascending=False).iloc[0]
    if fastest.group != best.group and fastest.train_samples_per_s > rate:
        text += f"; {fastest.train_samples_per_s / rate:.1f}x slower than the fastest {kind}, {fastest.group}"
    return text + f" (a run of {best.steps:,} steps took {best.training_s:.0f} s)."
