"""What a report's page lacks, and why: a sweep running, stopped, failed or orphaned; failed studies and runs.

rnnbench report      # prints each note, and the page lists them under "What this page lacks"
"""

from __future__ import annotations

import pandas as pd

from rnnbench import processes, records
from rnnbench.report import tables


def missing_notes(recorded: records.Recorded, compared: pd.DataFrame, studies: pd.DataFrame) -> list[str]:
    """What the page lacks and why: a running or stopped sweep, failed studies, absent runs."""
    notes = []
    sweep = recorded.sweep_run
    finished = recorded.runs[~recorded.runs.stage.isin(["sweep", "study"])]
    retried = tables.superseded(finished)
    done = int(((finished.status != "RUNNING") & ~retried).sum())
    if sweep is None:
        notes.append(
            f"This experiment holds no sweep, only {len(finished)} single run(s): the page compares those that "
            "finished, grouped by variant; the search landscape and the study table need a sweep (`make sweep`)."
        )
    else:
        planned = sum(int(sweep.get(f"params.plan.{key}", 0) or 0) for key in ("trials", "final_runs", "reference_runs"))
        if sweep.status == "RUNNING" and _owner_gone(sweep):
            notes.append(
                f"The sweep's coordinator is gone (killed, or its machine restarted) with {done} of its {planned} planned "
                "runs ended: re-run the same `make sweep` to do only the rest, then `make report`."
            )
        elif sweep.status == "RUNNING":
            notes.append(
                f"The sweep is still running: {done} of its {planned} planned runs have ended. The page shows what "
                "is recorded so far; build it again when the sweep is done (`make report`)."
            )
        elif sweep.status == "SCHEDULED":
            notes.append(
                f"The sweep is submitted to Slurm and waits for its coordinator task: {done} of its {planned} planned runs "
                "have ended. `rnnbench sweep SWEEP_FILE --status` follows it; build the page again when it is done."
            )
        elif sweep.status == "FAILED" and pd.notna(sweep.failure_reason):
            notes.append(f"The sweep ended FAILED: {sweep.failure_reason}.")
        elif sweep.status != "FINISHED":
            notes.append(
                f"The sweep was stopped ({sweep.status}) with {done} of its {planned} planned runs ended; "
                "re-run the same `make sweep` to do only the rest, then `make report`."
            )
        seeds = int(sweep.get("params.final.seeds", 0) or 0)
        short = compared.groupby("group").seed.nunique()
        short = short[short < seeds]
        if len(short):
            notes.append(
                f"{len(short)} model(s) have fewer than {seeds} finished seeds: "
                + ", ".join(f"{group} ({count})" for group, count in short.items())
            )
    for _, study in studies.iterrows():
        if study.complete == 0 and study.status != "RUNNING":
            notes.append(
                f"Study {study.study}: no trial completed ({study.fail} failed, {study.pruned} pruned), so its model "
                "has no final runs. Widen or lower the ranges of the sweep file's space: section."
            )
    notes += orphan_notes(recorded.runs)
    failed = finished[(finished.status == "FAILED") & ~retried]
    if len(failed):
        reasons = failed.failure.fillna("error").value_counts()
        notes.append(
            f"{len(failed)} run(s) FAILED ("
            + ", ".join(f"{reason}: {n}" for reason, n in reasons.items())
            + "); their reasons are in the tag rnnbench.failure_reason in the MLflow UI."
        )
    return notes


def orphan_notes(runs: pd.DataFrame) -> list[str]:
    """Runs still RUNNING whose process is gone (they will never end), and those this machine cannot check."""
    running = runs[(runs.status == "RUNNING") & runs.process.notna()]
    gone = running[[_owner_gone(run) for _, run in running.iterrows()]]
    elsewhere = running[running.process.map(processes.host_of) != processes.host_of(processes.this_process())]
    notes = []
    if len(gone):
        notes.append(
            f"{len(gone)} run(s) are still RUNNING, but the process that recorded them is gone (kill -9, a crash or a "
            f"reboot), so they will never end: {', '.join(gone.run_name.fillna(gone.run_id))}. A re-run of the sweep "
            "closes and redoes its own; delete single runs in the MLflow UI."
        )
    if len(elsewhere):
        hosts = ", ".join(sorted(set(elsewhere.process.map(processes.host_of))))
        notes.append(
            f"{len(elsewhere)} run(s) are RUNNING on other machines ({hosts}); this one cannot tell whether "
            "their processes are alive."
        )
    return notes


def _owner_gone(run: pd.Series) -> bool:
    return pd.notna(run.process) and processes.is_gone(run.process)
