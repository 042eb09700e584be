"""The HTML report: from real runs recorded by the real command line into a temporary store.

One workspace holds a tiny sweep (with the seed tutorial as its reference), two single runs, and
a sweep whose every trial diverges; each test reads the pages `rnnbench report` made from them.
"""

from __future__ import annotations

import concurrent.futures
import html.parser
import os
import shutil
import signal
import statistics
import subprocess
import sys

import pandas as pd
import pytest
from conftest import EXPERIMENTS, UI_ENVIRONMENT, WITH_REFERENCE, free_port, rnnbench, rnnbench_here, wait_until_serving
from mlflow import MlflowClient

from rnnbench import names
from rnnbench.config import load_config
from rnnbench.sweep.definition import load_sweep, plan

pytestmark = pytest.mark.slow

TINY = str(EXPERIMENTS / "sweep_tiny.yaml")
SHARED_PLAN = plan(load_sweep(TINY, WITH_REFERENCE))
FIGURE_FILES = [
    "curves.png",
    "size.png",
    "landscape.png",
    "landscape-dropout.png",
    "speed.png",
    "pareto.png",
    "best_model_digits.png",
    "best_model_confusion_matrix.png",
    "forest.png",
    "tuning.png",
]
"""The shared tiny sweep searches two keys: Figure 3 is one grid per key."""
FIGURES = 9
NO_LITERATURE = "<b>Figure 9. Beside the literature: published test accuracy for the same task and cell:</b> not drawn"
"""The tiny sweep reads rows, a task no checked published result covers (tests/test_end_to_end.py draws Figure 9)."""


