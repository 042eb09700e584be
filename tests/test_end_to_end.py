"""End to end: the `rnnbench` command line against a temporary MLflow store; a real process where the process is what
is tested (its output, its exit on Ctrl-C, a model reloaded in a fresh Python), in this one otherwise."""

from __future__ import annotations

import html
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import (
    EXPERIMENTS,
    FASHION_MNIST,
    needs_fashion_mnist,
    rnnbench,
    rnnbench_here,
    start_rnnbench,
)
from mlflow import MlflowClient

from rnnbench import names
from rnnbench.bench import backends
from rnnbench.config import load_config

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("end-to-end")]  # one workspace of runs, made once


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    folder = tmp_path_factory.mktemp("e2e")
    uri = f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}"
    return folder, {"MLFLOW_TRACKING_URI": uri}, MlflowClient(uri)


@pytest.fixture(scope="module")
def smoke_run(workspace):
    folder, env, client = workspace
    result = rnnbench("run", str(EXPERIMENTS / "smoke.yaml"), cwd=folder, env=env)
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.strip().splitlines()[-1].split()[2]
    return result, client.get_run(run_id), client


def test_prints_one_line_per_evaluation_and_a_summary(smoke_run):
    result, run, _ = smoke_run
    steps = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("step ")]
    assert steps == ["20/60", "40/60", "60/60"]
    assert "val_acc" in result.stdout and "samples/s" in result.stdout
    assert f"run id {run.info.run_id}" in result.stdout
    assert "Traceback" not in result.stderr
    summary = backends.RUN_SUMMARY.search(result.stdout)  # what make bench-backends reads
    assert float(summary["accuracy"]) == pytest.approx(run.data.metrics[names.TEST_ACCURACY], abs=5e-5)
    assert float(summary["speed"].replace(",", "")) == pytest.approx(run.data.metrics[names.TRAIN_SAMPLES_PER_S], abs=0.5)


def test_run_records_every_config_key_as_a_param(smoke_run):
    _, run, _ = smoke_run
    expected = {key: str(value) for key, value in load_config(EXPERIMENTS / "smoke.yaml").flat().items()}
    assert run.data.params == expected
    assert run.info.run_name == "simple_rnn-h16-unrolled-lr1e-03-s0"
    assert run.info.status == "FINISHED"


def test_run_records_curves_test_and_speed_metrics(smoke_run):
    _, run, client = smoke_run
    for key in (names.TRAIN_LOSS, names.TRAIN_ACCURACY, names.VAL_LOSS, names.VAL_ACCURACY):
        history = client.get_metric_history(run.info.run_id, key)
        assert [point.step for point in history] == [20, 40, 60], key
    metrics = run.data.metrics
    assert 0 <= metrics[names.TEST_ACCURACY] <= 1 and metrics[names.TEST_LOSS] > 0
    for key in (names.TRAIN_SAMPLES_PER_S, names.EVAL_SAMPLES_PER_S, names.WALL_S):
        assert metrics[key] > 0, key
    assert metrics[names.COMPILE_S] >= 0
    assert metrics[names.PARAMETERS] == 16 * (28 + 16) + 16 + 16 * 10 + 10


def test_run_records_provenance_tags(smoke_run):
    _, run, _ = smoke_run
    tags = run.data.tags
    assert tags[names.STAGE] == "run"
    assert tags[names.TENSORFLOW_VERSION].startswith("2.21")
    assert tags[names.KERAS_VERSION].startswith("3.")
    assert tags[names.PYTHON_VERSION].startswith("3.")
    assert tags[names.CPU] and tags[names.GPU]
    assert tags[names.DATA_SPLITS] == "train=3600 valid=400 test=1000"
    if names.GIT_COMMIT in tags:  # absent only when run outside a git checkout
        assert len(tags[names.GIT_COMMIT]) == 40 and tags[names.GIT_DIRTY] in ("true", "false")


