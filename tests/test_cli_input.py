"""Bad input at the command line is one line naming the problem and the fix, before anything is written: the command
line runs in-process here (the same `main` as `rnnbench`), on nothing but files."""

from __future__ import annotations

import json

import pytest
from conftest import EXPERIMENTS, TINY, rnnbench_here

from rnnbench.config import MAX_NAME_LENGTH
from rnnbench.sweep import studies
from rnnbench.sweep.definition import load_sweep, plan


@pytest.fixture
def rnnbench(tmp_path):
    """`rnnbench ARGS...` in this process, in an empty folder with its own store: (exit code, stdout, stderr)."""
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"}

    def run(*arguments: str) -> tuple[int, str, str]:
        result = rnnbench_here(*arguments, cwd=tmp_path, env=env)
        return result.returncode, result.stdout, result.stderr

    return run


def test_overrides_may_follow_the_options(rnnbench):
    code, out, err = rnnbench("sweep", str(TINY), "--workers", "2", "--dry-run", "search.trials=1", "final.seeds=2")
    assert code == 0, err
    assert "2 studies x 1 trials" in out and "2 seeds per model" in out


def test_an_unknown_option_is_still_refused(rnnbench):
    with pytest.raises(SystemExit) as exit_:
        rnnbench("sweep", str(TINY), "--bogus")
    assert exit_.value.code == 2


def test_a_directory_given_as_the_config_file_is_named_as_one(rnnbench):
    code, _, err = rnnbench("run", str(EXPERIMENTS))
    assert code == 2 and f"{EXPERIMENTS} is a directory, not a config file" in err


@pytest.mark.parametrize(
    "arguments",
    [
        ["sweep", str(TINY), f"sweep.name={'s' * (MAX_NAME_LENGTH + 1)}"],
        ["run", str(EXPERIMENTS / "smoke.yaml"), f"tracking.experiment={'é' * (MAX_NAME_LENGTH // 2 + 1)}"],
    ],
    ids=["sweep", "run"],
)
def test_a_name_mlflow_cannot_keep_is_refused_before_anything_is_written(rnnbench, tmp_path, arguments):
    code, _, err = rnnbench(*arguments)
    assert code == 2 and f"expected a name of at most {MAX_NAME_LENGTH}" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "mlruns").exists()


def test_a_worker_given_a_missing_journal_says_so_and_leaves_no_file(rnnbench, tmp_path):
    code, _, err = rnnbench("worker", "sweep-tiny", "--storage", "elsewhere/optuna.journal")
    assert code == 2 and "no sweep storage elsewhere/optuna.journal: start the sweep first" in err
    assert not (tmp_path / "elsewhere").exists()


def test_a_worker_refuses_a_sweep_file_whose_settings_differ_from_the_sweeps(rnnbench, tmp_path):
    journal = str(tmp_path / "optuna.journal")
    definition = load_sweep(TINY)
    studies.create_studies(studies.open_storage(journal), definition, plan(definition))
    code, _, err = rnnbench("worker", str(TINY), "train.steps=400", "--storage", journal)
    assert code == 2
    assert "sweep 'sweep-tiny' already exists in this storage with other settings (train.steps: 200 -> 400)" in err


def test_a_storage_that_is_not_a_journal_is_one_line(rnnbench, tmp_path):
    (tmp_path / "notes.txt").write_text(json.dumps({"not": "a journal"}) + "\n")
    code, _, err = rnnbench("sweep", str(TINY), "--storage", "notes.txt")
    assert code == 2 and "notes.txt is not an Optuna journal" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "notes.txt").read_text() == json.dumps({"not": "a journal"}) + "\n"  # left as it was