@pytest.fixture(scope="module")
def workspace(tiny_sweep_store):
    """The store after `make sweep`-like commands: the tiny sweep, single runs, an all-failed sweep."""
    folder, env, sweep = tiny_sweep_store
    outputs = {"sweep": sweep}
    commands = {
        "single0": ["run", str(EXPERIMENTS / "smoke.yaml"), "tracking.experiment=single-runs"],
        "single1": ["run", str(EXPERIMENTS / "smoke.yaml"), "tracking.experiment=single-runs", "train.seed=1"],
        "failed": [
            "sweep",
            TINY,
            "sweep.name=all-failed",
            "grid.cells=simple_rnn",
            "grid.unroll=false",
            "search.trials=2",
            "space.train.learning_rate={low: 1.0e37, high: 1.0e38, log: true}",
            "--report",
        ],
    }

    # the failed sweep in its own process, the two single runs in this one meanwhile (the first creates their experiment)
    failed = subprocess.Popen(
        [sys.executable, "-m", "rnnbench", *commands["failed"]],
        cwd=folder,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        failed_output = pool.submit(failed.communicate, timeout=900)
        for key in ("single0", "single1"):
            outputs[key] = rnnbench_here(*commands[key], cwd=folder, env=env)
        stdout, stderr = failed_output.result()
    outputs["failed"] = subprocess.CompletedProcess(failed.args, failed.returncode, stdout, stderr)
    for key in commands:
        assert outputs[key].returncode == 0, outputs[key].stdout + outputs[key].stderr
    return folder, env, MlflowClient(env["MLFLOW_TRACKING_URI"]), outputs


def page_of(folder, experiment: str) -> str:
    return (folder / "reports" / experiment / "index.html").read_text()


class Page(html.parser.HTMLParser):
    """The page's resource references, links, images, and what the figures say."""

    def __init__(self, text: str):
        super().__init__()
        self.sources, self.links, self.stylesheets, self.scripts, self.images = [], [], [], [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "src" in attrs:
            self.sources.append(attrs["src"])
        if tag == "img":
            self.images.append(attrs)
        if tag == "a":
            self.links.append(attrs.get("href", ""))
        if tag == "link":
            self.stylesheets.append(attrs)
        if tag == "script":
            self.scripts.append(attrs)


def test_make_sweep_ends_with_the_report_and_its_path(workspace):
    folder, _, _, outputs = workspace
    page = folder / "reports" / "sweep-tiny" / "index.html"
    assert f"report: {page.resolve()}" in outputs["sweep"].stdout
    assert "Traceback" not in outputs["sweep"].stderr


def test_tables_have_one_row_per_run_and_the_documented_columns(workspace):
    folder, _, client, _ = workspace
    experiment = client.get_experiment_by_name("sweep-tiny")
    recorded = client.search_runs([experiment.experiment_id], max_results=1000)
    runs = pd.read_csv(folder / "reports" / "sweep-tiny" / "runs.csv")
    assert sorted(runs.run_id) == sorted(run.info.run_id for run in recorded)
    for column in [
        "run_id",
        "status",
        "stage",
        "variant",
        "cell",
        "hidden_units",
        "unroll",
        "learning_rate",
        "seed",
        "test_accuracy",
        "best_val_accuracy",
        "train_samples_per_s",
        "compile_s",
        "parameters",
        "trial_state",
    ]:
        assert column in runs.columns
    assert set(runs.stage) == {"sweep", "study", "trial", "final", "timing", "reference"}

    curves = pd.read_csv(folder / "reports" / "sweep-tiny" / "curves.csv")
    assert list(curves.columns) == ["run_id", "metric", "step", "value"]
    final = next(run for run in recorded if run.data.tags[names.STAGE] == "final")
    points = curves[(curves.run_id == final.info.run_id) & (curves.metric == names.VAL_ACCURACY)]
    history = client.get_metric_history(final.info.run_id, names.VAL_ACCURACY)
    assert list(points.step) == [point.step for point in history] == [50, 100, 150, 200]
    assert list(points.value) == pytest.approx([point.value for point in history])


def test_every_figure_is_drawn_and_embedded(workspace):
    folder, _, _, _ = workspace
    report = folder / "reports" / "sweep-tiny"
    for name in FIGURE_FILES:
        assert (report / "figures" / name).stat().st_size > 10_000, name
    page = page_of(folder, "sweep-tiny")
    assert page.count("not drawn") == 1 and f"{NO_LITERATURE}: rnnbench/published.csv has no checked figure for row" in page
    assert len(Page(page).images) == len(FIGURE_FILES)
    for number in range(1, FIGURES + 1):
        assert f"<b>Figure {number}." in page


def test_the_page_needs_no_network(workspace):
    folder, _, client, _ = workspace
    parsed = Page(page_of(folder, "sweep-tiny"))
    assert parsed.sources and all(source.startswith("data:image/png;base64,") for source in parsed.sources)
    assert parsed.stylesheets == [] and parsed.scripts == []
    assert "url(" not in page_of(folder, "sweep-tiny")
    # links are for navigation only: to runs in the MLflow UI that `make ui` serves
    experiment = client.get_experiment_by_name("sweep-tiny").experiment_id
    assert parsed.links and all(link.startswith(f"http://127.0.0.1:5000/#/experiments/{experiment}") for link in parsed.links)


def test_the_headline_names_the_best_variant_and_claims_only_what_the_comparisons_support(workspace):
    folder, _, client, _ = workspace
    experiment = client.get_experiment_by_name("sweep-tiny").experiment_id
    accuracy: dict[str, list[float]] = {}
    reference = []
    for run in client.search_runs([experiment], "attributes.status = 'FINISHED'", max_results=1000):
        if run.data.tags[names.STAGE] == "final":  # ranked by model (cell and size), whatever the unroll setting
            accuracy.setdefault(run.data.tags[names.STUDY], []).append(run.data.metrics[names.TEST_ACCURACY])
        if run.data.tags[names.STAGE] == "reference":
            reference.append(run.data.metrics[names.TEST_ACCURACY])
    best = max(accuracy, key=lambda variant: statistics.mean(accuracy[variant]))
    mean = statistics.mean(accuracy[best])
    page = page_of(folder, "sweep-tiny")
    board = pd.read_csv(folder / "reports" / "sweep-tiny" / "leaderboard.md", sep="|", skiprows=[1]).rename(columns=str.strip)
    tied = [model.strip() for model, mark in zip(board.Model, board.Tied, strict=True) if mark.strip() == "yes"]
    assert tied[0] == best  # the leaderboard's first row is the best mean, and it is in its own tied group
    if len(tied) == 1:
        assert f"Best: {best}, test accuracy {mean:.2%}" in page and "ahead of every other model beyond noise" in page
    else:
        assert (
            f"No single best: {len(tied)} of {len(accuracy)} models are statistically tied at the top, led by {best} "
            f"(test accuracy {mean:.2%}" in page
        )
        behind = [
            variant.strip()
            for variant, mark in zip(board.Model, board.Tied, strict=True)
            if mark.strip() != "yes" and not variant.strip().startswith("reference")
        ]
        assert "tied with it: " + ", ".join(tied[1:]) in page or "behind it beyond noise: " + ", ".join(behind) in page
    assert "(1 seed: its spread over seeds cannot be estimated)" in page  # the tiny sweep trains one seed
    seed = f"the seed tutorial ({statistics.mean(reference):.2%}; 95% CI"
    assert f"above {seed}" in page or f"below {seed}" in page or f"not distinguishable from {seed}" in page
    speeds = pd.read_csv(folder / "reports" / "sweep-tiny" / "speed.csv")
    best_row = speeds[(speeds.model == best) & speeds.faster].iloc[0]
    setting = "unrolled" if best_row.unroll else "looped"
    assert f"Train it {setting}: {best_row.train_samples_per_s:,.0f} samples/s" in page  # the setting to train it in


def test_the_exported_tables_hold_plain_values_and_the_speed_of_every_setting(workspace):
    """leaderboard.csv and studies.csv: one numeric column per tuned key; speed.csv: each model in each unroll setting,
    one trained in full and one timed, with their ratio and the check that they agree."""
    folder, _, _, _ = workspace
    report = folder / "reports" / "sweep-tiny"
    board = pd.read_csv(report / "leaderboard.csv")
    searched = ["train.learning_rate", "model.dropout"]
    assert all(pd.api.types.is_float_dtype(board[key]) for key in searched) and "tuned" not in board
    studies_table = pd.read_csv(report / "studies.csv")
    assert all(pd.api.types.is_float_dtype(studies_table[key]) for key in searched) and "chosen" not in studies_table
    for table in (board, studies_table):
        assert not table.astype(str).apply(lambda column: column.str.contains("{|np.float64", regex=True)).any().any()
    speeds = pd.read_csv(report / "speed.csv")
    models = sorted(board.group[~board.is_reference])
    assert sorted(speeds.model.unique()) == models and len(speeds) == 2 * len(models)
    assert (speeds.groupby("model").trained.sum() == 1).all() and (speeds.unroll_check == "agree").all()
    assert (speeds.train_samples_per_s > 0).all() and (speeds.peak_memory_mb > 100).all()  # the process, TensorFlow included
    assert (speeds.groupby("model").faster.sum() == 1).all() and speeds.unrolled_over_looped.notna().all()
    page = page_of(folder, "sweep-tiny")
    assert "Speed: each model in each unroll setting" in page and "row by row: 28 steps of a 28-pixel row" in page


def test_tables_for_a_paper_are_written_in_latex_and_markdown(workspace):
    folder, _, _, _ = workspace
    report = folder / "reports" / "sweep-tiny"
    for name in ("leaderboard", "comparisons"):
        latex = (report / f"{name}.tex").read_text()
        assert r"\toprule" in latex and r"\midrule" in latex and r"\bottomrule" in latex  # booktabs
        assert latex.count(r"\begin{") == latex.count(r"\end{") and "simple\\_rnn-h16" in latex
        assert (report / f"{name}.md").read_text().startswith("| ")
    comparisons = (report / "comparisons.md").read_text()
    assert "| best " in comparisons and "reference: the seed tutorial" in comparisons


def test_the_final_runs_link_lists_them_flat_in_a_real_mlflow_ui(workspace, tmp_path):
    """`mlflow ui` over the store as `make ui` starts it, Debian's chromium through Playwright: the page's link to the
    final runs."""
    sync_api, chromium = playwright_and_chromium()
    folder, env, client, _ = workspace
    experiment = client.get_experiment_by_name("sweep-tiny")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    finals = {run.info.run_name for run in client.search_runs([experiment.experiment_id], f"tags.`{names.STAGE}` = 'final'")}
    trials = {run.info.run_name for run in client.search_runs([experiment.experiment_id], f"tags.`{names.STAGE}` = 'trial'")}
    port = free_port()
    ui = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "ui",
            "--backend-store-uri",
            env["MLFLOW_TRACKING_URI"],
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        cwd=folder,
        env={**os.environ, **UI_ENVIRONMENT},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/health", ui)
        report = rnnbench_here(
            "report",
            "--experiment",
            "sweep-tiny",
            "--out",
            str(tmp_path),
            "--ui-url",
            f"http://127.0.0.1:{port}",
            cwd=folder,
            env=env,
        )
        assert report.returncode == 0, report.stderr
        [link] = [href for href in Page((tmp_path / "index.html").read_text()).links if "searchFilter" in href]
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            page.goto(link)
            page.get_by_text(f"{len(finals)} matching runs").wait_for(timeout=60_000)
            for name in finals:  # each final run on a row of its own, none folded under the sweep's run
                page.get_by_text(name, exact=True).first.wait_for(timeout=30_000)
            listed = page.inner_text("body")
            page.screenshot(path=str(tmp_path / "mlflow-final-runs.png"))
            browser.close()
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=30)
    assert all(name in listed for name in finals), "every final run is listed, not folded under the sweep's run"
    assert not any(name in listed for name in trials)


def playwright_and_chromium():
    """Playwright (the dev extra) and Debian's chromium; the test is skipped, saying which is missing, without them."""
    chromium = shutil.which("chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra (make install)")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run does)")
    return sync_api, chromium


