"""The sweep time budget (`make bench-budget`): every worker-second of a sweep in exactly one part."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from rnnbench.bench import budget

START = pd.Timestamp("2026-11-30 00:00:00", tz="UTC")


def run(process: str, start: float, end: float, training=None, compile_s=None, eval_rate=None, **shape):
    return {
        "process": process,
        "start_time": START + pd.Timedelta(seconds=start),
        "end_time": START + pd.Timedelta(seconds=end),
        "training_s": training,
        "compile_s": compile_s,
        "eval_samples_per_s": eval_rate,
        "steps": 100,
        "params.train.eval_every_steps": "50",
        "run_id": f"{process}{start}",
        "batch_size": 50,
        "task": "row",
        "xla_on_cpu": "looped",
        "xla": True,
        "gpu": "none",
        "cpu": "AMD EPYC (2 logical cores)",
        **{"cell": "lstm", "hidden_units": 128, "unroll": False, **shape},
    }


def test_each_worker_second_of_a_sweep_is_in_exactly_one_part():
    """Two workers for 100 s: a finished run of 40 s (30 s in the loop: 2 s compiling, 2 evaluations of 400 images at
    400 images/s), a pruned one of 25 s, and a finished one of 50 s on the other worker (45 s loop, 1 s compiling,
    400 images/s)."""
    runs = pd.DataFrame([run("a", 5, 45, 30.0, 2.0, 400.0), run("a", 50, 75), run("b", 10, 60, 45.0, 1.0, 400.0)])
    table = budget.budget(runs, START, START + pd.Timedelta(seconds=100), valid_images=400)
    assert list(table.index) == list(budget.PARTS)
    assert table.seconds.to_dict() == pytest.approx(
        {
            "training": (30 - 2 - 2) + (45 - 1 - 2),
            "compilation": 3,
            "validation": 4,
            "outside the loop": 10 + 5,
            "stopped runs": 25,
            "waiting": 200 - 115,
        }
    )
    assert table.seconds.sum() == pytest.approx(200) and table.share.sum() == pytest.approx(1)


@pytest.mark.slow
def test_the_budget_of_a_real_sweep_adds_up_to_its_workers_time(tiny_sweep_store):
    import subprocess

    from conftest import ROOT
    from mlflow import MlflowClient

    folder, env, _ = tiny_sweep_store
    if not (ROOT / ".venv" / "bin" / "python").exists():
        pytest.skip("the make targets run from the project's .venv: make install")
    result = subprocess.run(
        ["make", "--no-print-directory", "bench-budget", "EXPERIMENT=sweep-tiny", f"BENCH_OUT={folder}"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(folder / "budget" / "budget.csv", index_col="part")
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("sweep-tiny").experiment_id
    sweep = client.search_runs([experiment], "tags.`rnnbench.stage` = 'sweep'")[0]
    workers = len(
        {
            run.data.tags["rnnbench.process"]
            for run in client.search_runs([experiment], max_results=1000)
            if run.data.tags.get("rnnbench.stage") in budget.SWEEP_RUN_STAGES
        }
    )
    assert table.seconds.sum() == pytest.approx(workers * (sweep.info.end_time - sweep.info.start_time) / 1000, rel=1e-6)
    assert (table.seconds[["training", "compilation", "validation", "outside the loop"]] > 0).all()
    assert (folder / "budget" / "budget.png").stat().st_size > 5_000 and "| training |" in result.stdout
    # against the peak: one row per shape of the finished runs, each training at a rate above 0 (read at full precision:
    # a small shape's share prints as 0% on a machine with a high peak). No upper bound: the peak is measured while
    # other tests may load the cores, so a share is only what this machine showed then
    rows = [
        line
        for line in result.stdout.split("## Training against the machine's peak")[1].splitlines()
        if line.startswith("| ") and line.endswith("% |")
    ]
    peak = pd.read_csv(folder / "budget" / "peak.csv")
    finished = [
        run
        for run in client.search_runs([experiment], "attributes.status = 'FINISHED'", max_results=1000)
        if run.data.tags.get("rnnbench.stage") in budget.SWEEP_RUN_STAGES
    ]
    shapes = {
        (run.data.params["model.cell"], run.data.params["model.hidden_units"], run.data.params["model.unroll"])
        for run in finished
    }
    assert len(rows) == len(peak) == len(shapes) and (peak.of_peak > 0).all()
    assert peak.runs.sum() == len(finished)


@pytest.mark.slow
@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--experiment", "sweep-tiyn"], "no experiment 'sweep-tiyn'"),
        (["--experiment", "sweep-tiny", "--out", "/proc/no-such-folder"], "cannot write to /proc/no-such-folder"),
    ],
)
def test_a_bad_experiment_or_folder_is_one_line_and_exit_2(tiny_sweep_store, arguments, message):
    import subprocess
    import sys

    folder, env, _ = tiny_sweep_store
    result = subprocess.run(
        [sys.executable, "-m", "rnnbench.bench.budget", *arguments],
        cwd=folder,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"rnnbench: error: {message}") and len(result.stderr.strip().splitlines()) == 1


def test_a_sweep_without_an_end_has_no_budget(monkeypatch):
    """A sweep still running (or single runs, which have no sweep run): its budget would be of nothing yet."""
    from rnnbench import records
    from rnnbench.errors import UserError

    recorded = records.Recorded("single-runs", "1", pd.DataFrame({"stage": ["run"]}), pd.DataFrame())
    monkeypatch.setattr(records, "read", lambda experiment, curves: recorded)
    with pytest.raises(UserError, match="'single-runs' has no ended sweep run"):
        budget._ended_sweep("single-runs")


def test_budgets_measured_before_and_after_a_change_are_drawn_side_by_side(tmp_path, capsys):
    """`--compare before=A after=B` reads what two earlier budgets wrote and puts each part's worker-seconds and share
    side by side, in a table and one figure (e.g. a sweep measured on the old code and the new, in separate stores)."""
    for label, training in (("old", 300.0), ("new", 100.0)):
        runs = pd.DataFrame([run("a", 0, 100 + training, training, 2.0, 400.0)])
        table = budget.budget(runs, START, START + pd.Timedelta(seconds=110 + training), valid_images=400)
        (tmp_path / label).mkdir()
        table.to_csv(tmp_path / label / "budget.csv", index_label="part")
        (tmp_path / label / "budget.md").write_text(f"sweep-{label}: 1 run, 1 worker(s)\n\n| part |\n")
    assert (
        budget.main(["--compare", f"before={tmp_path / 'old'}", f"after={tmp_path / 'new'}", "--out", str(tmp_path / "both")])
        == 0
    )
    written = (tmp_path / "both" / "budget-compare.md").read_text()
    assert written == capsys.readouterr().out
    assert "- before: sweep-old: 1 run" in written and "- after: sweep-new: 1 run" in written
    # training: the loop less compilation less 2 evaluations of 400 images at 400 images/s
    assert "| training | 296 | 72.2% | 96 | 45.7% |" in written and "| all | 410 | 100% | 210 | 100% |" in written
    assert (tmp_path / "both" / "budget-compare.png").stat().st_size > 5_000


@pytest.mark.parametrize("entry, message", [("before", "expected LABEL=FOLDER"), ("before=/no/such/folder", "no budget written")])
def test_a_bad_comparison_entry_is_one_line_and_exit_2(tmp_path, capsys, entry, message):
    assert budget.main(["--compare", entry, "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("rnnbench: error: --compare") and message in error and len(error.strip().splitlines()) == 1


def test_the_sweep_against_the_peak_counts_each_runs_flops_and_each_shapes_rate():
    """A finished LSTM-128 run of 100 steps of 50 images, 20 s of it in training steps, and a GRU-32 trial pruned at
    step 40: the sweep's FLOPs are both runs' images times their FLOPs per image; the LSTM's rate is its FLOPs over
    its training steps' seconds, against a peak of 100 GFLOP/s; the pruned run has no rate."""
    from rnnbench import cost

    runs = pd.DataFrame([run("a", 0, 40, 30.0, 2.0, 400.0), run("b", 0, 10, cell="gru", hidden_units=32)])
    trained_s = budget.training_s(runs, valid_images=400)
    assert trained_s.tolist() == [30 - 2 - 2]
    flops, shapes = budget.efficiency(runs, pd.Series({"a0": 100, "b0": 40}), trained_s, peak=100e9)
    lstm, gru = cost.flops_per_sample("lstm", 128, "row"), cost.flops_per_sample("gru", 32, "row")
    assert flops == pytest.approx(100 * 50 * lstm + 40 * 50 * gru)
    assert shapes[["cell", "hidden_units", "unroll", "xla", "runs"]].values.tolist() == [["lstm", 128, False, True, 1]]
    assert shapes.flops_per_s[0] == pytest.approx(100 * 50 * lstm / 26) and shapes.of_peak[0] == pytest.approx(
        shapes.flops_per_s[0] / 100e9
    )


@pytest.mark.parametrize(
    "where, message",
    [
        ({"gpu": "NVIDIA H200 (CUDA_VISIBLE_DEVICES=0)"}, "trained on a GPU"),
        ({"cpu": "Intel Xeon (64 logical cores)"}, "ran on Intel Xeon (64 logical cores), not on this one"),
    ],
)
def test_a_sweep_from_a_gpu_or_another_machine_is_not_compared_with_this_cpus_peak(monkeypatch, tmp_path, where, message):
    from rnnbench import provenance

    monkeypatch.setattr(provenance, "cpu_description", lambda: "AMD EPYC (2 logical cores)")
    runs = pd.DataFrame([run("a", 0, 40, 30.0, 2.0, 400.0, **where)])
    recorded = budget.records.Recorded("sweep", "1", runs, pd.DataFrame(columns=["run_id", "metric", "step", "value"]))
    explained = budget._against_peak(runs, recorded, budget.training_s(runs, 400), wall=40.0, folder=tmp_path)
    assert len(explained) == 1 and message in explained[0]
