"""The HTML report of one experiment: tables, figures and the header, in one self-contained file.

    rnnbench report                                  # the latest sweep -> reports/<experiment>/index.html
    rnnbench report --experiment rnnbench --out /tmp/single-runs/index.html

Beside the page: `runs.csv` and `curves.csv` (the tidy tables every figure and table is made
from), `leaderboard.csv`, `studies.csv` and `figures/*.png`. The page embeds its figures and
styles, so it opens without a network and prints. A sweep's report is also logged as an
artifact of the sweep's MLflow run, under `report/`.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import importlib.metadata
import re
from pathlib import Path

import jinja2
import pandas as pd

from rnnbench import names, processes, tracking
from rnnbench.errors import UserError
from rnnbench.report import figures, tables

REPORTS = Path("reports")
DEFAULT_UI_URL = "http://127.0.0.1:5000"
"""Where `make ui` serves the MLflow UI; the page's run links point there."""


@dataclasses.dataclass(frozen=True)
class Built:
    page: Path
    figures: list[figures.Figure]
    notes: list[str]
    logged_to_run: str | None


def build_report(experiment: str | None = None, out: Path | None = None, ui_url: str | None = None) -> Built:
    """Reads the experiment from the tracking store and writes the page and its tables.

    Args:
        experiment: the MLflow experiment; None for the latest sweep's.
        out: the page's path; by default reports/<experiment>/index.html.
        ui_url: the MLflow UI the run links point at; by default the tracking server, or `make ui`'s address.

    Raises:
        UserError: no runs in the store, or no such experiment (the message lists those that exist).
    """
    experiment = experiment or tables.latest_sweep_experiment()
    recorded = tables.read(experiment)
    out = Path(out) if out else REPORTS / re.sub(r"[^\w.-]+", "_", experiment) / "index.html"
    if out.is_dir() or out.suffix.lower() not in (".html", ".htm"):
        out = out / "index.html"  # --out named a folder
    folder = out.parent
    figure_folder = folder / "figures"
    try:
        figure_folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot write the report to {folder}: {error.strerror}; choose another --out") from None
    for stale in figure_folder.glob("*.png"):  # a figure not drawn this time must not linger from the last
        if stale.stem in figures.FILE_STEMS:
            stale.unlink()

    compared = tables.compared_runs(recorded)
    reference = tables.reference_runs(recorded, compared)
    board = tables.leaderboard(compared, reference)
    studies = tables.study_summary(recorded)
    recorded.runs.to_csv(folder / "runs.csv", index=False)
    recorded.curves.to_csv(folder / "curves.csv", index=False)
    board.drop(columns=["run_ids", "seeds_of_runs"], errors="ignore").to_csv(folder / "leaderboard.csv", index=False)
    studies.to_csv(folder / "studies.csv", index=False)

    drawn = [
        _draw(figures.accuracy_curves, compared, recorded.curves, figure_folder),
        _draw(figures.accuracy_by_size, compared, reference, figure_folder),
        _draw(figures.learning_rate_landscape, recorded.stage("trial"), studies, figure_folder),
        _draw(figures.speed, compared, figure_folder),
        _draw(figures.pareto, board, figure_folder),
        _draw(figures.best_model, board, compared, figure_folder),
    ]
    links = Links(ui_url or _default_ui_url(), recorded.experiment_id)
    notes = missing_notes(recorded, compared, studies)
    html = _template().render(
        experiment=experiment,
        generated=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        headline=headline(board),
        notes=notes,
        header=header(recorded, compared),
        leaderboard=leaderboard_rows(board, links),
        studies=study_rows(studies, links),
        figures=[_embedded(number, figure) for number, figure in enumerate(drawn, 1)],
        ui_url=links.base,
        experiment_link=links.experiment(),
    )
    out.write_text(html, encoding="utf-8")
    sweep = recorded.sweep_run
    logged = None
    if sweep is not None and (read_only := tracking.read_only_reason()):
        notes.append(f"The page is not logged with the sweep's run: {read_only}.")
    elif sweep is not None:
        tracking.open_store().log_artifacts(sweep.run_id, str(folder), artifact_path="report")
        logged = sweep.run_id
    return Built(out, drawn, notes, logged)


def _draw(function, *arguments) -> figures.Figure:
    """One figure; a figure that cannot be drawn becomes a note on the page, not a failed report."""
    try:
        return function(*arguments)
    except Exception as error:  # the CLI prints the reason, the page shows it; the other figures still appear
        name = function.__name__.replace("_", " ")
        return figures.Figure(function.__name__, name, missing=f"an error in drawing it: {type(error).__name__}: {error}")