def test_the_header_names_the_backend_the_runs_trained_on(workspace):
    folder, _, _, _ = workspace
    page = page_of(folder, "sweep-tiny")
    assert "<dt>Keras backend</dt><dd>tensorflow</dd>" in page
    assert "train.backend = tensorflow" in page


def test_the_sweeps_reference_run_is_the_seed_tutorial_nested_under_the_sweep(workspace):
    _, _, client, _ = workspace
    experiment = client.get_experiment_by_name("sweep-tiny").experiment_id
    [sweep] = client.search_runs([experiment], f"tags.`{names.STAGE}` = 'sweep'")
    [reference] = client.search_runs([experiment], f"tags.`{names.STAGE}` = 'reference'")
    seed = load_config(EXPERIMENTS / "seed_simple_rnn.yaml", ["tracking.experiment=sweep-tiny"]).flat()
    assert reference.data.params == {key: str(value) for key, value in seed.items()}
    assert reference.data.tags["mlflow.parentRunId"] == sweep.info.run_id
    assert reference.info.status == "FINISHED" and names.TEST_ACCURACY in reference.data.metrics


def test_the_report_is_an_artifact_of_the_sweeps_run(workspace):
    _, _, client, _ = workspace
    experiment = client.get_experiment_by_name("sweep-tiny").experiment_id
    [sweep] = client.search_runs([experiment], f"tags.`{names.STAGE}` = 'sweep'")
    logged = {artifact.path for artifact in client.list_artifacts(sweep.info.run_id, "report")}
    assert {"report/index.html", "report/runs.csv", "report/curves.csv"} <= logged


