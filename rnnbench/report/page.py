"""The HTML report of one experiment: tables, figures and the header, in one self-contained file.

    rnnbench report                                  # the latest sweep -> reports/<experiment>/index.html
    rnnbench report --experiment rnnbench --out /tmp/single-runs/index.html

Beside the page: `runs.csv` and `curves.csv` (the tidy tables every figure and table is made
from), `leaderboard.csv`, `studies.csv`, `published.csv` (the published rows the literature figure draws) and
`figures/*.png`. The page embeds its figures and styles, so it opens without a network and prints.
A sweep's report is also logged as an artifact of the sweep's MLflow run, under `report/`.
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

from rnnbench import credentials, records, tracking
from rnnbench.config import REFERENCE_LABEL
from rnnbench.errors import UserError
from rnnbench.links import Links
from rnnbench.links import ui_url as default_ui_url
from rnnbench.report import compare, export, figures, gallery, leaderboard, literature, speed, tables, uncertainty
from rnnbench.report import notes as report_notes
from rnnbench.sweep import unroll

REPORTS = Path("reports")


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
    experiment = experiment or records.latest_sweep_experiment()
    recorded = records.read(experiment)
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
        if gallery.is_figure_file(stale):
            stale.unlink()

    compared = tables.compared_runs(recorded)
    reference = tables.reference_runs(recorded, compared)
    searched = leaderboard.searched(recorded)
    speeds = tables.speeds(recorded)
    checks = tables.unroll_checks(recorded)
    board = leaderboard.leaderboard(compared, reference, tuned=list(searched), speeds=speeds)
    contenders = board[~board.is_reference].group.tolist() if not board.empty else []
    result = compare.verdict(
        contenders, REFERENCE_LABEL, leaderboard.correctness(pd.concat([compared, reference.assign(group=REFERENCE_LABEL)]))
    )
    studies = tables.study_summary(recorded)
    scores, valid_images = tables.trial_scores(recorded.stage("trial")), records.validation_images(recorded.runs)
    recorded.runs.to_csv(folder / "runs.csv", index=False)
    recorded.curves.to_csv(folder / "curves.csv", index=False)
    plain = board.drop(columns=["run_ids", "seeds_of_runs"], errors="ignore")
    (leaderboard.tuned_columns(plain) if not plain.empty else plain).to_csv(folder / "leaderboard.csv", index=False)
    (leaderboard.tuned_columns(studies, "chosen") if not studies.empty else studies).to_csv(folder / "studies.csv", index=False)
    speed.table(speeds, checks).to_csv(folder / "speed.csv", index=False)
    published = literature.matching(compared)
    published[0].to_csv(folder / "published.csv", index=False)
    export.write(folder, board, result)

    inputs = gallery.Inputs(
        recorded, compared, reference, board, result, studies, searched, speeds, scores, valid_images, published
    )
    drawn = gallery.draw_all(inputs, figure_folder)
    numbers = gallery.numbers()
    links = Links(credentials.without_credentials(ui_url or default_ui_url()), recorded.experiment_id)
    notes = report_notes.missing_notes(recorded, compared, studies)
    html = _template().render(
        experiment=experiment,
        generated=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        headline=headline(board, result, speeds),
        notes=notes,
        header=header(recorded, compared),
        leaderboard=leaderboard_rows(board, links, result),
        speeds=speed.rows(speeds, checks),
        tolerance=unroll.RELATIVE_TOLERANCE,
        studies=study_rows(studies, links, scores, valid_images),
        method=None
        if result is None
        else {
            "resamples": f"{compare.RESAMPLES:,}",
            "images": f"{result.images:,}",
            "comparisons": len(result.vs_best),
        },
        final_runs_link=links.final_runs(),
        figures=[_embedded(number, figure) for number, figure in enumerate(drawn, 1)],
        figure_numbers=numbers,
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


def headline(board: pd.DataFrame, result: compare.Verdict | None, speeds: pd.DataFrame | None = None) -> str | None:
    """The answer in one sentence, claiming only what the paired comparisons support: a single best model only
    when every other is behind it beyond noise, else the group tied at the top; the margin over the seed tutorial
    only when its interval excludes zero; and the unroll setting to train the best model in (`tables.speeds`)."""
    contenders = board[~board.is_reference] if not board.empty else board
    if contenders.empty or contenders.test_accuracy.isna().all():
        return None
    best = contenders.iloc[0]
    accuracy = f"test accuracy {percent(best.test_accuracy)}{_spread(best)}"
    parts = [f"Best: {best.group}, {accuracy}"]
    if len(contenders) > 1 and result is not None:
        second = contenders.iloc[1]
        lead = result.vs_best[second.group]  # the runner-up minus the best
        margin = (
            f"a lead of {points(-lead.difference)} over the runner-up {second.group} (95% CI {-lead.high * 100:+.2f} "
            f"to {-lead.low * 100:+.2f}; P(a run of {best.group} beats one of {second.group}) = {1 - lead.beats:.2f})"
        )
        if len(result.tied) == 1:
            parts.append(f"ahead of every other {_kind(contenders)[:-1]} beyond noise, with {margin}")
        else:
            behind = [group for group in contenders.group if group not in result.tied]
            who = (
                f"tied with it: {', '.join(result.tied[1:])}"
                if len(result.tied) <= len(behind) + 2
                else f"behind it beyond noise: {', '.join(behind)}"
                if behind
                else "none is behind it beyond noise"
            )
            parts = [
                f"No single best: {len(result.tied)} of {len(contenders)} {_kind(contenders)} are statistically tied at the top, "
                f"led by {best.group} ({accuracy}); {who}; {margin}"
            ]
    elif len(contenders) > 1:
        second = contenders.iloc[1]
        parts.append(
            f"{points(best.test_accuracy - second.test_accuracy)} ahead of {second.group}; no per-image test "
            "predictions were recorded, so whether that is beyond noise is unknown"
        )
    reference = board[board.is_reference]
    if not reference.empty:
        seed = reference.iloc[0]
        versus = result.vs_reference.get(best.group) if result is not None else None
        if versus is None:
            parts.append(
                f"{points(best.test_accuracy - seed.test_accuracy)} against the seed tutorial ({percent(seed.test_accuracy)})"
            )
        else:
            interval = f"95% CI {versus.low * 100:+.2f} to {versus.high * 100:+.2f}"
            verb = "above" if versus.difference > 0 else "below"
            parts.append(
                f"{points(versus.difference)} {verb} the seed tutorial ({percent(seed.test_accuracy)}; {interval})"
                if versus.significant
                else f"not distinguishable from the seed tutorial ({percent(seed.test_accuracy)}; {interval})"
            )
    return "; ".join(parts) + f". {speed.sentence(best, contenders, speeds, _kind(contenders)[:-1])}"


def _kind(contenders: pd.DataFrame) -> str:
    """What the rows are: models (a sweep's, whatever their unroll setting), or variants."""
    return "variants" if any(tables.is_variant(group) for group in contenders.group) else "models"


def header(recorded: records.Recorded, compared: pd.DataFrame) -> dict:
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
            "TensorFlow": ", ".join(_values(runs.tensorflow_version)),
            "Keras": ", ".join(_values(runs.keras_version)),
            **({"JAX": ", ".join(_values(runs.jax_version))} if runs.jax_version.notna().any() else {}),
            "Python": ", ".join(_values(runs.python_version)),
            **{package: importlib.metadata.version(package) for package in ("mlflow", "optuna", "pandas", "seaborn")},
        },
        "commits": commits or ["not recorded (not run from a git checkout)"],
        "store": tracking.shown_uri(),
    }


