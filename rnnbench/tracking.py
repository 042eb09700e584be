"""Tracking: the one place that opens the MLflow store and writes runs into it.

    MLFLOW_TRACKING_URI=http://127.0.0.1:5000 rnnbench run experiments/seed_lstm.yaml

The default store is `./mlruns`: runs in the SQLite database `mlruns/mlflow.db`, artifacts in
`mlruns/<experiment id>/`. `MLFLOW_TRACKING_URI` points it anywhere else, a server included.
Every call names its run explicitly (no thread-local "active run"), so parallel runs in one
process cannot cross their records.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata
import os
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
from mlflow import MlflowClient
from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException

from rnnbench import credentials, names, probes, provenance, signals, tasks
from rnnbench.config import Config
from rnnbench.data import Dataset
from rnnbench.errors import UserError
from rnnbench.tasks import TASKS

if TYPE_CHECKING:
    from rnnbench.results import Evaluation

DEFAULT_STORE = Path("mlruns")
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "4",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
}
"""MLflow retries a failed request for about 4 minutes by default; with these a server lost mid-run fails
the run in under a minute (15 s of back-off when it refuses connections). Set the variables to change them."""
_probed: set[str] = set()


def tracking_uri() -> str:
    """`MLFLOW_TRACKING_URI` if set, else the SQLite database under ./mlruns."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{DEFAULT_STORE.resolve() / 'mlflow.db'}"


def shown_uri() -> str:
    """The tracking URI as messages and pages show it: its password masked."""
    return credentials.mask(tracking_uri())


def store_exists() -> bool:
    """Whether there is a store to read: one named by MLFLOW_TRACKING_URI, or ./mlruns already created."""
    return bool(os.environ.get("MLFLOW_TRACKING_URI")) or DEFAULT_STORE.exists()


def is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def open_store(write: bool = True) -> MlflowClient:
    """A client of the tracking store, creating the default local store on first use.

    Args:
        write: refuse a local store that cannot be written (reading one, as the report does, is fine).

    Raises:
        UserError: the tracking server does not answer within probes.PROBE_SECONDS (probed once per
            process), or (with `write`) the local store is read-only.
    """
    uri = tracking_uri()
    if is_server(uri) and uri not in _probed:
        for key, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(key, value)
        probes.probe_server(uri)
        _probed.add(uri)
    elif probes.is_database(uri) and uri not in _probed:
        os.environ.setdefault("PGCONNECT_TIMEOUT", str(probes.PROBE_SECONDS))  # libpq: MLflow's own connections fail in time too
        probes.probe_database(uri, "the MLflow tracking store", "or unset MLFLOW_TRACKING_URI to record in ./mlruns")
        _probed.add(uri)
    read_only = read_only_reason()  # also creates a missing local store's folder
    if write and read_only:
        raise UserError(
            f"{read_only}; make it writable, or set MLFLOW_TRACKING_URI to a store you can write "
            "(e.g. MLFLOW_TRACKING_URI=sqlite:////tmp/mlruns/mlflow.db)"
        )
    mlflow.set_tracking_uri(uri)  # mlflow's model logging and loading read the global URI
    return client_of(uri)


def make_local_store() -> None:
    """Makes the local SQLite store's folder and tables as a sweep would, for a program about to open it beside
    rnnbench's (`make ui`); nothing for a tracking server or a database server."""
    uri = tracking_uri()
    if sqlite_path(uri) is not None and read_only_reason() is None:
        client_of(uri)


def client_of(uri: str) -> MlflowClient:
    """A client of the store at `uri`; a new SQLite store's tables are made now (a full disk fails here, before any
    other file), one process at a time: MLflow makes them without a lock, and two processes making them at once
    leave the database half-migrated, unopenable for good (a sweep started with `make ui`, or with a worker in another shell)."""
    if not uri.startswith("sqlite:") or uri in _probed:
        return MlflowClient(uri)
    with sqlite_lock(uri, "create"):
        client = MlflowClient(uri)
        client.search_experiments(max_results=1)
    _probed.add(uri)
    return client