def test_the_page_renders_in_a_real_browser(workspace, tmp_path):
    """Debian's chromium, driven by Playwright: a screenshot, every image decoded, no console error."""
    sync_api, chromium = playwright_and_chromium()
    folder, _, _, _ = workspace
    page_path = folder / "reports" / "sweep-tiny" / "index.html"
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page(viewport={"width": 1366, "height": 768})  # a laptop screen
        problems, requests = [], []
        page.on("console", lambda message: message.type in ("error", "warning") and problems.append(message.text))
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("request", lambda request: requests.append(request.url))
        page.goto(page_path.as_uri(), wait_until="load")
        images = page.evaluate("Array.from(document.images).map(image => [image.complete, image.naturalWidth])")
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        # the leaderboard (models and the seed tutorial) and the speed table (each model in each setting), as seen
        page.set_viewport_size({"width": 1400, "height": 900})
        tables = page.evaluate("""Array.from(document.querySelectorAll('div.table')).map(box => ({
            heading: box.previousElementSibling.textContent, rows: box.querySelectorAll('tbody tr').length,
            scrolls: box.scrollWidth - box.clientWidth}))""")
        page.locator("div.table").first.screenshot(path=str(tmp_path / "leaderboard.png"))
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        page.emulate_media(media="print")
        page.screenshot(path=str(tmp_path / "print.png"), full_page=True)
        browser.close()
    assert len(images) == len(FIGURE_FILES) and all(complete and width > 0 for complete, width in images), images
    assert problems == []
    assert requests == [page_path.as_uri()]  # nothing fetched beyond the file itself
    assert overflow <= 0, "the page scrolls sideways on a laptop screen"
    assert (tmp_path / "report.png").stat().st_size > 100_000
    models = len(SHARED_PLAN.studies)
    by_heading = {table["heading"]: table for table in tables}
    assert by_heading["Leaderboard"]["rows"] == models + 1 and by_heading["Leaderboard"]["scrolls"] <= 0
    assert by_heading["Speed: each model in each unroll setting"]["rows"] == 2 * models