@dataclasses.dataclass(frozen=True)
class Links:
    base: str
    experiment_id: str

    def experiment(self) -> str:
        return f"{self.base}/#/experiments/{self.experiment_id}"

    def run(self, run_id: str) -> str:
        return f"{self.experiment()}/runs/{run_id}"


def _default_ui_url() -> str:
    uri = tracking.tracking_uri()
    return uri.rstrip("/") if uri.startswith(("http://", "https://")) else DEFAULT_UI_URL


def headline(board: pd.DataFrame) -> str | None:
    """The answer in one sentence: which variant is best, by how much, and at what speed."""
    contenders = board[~board.is_reference] if not board.empty else board
    if contenders.empty or contenders.test_accuracy.isna().all():
        return None
    best = contenders.iloc[0]
    parts = [f"Best: {best.group}, test accuracy {percent(best.test_accuracy)}{_spread(best)}"]
    if len(contenders) > 1:
        second = contenders.iloc[1]
        gap = best.test_accuracy - second.test_accuracy
        parts.append(f"{points(gap)} ahead of {second.group} ({percent(second.test_accuracy)})")
        spread = max(best.test_accuracy_sd, second.test_accuracy_sd)
        if pd.notna(spread) and gap < spread:
            parts[-1] += f", a gap within the seed-to-seed spread (sd up to {spread * 100:.2f} points)"
    reference = board[board.is_reference]
    if not reference.empty:
        seed = reference.iloc[0]
        parts.append(f"{points(best.test_accuracy - seed.test_accuracy)} above the seed tutorial ({percent(seed.test_accuracy)})")
    speed = f"It trains at {best.train_samples_per_s:,.0f} samples/s"
    fastest = contenders.sort_values("train_samples_per_s", ascending=False).iloc[0]
    if fastest.group != best.group:
        ratio = fastest.train_samples_per_s / best.train_samples_per_s
        speed += f", {ratio:.1f}x slower than the fastest variant, {fastest.group}"
    return "; ".join(parts) + f". {speed} (a run of {best.steps:,} steps took {best.training_s:.0f} s)."