def test_run_records_its_data_through_mlflow_datasets(smoke_run):
    _, run, _ = smoke_run
    inputs = run.inputs.dataset_inputs
    contexts = {tag.value for dataset_input in inputs for tag in dataset_input.tags if tag.key == "mlflow.data.context"}
    assert contexts == {"training", "validation", "test"}
    assert {dataset_input.dataset.name for dataset_input in inputs} == {"mnist5k"}
    assert len({dataset_input.dataset.digest for dataset_input in inputs}) == 3  # one per split
    assert "mnist_5k.csv.gz" in inputs[0].dataset.source


def test_run_logs_artifacts_and_a_reloadable_model(smoke_run, workspace):
    _, run, client = smoke_run
    folder, env, _ = workspace
    artifacts = {item.path for item in client.list_artifacts(run.info.run_id)}
    assert {
        "config.yaml",
        "model_summary.txt",
        "learning_curve.png",
        "digits.png",
        "confusion_matrix.png",
        names.PREDICTIONS_ARTIFACT,
    } <= artifacts
    for name in ("learning_curve.png", "digits.png", "confusion_matrix.png"):
        path = client.download_artifacts(run.info.run_id, name, str(folder))
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    predictions = pd.read_csv(client.download_artifacts(run.info.run_id, names.PREDICTIONS_ARTIFACT, str(folder)))
    assert list(predictions.columns) == ["label", "predicted"] and len(predictions) == 1000  # mnist5k's test split
    accuracy = (predictions.label == predictions.predicted).mean()
    assert accuracy == pytest.approx(run.data.metrics[names.TEST_ACCURACY], abs=1e-12)
    assert len(run.data.tags[names.TEST_SPLIT]) == 16  # the split's digest: runs pair only on the same images

    reloaded = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import mlflow; m = mlflow.keras.load_model('runs:/{run.info.run_id}/model'); "
            "import numpy as np; print(m(np.zeros((3, 28, 28), 'float32')).shape)",
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert reloaded.stdout.strip().endswith("(3, 10)"), reloaded.stderr[-2000:]


def test_evaluate_reproduces_the_logged_test_accuracy(smoke_run, workspace):
    _, run, _ = smoke_run
    folder, env, _ = workspace
    result = rnnbench_here("evaluate", run.info.run_id, "--data", "mnist5k", cwd=folder, env=env)
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert scores["samples"] == 1000
    assert scores["accuracy"] == pytest.approx(run.data.metrics[names.TEST_ACCURACY], abs=1e-9)
    assert scores["loss"] == pytest.approx(run.data.metrics[names.TEST_LOSS], rel=1e-5)