def leaderboard_rows(board: pd.DataFrame, links: Links, result: compare.Verdict | None) -> list[dict]:
    tied = set(result.tied) if result is not None else set()
    rows = []
    for _, row in board.iterrows():
        versus_best = result.vs_best.get(row.group) if result is not None else None
        versus_reference = result.vs_reference.get(row.group) if result is not None else None
        rows.append(
            {
                "rank": "" if row.is_reference else int(row["rank"]),
                "variant": row.group,
                "reference": row.is_reference,
                "tied": row.group in tied,
                "setting": "unrolled" if row.train_unrolled else "looped",
                "accuracy": percent(row.test_accuracy),
                "seeds": f"{row.seeds}" + (f" ({row.runs} runs)" if row.runs > row.seeds else ""),
                "spread": "-" if pd.isna(row.test_accuracy_sd) else f"± {row.test_accuracy_sd * 100:.2f}",
                "behind": ("-", "")
                if row.is_reference
                else ("best", "")
                if row["rank"] == 1
                else _interval(versus_best, -row.behind_best),
                "beats": "-" if versus_best is None else f"{versus_best.beats:.2f}",
                "over_reference": ("-", "")
                if pd.isna(row.over_reference) or row.is_reference
                else _interval(versus_reference, row.over_reference),
                "tuned": leaderboard.format_tuned(row.tuned).split(", "),
                "parameters": f"{row.parameters:,}",
                "speed": f"{row.train_samples_per_s:,.0f}",
                "compile": f"{row.compile_s:.1f}",
                "training": f"{row.training_s:.0f}",
                "runs": [
                    (f"s{seed}", links.run(run_id)) for seed, run_id in sorted(zip(row.seeds_of_runs, row.run_ids, strict=True))
                ],
            }
        )
    return rows