def missing_notes(recorded: tables.Recorded, compared: pd.DataFrame, studies: pd.DataFrame) -> list[str]:
    """What the page lacks and why: a running or stopped sweep, failed studies, absent runs."""
    notes = []
    sweep = recorded.sweep_run
    finished = recorded.runs[~recorded.runs.stage.isin(["sweep", "study"])]
    retried = finished.failure.isin(names.RETRIED_FAILURES).fillna(False)
    done = int(((finished.status != "RUNNING") & ~retried).sum())
    if sweep is None:
        notes.append(
            f"This experiment holds no sweep, only {len(finished)} single run(s): the page compares those that "
            "finished, grouped by variant; the learning-rate landscape and the study table need a sweep (`make sweep`)."
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
        elif sweep.status == "FAILED" and pd.notna(sweep.failure_reason):
            notes.append(f"The sweep ended FAILED: {sweep.failure_reason}.")
        elif sweep.status != "FINISHED":
            notes.append(
                f"The sweep was stopped ({sweep.status}) with {done} of its {planned} planned runs ended; "
                "re-run the same `make sweep` to do only the rest, then `make report`."
            )
        seeds = int(sweep.get("params.final.seeds", 0) or 0)
        short = compared.groupby("group").size()
        short = short[short < seeds]
        if len(short):
            notes.append(f"{len(short)} variant(s) have fewer than {seeds} finished seeds: " + ", ".join(
                f"{group} ({count})" for group, count in short.items()))
    for _, study in studies.iterrows():
        if study.complete == 0 and study.status != "RUNNING":
            notes.append(
                f"Study {study.study}: no trial completed ({study.fail} failed, {study.pruned} pruned), so its variants "
                "have no final runs. Widen or lower search.learning_rate_min/max."
            )
    notes += orphan_notes(recorded.runs)
    failed = finished[finished.status == "FAILED"]
    if len(failed):
        reasons = failed.failure.fillna("error").value_counts()
        notes.append(f"{len(failed)} run(s) FAILED (" + ", ".join(f"{reason}: {n}" for reason, n in reasons.items())
                     + "); their reasons are in the tag rnnbench.failure_reason in the MLflow UI.")
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
        notes.append(f"{len(elsewhere)} run(s) are RUNNING on other machines ({hosts}); this one cannot tell whether "
                     "their processes are alive.")
    return notes


def _owner_gone(run: pd.Series) -> bool:
    return pd.notna(run.process) and processes.is_gone(run.process)


def header(recorded: tables.Recorded, compared: pd.DataFrame) -> dict:
    runs = recorded.runs
    sweep = recorded.sweep_run
    if sweep is not None:
        configuration = tables.settings(sweep.to_frame().T).iloc[0]
        settings = {key: value for key, value in configuration.items() if pd.notna(value) and not key.startswith("plan.")}
        status = sweep.status
    else:
        configuration = tables.settings(compared)
        settings = {key: configuration[key].iloc[0] for key in configuration.columns if configuration[key].nunique() == 1}
        status = "single runs"
    splits = _values(compared.data_splits if not compared.empty else runs.data_splits)
    commits = [
        commit[:12] + (" (with uncommitted changes)" if (runs[runs.git_commit == commit].git_dirty == "true").any() else "")
        for commit in _values(runs.git_commit)
    ]
    return {
        "status": status,
        "started": _time(runs.start_time.min()),
        "ended": _time(runs.end_time.max()),
        "settings": sorted(settings.items()),
        "data": ", ".join(_values(compared.data_source if not compared.empty else runs.data_source)) or "-",
        "splits": "; ".join(splits) or "-",
        "machine": "; ".join(_values(runs.cpu)) or "-",
        "gpu": "; ".join(_values(runs.gpu)) or "-",
        "versions": {
            "Keras backend": ", ".join(_values(runs.backend)),
            "TensorFlow": ", ".join(_values(runs.tensorflow_version)), "Keras": ", ".join(_values(runs.keras_version)),
            **({"JAX": ", ".join(_values(runs.jax_version))} if runs.jax_version.notna().any() else {}),
            "Python": ", ".join(_values(runs.python_version)),
            **{package: importlib.metadata.version(package) for package in ("mlflow", "optuna", "pandas", "seaborn")},
        },
        "commits": commits or ["not recorded (not run from a git checkout)"],
        "store": tracking.tracking_uri(),
    }


def leaderboard_rows(board: pd.DataFrame, links: Links) -> list[dict]:
    rows = []
    for _, row in board.iterrows():
        rows.append({
            "rank": "" if row.is_reference else int(row["rank"]),
            "variant": row.group, "reference": row.is_reference,
            "accuracy": percent(row.test_accuracy), "seeds": row.seeds,
            "spread": "-" if pd.isna(row.test_accuracy_sd) else f"± {row.test_accuracy_sd * 100:.2f}",
            "behind": "-" if row.is_reference else ("best" if row.behind_best == 0 else f"{-row.behind_best * 100:+.2f}"),
            "over_reference": "-" if pd.isna(row.over_reference) or row.is_reference else f"{row.over_reference * 100:+.2f}",
            "learning_rate": f"{row.learning_rate:.2e}", "parameters": f"{row.parameters:,}",
            "speed": f"{row.train_samples_per_s:,.0f}", "compile": f"{row.compile_s:.1f}", "training": f"{row.training_s:.0f}",
            "runs": [(f"s{seed}", links.run(run_id)) for seed, run_id in sorted(zip(row.seeds_of_runs, row.run_ids))],
        })
    return rows


def study_rows(studies: pd.DataFrame, links: Links) -> list[dict]:
    return [
        {
            "study": row.study, "status": row.status, "planned": row.planned, "complete": int(row.complete),
            "pruned": int(row.pruned), "failed": int(row.fail), "running": int(row.running),
            "best": percent(row.best_val_accuracy),
            "learning_rate": "-" if pd.isna(row.best_learning_rate) else f"{row.best_learning_rate:.2e}",
            "link": links.run(row.run_id),
        }
        for _, row in studies.iterrows()
    ]


def percent(value: float) -> str:
    return "-" if pd.isna(value) else f"{value:.2%}"


def points(difference: float) -> str:
    """A difference of two accuracies, in percentage points."""
    return f"{difference * 100:+.2f} points"


def _spread(row) -> str:
    if row.seeds < 2 or pd.isna(row.test_accuracy_sd):
        return " (1 seed)" if row.seeds == 1 else ""
    return f" ± {row.test_accuracy_sd * 100:.2f} points sd over {row.seeds} seeds"


def _values(column: pd.Series) -> list[str]:
    return sorted(str(value) for value in column.dropna().unique())


def _time(moment: pd.Timestamp) -> str:
    """MLflow's search gives times in UTC; the page says so."""
    return "-" if pd.isna(moment) else moment.strftime("%Y-%m-%d %H:%M UTC")


def _embedded(number: int, figure: figures.Figure) -> dict:
    images = [
        {"data": base64.b64encode(path.read_bytes()).decode("ascii"), "name": path.name} for path in figure.paths
    ]
    return {"number": number, "title": figure.title, "caption": figure.caption, "missing": figure.missing, "images": images}


def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("rnnbench.report"), autoescape=True, trim_blocks=True, lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    return environment.get_template("report.html.j2")