@contextlib.contextmanager
def sqlite_lock(url: str | None, purpose: str):
    """Inside: this process holds `<database>.<purpose>.lock` beside the SQLite database of `url`, so rnnbench's
    processes on this machine queue there. No lock for other URLs, nor where the lock file cannot be made (a
    read-only or full folder, whose database fails on its own, in one line). A process that dies releases it."""
    database = sqlite_path(url)
    with contextlib.ExitStack() as held:
        with contextlib.suppress(OSError):
            if database:
                lock = held.enter_context(open(f"{database}.{purpose}.lock", "a"))
                fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


def sqlite_path(uri: str | None) -> Path | None:
    """The database file of a `sqlite:///PATH` URL (a tracking store or an Optuna storage); None for other URLs."""
    return Path(uri[len("sqlite:///") :]) if uri and uri.startswith("sqlite:///") else None


def read_only_reason() -> str | None:
    """Why the local SQLite store cannot be written (creating its folder if missing), or None if it can."""
    path = sqlite_path(tracking_uri())
    if path is None:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return f"the MLflow store's folder {path.parent} cannot be created ({error.strerror})"
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return f"the MLflow store {path} is read-only"
    return None


EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
"""MLflow 3's tag for experiments of model training (not GenAI): what the UI uses to choose its pages."""


def experiment_id(client: MlflowClient, name: str) -> str:
    """The experiment's id, creating it (as a model-training experiment) when it does not exist."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return client.create_experiment(name, tags=EXPERIMENT_KIND)
    if experiment.lifecycle_stage == "deleted":
        raise UserError(f"MLflow experiment '{name}' is deleted; restore it in the UI or set tracking.experiment=OTHER")
    for key, value in EXPERIMENT_KIND.items():
        if key not in experiment.tags:  # created before rnnbench tagged its experiments, or by someone else
            try:
                client.set_experiment_tag(experiment.experiment_id, key, value)
            except MlflowException:  # a sweep's workers start together: another one may have just written it
                if client.get_experiment(experiment.experiment_id).tags.get(key) != value:
                    raise
    return experiment.experiment_id


def run_name(config: Config) -> str:
    """e.g. lstm-h128-unrolled-lr3e-03-s0: cell, size, unroll, learning rate, seed."""
    train = config.train
    return f"{config.model.variant}-lr{train.learning_rate:.0e}-s{train.seed}"


def start_run(
    client: MlflowClient,
    config: Config,
    stage: str,
    parent_run_id: str | None = None,
    tags: dict[str, str] | None = None,
    name: str | None = None,
) -> str:
    """Creates the run with every config key as a param and the provenance tags; returns its id."""
    tags = {names.STAGE: stage, **provenance.tags(), names.GPU: provenance.gpus(config.train.backend), **(tags or {})}
    if config.train.backend == "jax":
        tags[names.JAX_VERSION] = importlib.metadata.version("jax")
    if TASKS[config.data.task].permuted:
        tags[names.PERMUTATION] = tasks.permutation_digest(config.data.permutation_seed)
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    run = client.create_run(experiment_id(client, config.tracking.experiment), run_name=name or run_name(config), tags=tags)
    params = [Param(key, str(value)) for key, value in config.flat().items()]
    client.log_batch(run.info.run_id, params=params)
    return run.info.run_id


def log_dataset(client: MlflowClient, run_id: str, dataset: Dataset) -> None:
    """Records each split through MLflow's dataset tracking: name, source, size, its content digest."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.numpy_dataset import from_numpy

    with warnings.catch_warnings():  # MLflow registers its local-file source twice and warns about it
        warnings.simplefilter("ignore", UserWarning)
        source = resolve_dataset_source(dataset.location)
    inputs = []
    for context, split in (("training", dataset.train), ("validation", dataset.valid), ("test", dataset.test)):
        record = from_numpy(split.images, targets=split.labels, source=source, name=dataset.name, digest=split.digest())
        entity = mlflow.entities.Dataset(**record.to_dict())  # an mlflow.data dataset as the entity runs log
        inputs.append(DatasetInput(entity, tags=[InputTag("mlflow.data.context", context)]))
    try:
        client.log_inputs(run_id, datasets=inputs)
    except MlflowException:
        # Two workers logging the same split at once both try to insert its dataset row, and
        # MLflow's SQL store lets the second fail (UNIQUE constraint). The row exists now: link it.
        client.log_inputs(run_id, datasets=inputs)
    sizes = " ".join(f"{split}={count}" for split, count in dataset.sizes().items())
    client.set_tag(run_id, names.DATA_SPLITS, sizes)


