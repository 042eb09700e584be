"""train.backend: Keras on JAX computes the same model as on TensorFlow, and runs say which they used."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import EXPERIMENTS, rnnbench
from mlflow import MlflowClient

from rnnbench import backend, names
from rnnbench.config import CELLS, ModelConfig
from rnnbench.errors import ConfigError
from rnnbench.model import build_model

pytestmark = pytest.mark.skipif(
    not backend.jax_installed(), reason="the [jax] extra is part of the dev install (make install)"
)  # not importorskip: this test process runs on TensorFlow, which keeps JAX out (backend.load)


def test_a_second_backend_in_one_process_is_refused_with_the_fix():
    import keras

    assert keras.backend.backend() == "tensorflow"  # the test process, like any rnnbench process, chose it first
    with pytest.raises(ConfigError, match="already runs Keras on tensorflow; run each backend in its own process"):
        backend.load("jax")
    backend.load("tensorflow")  # the same backend again: nothing to do


def test_jax_missing_names_the_install(monkeypatch):
    monkeypatch.delitem(sys.modules, "jax", raising=False)  # this process keeps an installed JAX out with a None entry
    monkeypatch.setattr(backend.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"train.backend=jax needs JAX.*pip install -e '.\[jax\]'"):
        backend.load("jax")


@pytest.mark.slow
def test_every_cell_computes_the_same_function_on_jax(tmp_path):
    """The same weights give the same probabilities on both backends: only speed and the random
    draw of the starting weights differ."""
    images = np.random.default_rng(0).random((16, 28, 28), dtype=np.float32)
    np.save(tmp_path / "images.npy", images)
    expected = {}
    for cell in CELLS:
        for unroll in (False, True):
            model = build_model(ModelConfig(cell=cell, hidden_units=24, unroll=unroll))
            name = f"{cell}-{unroll}"
            model.save(tmp_path / f"{name}.keras")
            expected[name] = np.asarray(model(images))
    script = (
        "import sys, pathlib, numpy as np\n"
        "from rnnbench import backend\n"
        "backend.load('jax')\n"
        "import keras\n"
        "assert keras.backend.backend() == 'jax'\n"
        "folder = pathlib.Path(sys.argv[1])\n"
        "images = np.load(folder / 'images.npy')\n"
        "for path in folder.glob('*.keras'):\n"
        "    np.save(folder / (path.stem + '.npy'), np.asarray(keras.saving.load_model(path)(images)))\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for name, probabilities in expected.items():
        np.testing.assert_allclose(np.load(tmp_path / f"{name}.npy"), probabilities, atol=2e-6, err_msg=name)


@pytest.mark.slow
def test_a_run_on_jax_trains_and_records_its_backend(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = rnnbench(
        "run",
        str(EXPERIMENTS / "smoke.yaml"),
        "train.backend=jax",
        "train.steps=200",
        "train.eval_every_steps=100",
        cwd=tmp_path,
        env={"MLFLOW_TRACKING_URI": uri},
    )
    assert result.returncode == 0, result.stderr
    client = MlflowClient(uri)
    [run] = client.search_runs([client.get_experiment_by_name("smoke").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["train.backend"] == "jax"
    assert run.data.tags[names.JAX_VERSION]
    assert run.data.metrics[names.TEST_ACCURACY] > 0.3  # chance is 0.1: it learned
    assert [point.step for point in client.get_metric_history(run.info.run_id, names.VAL_ACCURACY)] == [100, 200]


@pytest.mark.slow
def test_a_process_on_tensorflow_leaves_jax_unloaded_and_its_libraries_out_of_garbage_collection():
    """TensorFlow imports JAX for its Lite converter whenever JAX is installed; a process on TensorFlow never uses it.
    The libraries' objects, loaded, are no longer traversed by the garbage collector (rnnbench.startup)."""
    script = (
        "import gc, sys\n"
        "from rnnbench import backend, startup\n"
        "backend.load('tensorflow')\n"
        "import keras\n"
        "assert keras.backend.backend() == 'tensorflow'\n"
        "assert sys.modules.get('jax') is None and not any(name.startswith('jaxlib') for name in sys.modules)\n"
        "assert gc.get_threshold()[0] == startup.YOUNG_THRESHOLD and gc.get_freeze_count() > 10**5, gc.get_freeze_count()\n"
        "try:\n"
        "    backend.load('jax')\n"
        "except Exception as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "already runs Keras on tensorflow" in result.stdout  # JAX counts as installed: the fix is another process


def test_a_negative_thread_count_is_a_one_line_error_not_a_tensorflow_abort():
    """TensorFlow aborts the process with a native stack dump on a negative thread count (`--threads -1`)."""
    from rnnbench import backend
    from rnnbench.errors import ConfigError

    with pytest.raises(ConfigError, match=r"threads: received -1, expected a number of CPU threads >= 1 \(0: all cores\)"):
        backend.load("tensorflow", -1)
