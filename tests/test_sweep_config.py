"""Unit tests: sweep files, their validation and their plan."""

from __future__ import annotations

import pytest
from conftest import EXPERIMENTS, rnnbench

from rnnbench.config import load_config
from rnnbench.errors import ConfigError
from rnnbench.sweep.definition import SweepDefinition, load_sweep, plan, reference_config


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("sweep*.yaml")), ids=lambda path: path.name)
def test_every_sweep_file_parses_and_validates(path):
    assert isinstance(load_sweep(path), SweepDefinition)


def test_default_sweep_is_the_documented_grid():
    definition = load_sweep(EXPERIMENTS / "sweep.yaml")
    assert definition.grid.cells == ("simple_rnn", "lstm", "gru")
    assert definition.grid.hidden_units == (32, 64, 128)
    assert definition.grid.unroll == (False, True)
    assert [(d.key, d.spec()) for d in definition.space] == [("train.learning_rate", {"low": 1e-4, "high": 3e-2, "log": True})]
    assert definition.data.source == "mnist5k"
    sweep_plan = plan(definition)
    assert len(sweep_plan.studies) == 9
    assert sweep_plan.trials == 9 * definition.search.trials
    assert len(sweep_plan.final_runs) == 9 * (definition.final.seeds + 1)  # each model trained once, timed in the other
    assert definition.final.seeds >= 3  # the report needs a spread over seeds to test differences
    assert sweep_plan.reference_seeds == tuple(range(definition.final.seeds))
    assert sweep_plan.runs == sweep_plan.trials + len(sweep_plan.final_runs) + definition.final.seeds


def test_the_reference_run_is_the_seed_tutorial_on_the_sweeps_data():
    definition = load_sweep(EXPERIMENTS / "sweep.yaml", ["data.source=fashion_mnist"])
    reference = reference_config(definition, seed=1)
    seed = load_config(EXPERIMENTS / "seed_simple_rnn.yaml", ["train.seed=1", "data.source=fashion_mnist"])
    assert (reference.model, reference.train, reference.data) == (seed.model, seed.train, seed.data)
    assert reference.tracking.experiment == definition.sweep.name


def test_tiny_sweep_is_the_toy_scale_shape():
    definition = load_sweep(EXPERIMENTS / "sweep_tiny.yaml")
    assert len(definition.grid.cells) == 2 and len(definition.grid.hidden_units) == 1 and len(definition.grid.unroll) == 2
    assert definition.search.trials == 3 and definition.final.seeds == 1
    assert definition.train.steps <= 500


def test_every_variant_is_trained_or_timed_in_the_final_stage_and_only_there_tested():
    sweep_plan = plan(load_sweep(EXPERIMENTS / "sweep.yaml"))
    variants = {(run.cell, run.hidden_units, run.unroll) for run in sweep_plan.final_runs}
    assert len(variants) == 3 * 3 * 2
    # one study per (cell, size): unroll does not get its own search
    assert len({(study.cell, study.hidden_units) for study in sweep_plan.studies}) == len(sweep_plan.studies)


@pytest.mark.parametrize("text", ["grid.cells=lstm,gru", "grid.cells=[lstm, gru]"])
def test_list_overrides_on_the_command_line(text):
    assert load_sweep(EXPERIMENTS / "sweep.yaml", [text]).grid.cells == ("lstm", "gru")


def test_overrides_of_shared_run_settings():
    definition = load_sweep(EXPERIMENTS / "sweep.yaml", ["train.steps=1000", "grid.hidden_units=16,32", "grid.unroll=false"])
    assert definition.train.steps == 1000
    assert definition.grid.hidden_units == (16, 32)
    assert definition.grid.unroll == (False,)


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["grid.cells=[]"], ["grid.cells", "at least one value"]),
        (["grid.cells=lstm,transformer"], ["grid.cells", "'transformer'", "simple_rnn, lstm, gru"]),
        (["grid.hidden_units=32,32"], ["grid.hidden_units", "without repeats"]),
        (["grid.hidden_units=32,big"], ["grid.hidden_units[1]", "'big'", "an integer"]),
        (["space.train.learning_rate={low: 0.1, high: 0.01, log: true}"], ["space.train.learning_rate", "low < high"]),
        (["search.learning_rate_min=0.1"], ["now part of the search space", "space:"]),
        (["search.trials=0"], ["search.trials", "0", "positive integer"]),
        (["search.pruner=hyperband"], ["search.pruner", "median, successive_halving, none"]),
        (["search.trails=4"], ["unknown key 'search.trails'", "did you mean 'search.trials'"]),
        (["final.seeds=0"], ["final.seeds", "positive integer"]),
        (["train.learning_rate=0.01"], ["train.learning_rate is set by the sweep", "space.train.learning_rate"]),
        (["train.seed=3"], ["train.seed is set by the sweep", "final.seeds"]),
        (["sweep.name=a:b"], ["sweep.name", "without ':'"]),
        (["grid.cells=[lstm"], ["grid.cells", "not valid YAML"]),
        (["space.model.dropout={low: 0"], ["space.model.dropout", "not valid YAML"]),
    ],
)
def test_bad_sweep_settings_fail_with_the_key_and_the_fix(overrides, expected):
    with pytest.raises(ConfigError) as error:
        load_sweep(EXPERIMENTS / "sweep.yaml", overrides)
    for fragment in expected:
        assert fragment in str(error.value)


def test_a_list_where_a_value_belongs_names_the_key(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text("grid:\n  cells: lstm\n")
    with pytest.raises(ConfigError, match="grid.cells: received 'lstm', expected a list of names"):
        load_sweep(path)


def test_bad_sweep_file_is_one_line_from_the_cli_before_any_work(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text("grid:\n  hidden_units: []\n")
    result = rnnbench("sweep", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "rnnbench: error: grid.hidden_units: received [], expected at least one value"
    assert not (tmp_path / "mlruns").exists()


@pytest.mark.slow
def test_dry_run_prints_the_plan_and_cost_and_runs_nothing(tmp_path):
    result = rnnbench(
        "sweep", str(EXPERIMENTS / "sweep.yaml"), "--dry-run", "--workers", "2", cwd=tmp_path, env={"MLFLOW_TRACKING_URI": ""}
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "9 studies x 8 trials = 72 trials" in out
    assert "27 final runs = 3 seeds per model in its faster unroll setting" in out  # 9 models x 3 seeds
    assert "9 timing runs of the other setting (250 steps each" in out
    [row] = [line for line in out.splitlines() if line.startswith("lstm-h128 ")]
    assert row.split()[5] in ("looped", "unrolled")  # the setting its final runs train in
    assert "estimate on one worker" in out and "with 2 workers" in out
    every = rnnbench(
        "sweep",
        str(EXPERIMENTS / "sweep.yaml"),
        "final.train_every_unroll=true",
        "--dry-run",
        cwd=tmp_path,
        env={"MLFLOW_TRACKING_URI": ""},
    )
    assert "54 final runs = 2 unroll setting(s) x 3 seeds per model" in every.stdout
    assert not (tmp_path / "mlruns").exists()