def log_evaluation(client: MlflowClient, run_id: str, evaluation: Evaluation) -> None:
    """One batched write per evaluation: the window's train metrics and the validation metrics."""
    log_metrics(
        client,
        run_id,
        {
            names.TRAIN_LOSS: evaluation.train_loss,
            names.TRAIN_ACCURACY: evaluation.train_accuracy,
            names.VAL_LOSS: evaluation.val_loss,
            names.VAL_ACCURACY: evaluation.val_accuracy,
        },
        step=evaluation.step,
    )


def log_metrics(client: MlflowClient, run_id: str, metrics: Mapping[str, float], step: int) -> None:
    timestamp = int(time.time() * 1000)
    batch = [Metric(key, float(value), timestamp, step) for key, value in metrics.items()]
    client.log_batch(run_id, metrics=batch)


def log_model(client: MlflowClient, run_id: str, model) -> None:
    """Logs the Keras model as the MLflow model `model`: `mlflow.keras.load_model("runs:/<id>/model")`."""
    import keras
    import numpy as np
    import tensorflow as tf
    from mlflow.models import Model, ModelSignature
    from mlflow.types import Schema, TensorSpec

    run = client.get_run(run_id)
    # Created here with the run's experiment: left to itself, MLflow files it under the default experiment.
    logged_model = client.create_logged_model(
        run.info.experiment_id, name=names.MODEL_ARTIFACT, source_run_id=run_id, params=run.data.params
    )
    Model.log(
        artifact_path=None,
        name=names.MODEL_ARTIFACT,
        flavor=mlflow.keras,
        model=model,
        run_id=run_id,
        model_id=logged_model.model_id,
        # Written from the model's own shapes: inferring it would run (and compile) a prediction.
        signature=ModelSignature(
            inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *model.input_shape[1:]))]),
            outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *model.output_shape[1:]))]),
        ),
        # Named here so that MLflow does not spend seconds inferring them in a subprocess.
        pip_requirements=[
            f"tensorflow=={tf.__version__}",
            f"keras=={keras.__version__}",
            *([f"jax=={importlib.metadata.version('jax')}"] if keras.backend.backend() == "jax" else []),
        ],
    )


def end_run(
    client: MlflowClient,
    run_id: str,
    status: str,
    failure: str | None = None,
    reason: str | None = None,
    leave_pending: bool = False,
):
    """Closes the run as FINISHED, FAILED or KILLED, saying why when it did not finish.

    A stop signal that arrives meanwhile is raised once the run is closed, so that no run is left RUNNING with the
    reason it ended already written (a sweep stopped just as a trial was pruned); with `leave_pending`, later
    (see `signals.deferred`).
    """
    with signals.deferred(raise_earlier=False, leave_pending=leave_pending):
        if failure:
            tags = [RunTag(names.FAILURE, failure), RunTag(names.FAILURE_REASON, credentials.mask(reason or failure))]
            client.log_batch(run_id, tags=tags)
        client.set_terminated(run_id, status=RunStatus.to_string(getattr(RunStatus, status)))


def start_parent_run(
    client: MlflowClient, experiment: str, name: str, stage: str, params: dict, tags: dict, parent_run_id: str | None = None
) -> str:
    """A run that groups others (a sweep, a study): the children name it in `mlflow.parentRunId`."""
    tags = {names.STAGE: stage, **provenance.tags(), **tags}
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    run = client.create_run(experiment_id(client, experiment), run_name=name, tags=tags)
    client.log_batch(run.info.run_id, params=[Param(key, str(value)) for key, value in params.items()])
    return run.info.run_id
