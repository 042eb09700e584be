"""Keras' backend for this process, chosen by `train.backend` before Keras is first imported.

    rnnbench run experiments/seed_simple_rnn.yaml train.backend=jax     # calls load("jax")

Keras 3 fixes its backend when it is imported, so each process trains on one backend: the CLI,
a sweep's workers and the benchmarks call `load` once, before anything imports Keras.
TensorFlow is imported on every backend: the input pipeline is `tf.data`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys

from rnnbench import startup
from rnnbench.errors import ConfigError


def load(backend: str = "tensorflow", threads: int | None = None) -> None:
    """Selects Keras' `backend` and imports it, with native start-up chatter kept off the terminal.

    Args:
        backend: one of `config.BACKENDS`.
        threads: CPU threads for the backend's operations (None: its default, all cores); a sweep
            gives each worker its share.

    Raises:
        ConfigError: a negative thread count, JAX is not installed, or Keras already runs on another backend in
            this process.
    """
    if threads is not None and threads < 0:  # TensorFlow aborts the process on a negative count
        raise ConfigError(f"threads: received {threads}, expected a number of CPU threads >= 1 (0: all cores)")
    if backend == "jax" and not jax_installed():
        raise ConfigError("train.backend=jax needs JAX, which is not installed: pip install -e '.[jax]' (make install has it)")
    if "keras" in sys.modules:
        current = sys.modules["keras"].backend.backend()
        if current != backend:
            raise ConfigError(
                f"train.backend={backend}, but this process already runs Keras on {current}; "
                "run each backend in its own process (rnnbench run, or a sweep per backend)"
            )
        return
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # TensorFlow Lite's converter imports JAX (and its own XLA library) at every start whenever JAX is installed, as
    # with the [jax] extra; a process on TensorFlow never uses it (one backend per process, above). A None entry in
    # sys.modules makes `import jax` raise ImportError, which TensorFlow expects where JAX is missing.
    if backend == "tensorflow" and "jax" not in sys.modules and importlib.util.find_spec("jax") is not None:
        sys.modules["jax"] = None  # type: ignore[assignment]  # documented import blocker; typeshed types only modules
    if backend == "jax" and threads:
        # XLA's CPU client reads its thread settings once, from the environment, when it starts.
        flags = f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} intra_op_parallelism_threads={threads}"
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()
    startup.collect_less_often()
    with _stderr_silenced():
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")  # probes CUDA now, while the chatter is hidden
        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        import keras  # noqa: F401  (imports the backend now, while the chatter is hidden)
    tf.get_logger().setLevel("ERROR")  # retracing notes: each run builds a new model, by design
    startup.loaded()


def jax_installed() -> bool:
    """Whether JAX is installed, also in a process on TensorFlow, which keeps it from being imported (`load`)."""
    if "jax" in sys.modules and sys.modules["jax"] is None:  # installed, and kept out of this TensorFlow process (load)
        return True
    return importlib.util.find_spec("jax") is not None


@contextlib.contextmanager
def _stderr_silenced():
    """Sends file descriptor 2 (C++ logging included) to /dev/null, restoring it on the way out."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
