"""Unit tests: experiment files, key=value overrides, and a clear error for every bad input."""

from __future__ import annotations

import pytest
from conftest import EXPERIMENTS, rnnbench

from rnnbench.config import Config, load_config
from rnnbench.errors import ConfigError


@pytest.mark.parametrize(
    "path", sorted(set(EXPERIMENTS.glob("*.yaml")) - set(EXPERIMENTS.glob("sweep*.yaml"))), ids=lambda path: path.name
)
def test_every_run_file_parses_and_validates(path):
    config = load_config(path)
    assert isinstance(config, Config)


@pytest.mark.parametrize("name, cell", [("seed_simple_rnn", "simple_rnn"), ("seed_lstm", "lstm")])
def test_seed_experiments_are_the_seed_tutorial(name, cell):
    config = load_config(EXPERIMENTS / f"{name}.yaml")
    assert (config.model.cell, config.model.hidden_units, config.model.unroll) == (cell, 50, True)
    assert (config.train.batch_size, config.train.steps, config.train.eval_every_steps) == (50, 5000, 500)
    assert config.train.learning_rate == pytest.approx(1e-3)
    assert config.data.source == "mnist5k"


def test_overrides_win_over_the_file_and_are_typed(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("model:\n  cell: gru\n  hidden_units: 32\ntrain:\n  learning_rate: 1.0e-2\n")
    config = load_config(path, ["model.hidden_units=128", "train.learning_rate=3e-3", "model.unroll=false"])
    assert config.model.cell == "gru"
    assert config.model.hidden_units == 128
    assert config.train.learning_rate == pytest.approx(3e-3)
    assert config.model.unroll is False


def test_flat_keys_are_the_documented_dotted_keys():
    keys = set(Config().flat())
    assert {
        "data.source",
        "data.valid_fraction",
        "data.test_size",
        "model.cell",
        "model.hidden_units",
        "model.unroll",
        "train.batch_size",
        "train.steps",
        "train.eval_every_steps",
        "train.learning_rate",
        "train.seed",
        "train.steps_per_execution",
        "train.backend",
        "tracking.experiment",
    } <= keys


def test_resolved_yaml_round_trips(tmp_path):
    config = load_config(EXPERIMENTS / "seed_lstm.yaml", ["train.seed=3"])
    path = tmp_path / "resolved.yaml"
    path.write_text(config.to_yaml())
    assert load_config(path) == config


@pytest.mark.parametrize(
    "override, expected",
    [
        ("model.cell=transformer", ["model.cell", "'transformer'", "simple_rnn, lstm, gru"]),
        ("train.steps=-1", ["train.steps", "-1", "positive integer"]),
        ("train.steps=1.5", ["train.steps", "1.5", "an integer"]),
        ("model.hiden_units=64", ["unknown key 'model.hiden_units'", "did you mean 'model.hidden_units'"]),
        ("modle.cell=lstm", ["unknown key 'modle.cell'", "did you mean 'model'"]),
        ("model.unroll=sometimes", ["model.unroll", "'sometimes'", "true or false"]),
        ("train.learning_rate=fast", ["train.learning_rate", "'fast'", "a number"]),
        ("train.learning_rate=0", ["train.learning_rate", "positive number"]),
        ("train.eval_every_steps=300", ["train.eval_every_steps", "divisor of train.steps=5000"]),
        (
            "train.eval_every_steps=25",
            ["train.steps_per_execution", "received 10", "divisor of train.eval_every_steps=25 (e.g. 5)"],
        ),
        ("train.backend=torch", ["train.backend", "'torch'", "tensorflow, jax"]),
        ("train.xla_on_cpu=true", ["train.xla_on_cpu", "'true'", "none, looped, all"]),
        ("train.xla_on_cpu=always", ["train.xla_on_cpu", "'always'", "none, looped, all"]),
        ("data.valid_fraction=1.5", ["data.valid_fraction", "between 0 and 1"]),
        ("data.source=imagenet", ["data.source", "'imagenet'", "idx:PATH"]),
        ("lstm", ["'lstm' is not of the form key=value"]),
        ("data.permutation_seed=-1", ["data.permutation_seed", "-1", "an integer >= 0"]),
        ("model.hidden_units=[1", ["model.hidden_units", "'[1'", "not valid YAML"]),
        ("train.learning_rate={a", ["train.learning_rate", "not valid YAML"]),
    ],
)
def test_bad_overrides_name_the_key_what_was_received_and_what_is_allowed(override, expected):
    with pytest.raises(ConfigError) as error:
        load_config(EXPERIMENTS / "seed_simple_rnn.yaml", [override])
    for fragment in expected:
        assert fragment in str(error.value)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("model:\n  cell: [lstm\n", "not valid YAML at line"),
        ("model: lstm\n", "section 'model' must hold keys"),
        ("- model\n", "expected sections"),
        ("model:\n  hidden_units: '64'\n", "model.hidden_units: received '64' (str), expected an integer"),
        ("model:\n  unroll: 1\n", "model.unroll: received 1 (int), expected true or false"),
        ("tracking:\n  experimnt: x\n", "did you mean 'tracking.experiment'"),
    ],
)
def test_bad_experiment_files_fail_clearly(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=expected.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        load_config(path)


@pytest.mark.parametrize("written, value", [("3e-3", 3e-3), ("1E-4", 1e-4), ("3.0e-3", 3e-3), ("0.01", 0.01), ("2", 2.0)])
def test_a_learning_rate_written_as_people_write_it_is_a_number(tmp_path, written, value):
    path = tmp_path / "lr.yaml"
    path.write_text(f"train:\n  learning_rate: {written}\n")  # YAML 1.1 reads 3e-3 (no dot) as text
    assert load_config(path).train.learning_rate == pytest.approx(value)


def test_a_key_given_twice_is_refused_with_both_lines(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("train:\n  learning_rate: 3.0e-3\n  steps: 100\n  learning_rate: 1.0e-2\n")
    with pytest.raises(
        ConfigError, match=r"twice.yaml: not valid YAML at line 4: 'learning_rate' is given twice \(first at line 2\)"
    ):
        load_config(path)


@pytest.mark.parametrize(
    "content",
    [
        "train:\n  steps: 100\n".encode("utf-16"),  # an editor's "Unicode" save
        bytes(range(256)),  # not text at all
        b"model:\n  cell: lstm\x00\n",  # UTF-8, but with a control character YAML refuses
    ],
    ids=["utf-16", "binary", "nul-byte"],
)
def test_a_config_that_is_not_utf8_yaml_is_one_line_naming_the_file(tmp_path, content):
    path = tmp_path / "odd.yaml"
    path.write_bytes(content)
    result = rnnbench("show-config", str(path), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"rnnbench: error: {path}: not ")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_missing_config_file_is_named():
    with pytest.raises(ConfigError, match="config file nowhere.yaml not found"):
        load_config("nowhere.yaml")


@pytest.mark.parametrize(
    "arguments",
    [
        ["run", "experiments/smoke.yaml", "model.cell=transformer"],
        ["run", "experiments/smoke.yaml", "train.steps=-1"],
        ["run", "experiments/missing.yaml"],
        ["show-config", "experiments/smoke.yaml", "train.stepz=3"],
    ],
)
def test_cli_bad_config_exits_2_with_one_line_and_creates_no_run(tmp_path, arguments):
    from conftest import ROOT

    store = tmp_path / "store"
    result = rnnbench(*arguments, cwd=ROOT, env={"MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}"})
    assert result.returncode == 2
    assert result.stderr.startswith("rnnbench: error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert not store.exists()  # nothing was recorded, not even an empty store