def test_a_store_of_single_runs_gets_a_page_that_says_what_it_lacks(workspace):
    folder, env, _, _ = workspace
    result = rnnbench_here("report", "--experiment", "single-runs", cwd=folder, env=env)
    assert result.returncode == 0, result.stderr
    page = page_of(folder, "single-runs")
    assert "holds no sweep, only 2 single run(s)" in page
    assert "Figure 3. The learning-rate landscape of each study:</b> not drawn" in page
    assert "Figure 1. Validation accuracy during training.</b>" in page  # the two seeds, compared
    assert "simple_rnn-h16-unrolled" in page
    assert "Traceback" not in result.stderr


def test_a_study_whose_trials_all_failed_is_reported_not_fatal(workspace):
    folder, _, _, outputs = workspace
    page = page_of(folder, "all-failed")
    assert "Study simple_rnn-h16: no trial completed (2 failed" in page
    assert "Figure 3. The learning-rate landscape of each study.</b>" in page  # the failures, drawn
    assert "Figure 1. Validation accuracy during training:</b> not drawn" in page
    assert "2 run(s) FAILED (diverged: 2)" in page
    assert "Traceback" not in outputs["failed"].stderr


def test_without_a_name_the_report_is_of_the_latest_sweep(workspace):
    folder, env, _, _ = workspace
    result = rnnbench_here("report", cwd=folder, env=env)  # single runs came after the tiny sweep, the failed one last
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(str((folder / "reports" / "all-failed" / "index.html").resolve()))


def test_an_unknown_experiment_is_one_line_listing_those_that_exist(workspace):
    folder, env, _, _ = workspace
    result = rnnbench("report", "--experiment", "sweep-tiyn", cwd=folder, env=env)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "no experiment 'sweep-tiyn'" in line
    for existing in ("'sweep-tiny'", "'single-runs'", "'all-failed'"):
        assert existing in line


def test_out_may_name_a_folder_and_an_unwritable_one_is_one_line(workspace, tmp_path):
    folder, env, _, _ = workspace
    result = rnnbench_here("report", "--experiment", "single-runs", "--out", str(tmp_path / "pages"), cwd=folder, env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "pages" / "index.html").is_file() and (tmp_path / "pages" / "runs.csv").is_file()
    unwritable = rnnbench("report", "--experiment", "single-runs", "--out", "/proc/rnnbench/index.html", cwd=folder, env=env)
    assert unwritable.returncode == 2
    assert unwritable.stderr.strip() == (
        "rnnbench: error: cannot write the report to /proc/rnnbench: No such file or directory; choose another --out"
    )


def test_an_empty_store_says_how_to_fill_it(tmp_path):
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    result = rnnbench_here("report", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "has no runs yet; `make sweep` or `make run`" in result.stderr