@pytest.fixture(scope="module")
def permuted_run(workspace):
    """A permuted-pixel LSTM run, 784 steps in the order data.permutation_seed=7 draws, gradients clipped, compiled with
    XLA (as sweep_permuted.yaml's are)."""
    folder, env, client = workspace
    result = rnnbench_here(
        "run",
        str(EXPERIMENTS / "smoke.yaml"),
        "data.task=permuted_pixel",
        "data.permutation_seed=7",
        "model.cell=lstm",
        "model.unroll=false",
        "model.hidden_units=8",
        "train.steps=20",
        "train.eval_every_steps=10",
        "train.clip_norm=1.0",
        "train.xla_on_cpu=looped",
        "tracking.experiment=permuted",
        cwd=folder,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return client.get_run(result.stdout.strip().splitlines()[-1].split()[2])


def test_a_permuted_pixel_run_records_its_order_and_evaluate_applies_it(workspace, permuted_run):
    """The run records the task and the order's digest, and `rnnbench evaluate` scores the saved model on the same
    split exactly as the run did (the order is in the saved model; XLA's rounding is the run's too)."""
    from rnnbench import tasks

    folder, env, _ = workspace
    run = permuted_run
    assert (run.data.params["data.task"], run.data.params["data.permutation_seed"]) == ("permuted_pixel", "7")
    assert run.data.tags[names.PERMUTATION] == tasks.permutation_digest(7)
    evaluated = rnnbench_here("evaluate", run.info.run_id, "--data", "mnist5k", cwd=folder, env=env)
    assert evaluated.returncode == 0, evaluated.stderr
    scores = json.loads(evaluated.stdout)
    assert scores["accuracy"] == pytest.approx(run.data.metrics[names.TEST_ACCURACY], abs=1e-9)
    assert scores["loss"] == pytest.approx(run.data.metrics[names.TEST_LOSS], rel=1e-5)


def test_the_report_of_permuted_runs_draws_the_published_figures_beside_them_with_their_sources(workspace, permuted_run):
    """Figure 9: the run's LSTM beside the LSTM rows published for permuted MNIST, each source cited, and the caption
    says the published runs had 60,000 training images where this one had mnist5k's 3,600."""
    from rnnbench import published

    folder, env, _ = workspace
    result = rnnbench_here("report", "--experiment", "permuted", cwd=folder, env=env)
    assert result.returncode == 0, result.stderr
    report = folder / "reports" / "permuted"
    page = html.unescape((report / "index.html").read_text())
    assert "Figure 9. Beside the literature: published test accuracy for the same task and cell.</b>" in page
    assert (report / "figures" / "published.png").stat().st_size > 10_000
    drawn = pd.read_csv(report / "published.csv", dtype={"arxiv": str})
    assert set(drawn.task) == {"permuted_pixel"} and set(drawn.cell) == {"lstm"}
    for _, row in drawn.iterrows():
        assert published.citation(row) in page
    assert "full MNIST training set of 60,000 images" in page and "these runs trained on 3,600 images" in page


@needs_fashion_mnist
def test_evaluate_on_a_test_only_idx_folder(smoke_run, workspace, tmp_path):
    import shutil

    _, run, _ = smoke_run
    folder, env, _ = workspace
    for path in FASHION_MNIST.glob("t10k-*"):
        shutil.copy(path, tmp_path)
    result = rnnbench_here("evaluate", run.info.run_id, "--data", f"idx:{tmp_path}", cwd=folder, env=env)
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert scores["samples"] == 10000 and 0 <= scores["accuracy"] <= 1


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["evaluate", "0123456789abcdef", "--data", "mnist5k"], "no run '0123456789abcdef'"),
        (
            ["run", str(EXPERIMENTS / "smoke.yaml"), "data.source=idx:/no/such/folder"],
            "data folder /no/such/folder does not exist",
        ),
    ],
)
def test_errors_are_one_line_and_exit_2(workspace, arguments, message):
    folder, env, client = workspace
    before = len(client.search_runs([e.experiment_id for e in client.search_experiments()]))
    result = rnnbench(*arguments, cwd=folder, env=env)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert len(client.search_runs([e.experiment_id for e in client.search_experiments()])) == before


def test_a_diverging_run_ends_failed_with_its_metrics_kept(workspace):
    folder, env, client = workspace
    result = rnnbench_here(
        "run",
        str(EXPERIMENTS / "smoke.yaml"),
        "train.learning_rate=1e38",
        "train.eval_every_steps=1",
        "train.steps_per_execution=1",
        "tracking.experiment=diverge",
        cwd=folder,
        env=env,
    )
    assert result.returncode == 1
    assert "FAILED" in result.stderr and "lower train.learning_rate" in result.stderr
    assert "Traceback" not in result.stderr
    [run] = client.search_runs([client.get_experiment_by_name("diverge").experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.tags[names.FAILURE] == "diverged"
    assert "step 2" in run.data.tags[names.FAILURE_REASON]
    assert [point.step for point in client.get_metric_history(run.info.run_id, names.VAL_ACCURACY)] == [1]


def test_ctrl_c_ends_the_run_killed_with_its_metrics_kept(workspace):
    folder, env, client = workspace
    process = start_rnnbench(
        ["run", str(EXPERIMENTS / "smoke.yaml"), "train.steps=100000", "tracking.experiment=interrupt"], folder, env
    )
    deadline = time.monotonic() + 240
    for line in process.stdout:
        if line.startswith("step 40/"):
            break
        assert time.monotonic() < deadline
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130
    assert "recorded as KILLED" in stderr and "Traceback" not in stderr
    [run] = client.search_runs([client.get_experiment_by_name("interrupt").experiment_id])
    assert run.info.status == "KILLED"
    assert len(client.get_metric_history(run.info.run_id, names.VAL_ACCURACY)) >= 2