def _interval(difference: compare.Difference | None, plain: float) -> tuple[str, str]:
    """A difference in points and its 95% interval, or no interval when no predictions were recorded."""
    if difference is None:
        return f"{plain * 100:+.2f}", ""
    return f"{difference.difference * 100:+.2f}", f"[{difference.low * 100:+.2f}, {difference.high * 100:+.2f}]"


def study_rows(studies: pd.DataFrame, links: Links, scores: dict, valid_images: int | None) -> list[dict]:
    return [
        {
            "study": row.study,
            "status": row.status,
            "planned": row.planned,
            "complete": int(row.complete),
            "pruned": int(row.pruned),
            "failed": int(row.fail),
            "running": int(row.running),
            "best": percent(row.best_val_accuracy),
            "tuned": leaderboard.format_tuned(row.chosen) or "-",
            "budget": uncertainty.budget(scores[row.study], valid_images) if len(scores.get(row.study, [])) else "-",
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
    """The spread over seeds, as far as the seeds can estimate it; repeats of a seed are nondeterminism."""
    repeats = ""
    if row.runs > row.seeds and pd.notna(row.repeat_sd):
        repeats = f", and {row.runs} runs whose repeats of a seed differ by {row.repeat_sd * 100:.2f} points sd (nondeterminism)"
    if row.seeds < 2 or pd.isna(row.test_accuracy_sd):
        return f" (1 seed: its spread over seeds cannot be estimated{repeats})"
    return f" ± {row.test_accuracy_sd * 100:.2f} points sd over {row.seeds} seeds{repeats}"


def _values(column: pd.Series) -> list[str]:
    return sorted(str(value) for value in column.dropna().unique())


def _time(moment: pd.Timestamp) -> str:
    """MLflow's search gives times in UTC; the page says so."""
    return "-" if pd.isna(moment) else moment.strftime("%Y-%m-%d %H:%M UTC")


def _embedded(number: int, figure: figures.Figure) -> dict:
    images = [{"data": base64.b64encode(path.read_bytes()).decode("ascii"), "name": path.name} for path in figure.paths]
    return {"number": number, "title": figure.title, "caption": figure.caption, "missing": figure.missing, "images": images}


def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("rnnbench.report"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    return environment.get_template("report.html.j2")
