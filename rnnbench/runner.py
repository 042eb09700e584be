"""The runner: one tracked run, from a resolved config to a complete MLflow record.

    rnnbench run experiments/seed_lstm.yaml      # the CLI calls run_experiment()

Effects live here (data loading, the tracking store, files); training itself is `train()`.
Whatever happens, the run is closed: FINISHED, FAILED (a diverged loss, a fault such as a full disk,
or an error, with a tag saying why) or KILLED (Ctrl-C or SIGTERM), and every evaluation logged before
the end stays recorded.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rnnbench import backend, cost, faults, names, plots, signals, tracking
from rnnbench.config import Config, load_config
from rnnbench.data import Dataset, load_dataset, load_test_split
from rnnbench.errors import UserError
from rnnbench.model import summary_text
from rnnbench.results import Evaluation, Score, TrainResult
from rnnbench.tasks import TASKS
from rnnbench.train import TrainingDiverged, evaluate, jit_compile, train


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    run_id: str
    result: TrainResult
    test: Score | None
    """None for a run without testing (a search trial)."""
    dataset: Dataset


class StopRun(Exception):
    """Raised by `on_evaluation` to end a run early on purpose (an Optuna pruner): recorded as KILLED."""

    def __init__(self, why: str, reason: str):
        super().__init__(reason)
        self.why = why


class RunFailed(Exception):
    """The run ended FAILED for a reason a user can act on: a diverged loss, a full disk (see `faults`)."""

    def __init__(self, run_id: str, message: str, why: str = "diverged"):
        super().__init__(message)
        self.run_id = run_id
        self.why = why
        """The run's `rnnbench.failure`: diverged (a result of its settings), or a fault of the machine."""


def run_experiment(
    config: Config,
    *,
    stage: str = "run",
    parent_run_id: str | None = None,
    run_name: str | None = None,
    tags: dict[str, str] | None = None,
    test: bool = True,
    dataset: Dataset | None = None,
    on_start: Callable[[str, Dataset], None] | None = None,
    on_evaluation: Callable[[Evaluation], None] | None = None,
    probe_start: bool = False,
) -> RunOutcome:
    """Loads the data, trains, tests and records one run in the tracking store.

    Args:
        config: the resolved configuration.
        stage: the `rnnbench.stage` tag (run, trial, final).
        parent_run_id: links the run under a parent run (a study) in MLflow.
        run_name: the run's name in MLflow; by default `tracking.run_name(config)`.
        tags: more tags for the run (a sweep's names for it).
        test: evaluate on the test split and log the model; False for search trials, which
            must not see the test split.
        dataset: the data of `config.data`, when the caller has it loaded already.
        on_start: called with the new run id and the dataset once the run exists.
        on_evaluation: called after each evaluation has been logged; raising stops training.
        probe_start: record the untrained model's loss and gradient in the result (`train.starting_point`).

    Raises:
        ConfigError: `train.backend` is not the backend this process already runs Keras on, or the
            model and batch cannot fit in this machine's memory (before any run is created).
        RunFailed: the loss diverged, or a fault (a full disk, memory) ended the run; it is recorded
            as FAILED with the reason, if the store can still be written.
        StopRun: re-raised from `on_evaluation` after the run is recorded as KILLED with its reason.
        KeyboardInterrupt: Ctrl-C or SIGTERM (`signals.Terminated`), re-raised after the run is recorded as KILLED.
            One that comes as a run that ended on its own is closed is left to the caller's next safe point
            (`signals.raise_if_received`) where the command line remembers it: the run returns or raises as it ended.
    """
    backend.load(config.train.backend)  # Keras already on another backend in this process: a clear error
    if dataset is None:
        dataset = load_dataset(config.data)  # before the run exists: a data error leaves no record
    cost.check_fits(config.model, config.train.batch_size, len(dataset.train), config.data.task)
    client = tracking.open_store()
    run_id = None
    try:
        with signals.deferred():  # a stop while the run is created is raised once its id is known, to close it
            run_id = tracking.start_run(client, config, stage, parent_run_id, tags, run_name)
    except KeyboardInterrupt as stop:
        if run_id is not None:
            _close_killed(client, run_id, stop)
        raise
    try:
        if on_start:
            on_start(run_id, dataset)
        tracking.log_dataset(client, run_id, dataset)

        def record(evaluation: Evaluation):
            tracking.log_evaluation(client, run_id, evaluation)
            if on_evaluation:
                on_evaluation(evaluation)

        result = train(config, dataset, on_evaluation=record, probe_start=probe_start)
        score = evaluate(result.model, dataset.test) if test else None
        _record_results(client, run_id, config, dataset, result, score)
    except StopRun as stop:
        tracking.end_run(client, run_id, "KILLED", failure=stop.why, reason=str(stop), leave_pending=True)
        raise
    except TrainingDiverged as error:
        reason = f"{error}; lower train.learning_rate (now {config.train.learning_rate:g})"
        tracking.end_run(client, run_id, "FAILED", failure="diverged", reason=reason, leave_pending=True)
        raise RunFailed(run_id, reason) from None
    except KeyboardInterrupt as stop:
        _close_killed(client, run_id, stop)
        raise
    except BaseException as error:
        fault = faults.explain(error)
        if fault is None:
            _close_failed(client, run_id, "error", f"{type(error).__name__}: {error}")
            raise
        closed = _close_failed(client, run_id, fault.kind, fault.message)
        kept = (
            ""
            if closed or fault.kind == "store_deleted"
            else "; the store could not be written either, so the run stays RUNNING (`rnnbench report` lists it)"
        )
        raise RunFailed(run_id, fault.message + kept, why=fault.kind) from None
    tracking.end_run(client, run_id, "FINISHED", leave_pending=True)  # a stop meanwhile: once the caller has it recorded
    return RunOutcome(run_id, result, score, dataset)


def _close_killed(client, run_id: str, stop: KeyboardInterrupt) -> None:
    tracking.end_run(client, run_id, "KILLED", failure="interrupted", reason=f"stopped by {signals.describe(stop)}")


def _close_failed(client, run_id: str, failure: str, reason: str) -> bool:
    """Records the run as FAILED; False when the store cannot take even that (a full disk, a server gone)."""
    try:
        tracking.end_run(client, run_id, "FAILED", failure=failure, reason=reason)
    except Exception:
        return False
    return True


def _record_results(client, run_id: str, config: Config, dataset: Dataset, result: TrainResult, test: Score | None):
    """The end-of-run record: test and speed metrics, figures, config, summary, and the model.

    Without a test score (a search trial), only the speed, the config and the learning curve.
    """
    speed = result.speed
    metrics = {
        names.TRAIN_SAMPLES_PER_S: speed.train_samples_per_second,
        names.COMPILE_S: speed.compile_seconds,
        names.EVAL_SAMPLES_PER_S: speed.eval_samples_per_second,
        names.WALL_S: speed.wall_seconds,
        names.PARAMETERS: result.model.count_params(),
    }
    if speed.peak_memory_bytes is not None:
        metrics[names.PEAK_MEMORY_MB] = speed.peak_memory_bytes / 2**20
    if test is not None:
        metrics.update({names.TEST_LOSS: test.loss, names.TEST_ACCURACY: test.accuracy})
        client.set_tag(run_id, names.TEST_SPLIT, dataset.test.digest())
    tracking.log_metrics(client, run_id, metrics, step=config.train.steps)
    title = tracking.run_name(config)
    with tempfile.TemporaryDirectory(prefix="rnnbench-") as temporary:
        folder = Path(temporary)
        (folder / "config.yaml").write_text(config.to_yaml())
        plots.learning_curves(result.evaluations, title, folder / "learning_curve.png")
        if test is not None:
            (folder / "model_summary.txt").write_text(summary_text(result.model))
            predictions = np.column_stack([dataset.test.labels, test.predictions])  # a few kB: paired comparisons
            np.savetxt(
                folder / names.PREDICTIONS_ARTIFACT, predictions, fmt="%d", delimiter=",", header="label,predicted", comments=""
            )
            plots.digit_grid(dataset.train, TASKS[config.data.task], folder / "digits.png")
            plots.confusion_matrix(
                dataset.test.labels,
                test.predictions,
                f"{title}: test accuracy {test.accuracy:.2%}",
                folder / "confusion_matrix.png",
            )
        client.log_artifacts(run_id, str(folder))
    if test is not None:
        tracking.log_model(client, run_id, result.model)


def evaluate_recorded(run, source: str) -> tuple[Score, int]:
    """The test score of the recorded `run`'s saved model (`records.recorded_run`) on `source`'s test split (made with
    the run's own split settings, so that mnist5k's held-out split is the one it was tested on), and the split's size.

    Raises:
        UserError: a run without a loadable model.
    """
    import mlflow.keras
    from mlflow.exceptions import MlflowException

    run_id = run.info.run_id
    # the run's own data and model settings (its task, its permutation, the model that reads them), and its compiler
    recorded = [
        f"{key}={value}"
        for key, value in run.data.params.items()
        if key.startswith(("data.", "model.")) or key == "train.xla_on_cpu"
    ]
    config = load_config(None, recorded + [f"data.source={source}"])
    split = load_test_split(config.data)
    try:
        model = mlflow.keras.load_model(f"runs:/{run_id}/{names.MODEL_ARTIFACT}")
    except (MlflowException, OSError) as error:
        raise UserError(
            f"run {run_id} ({run.info.status}) has no loadable model '{names.MODEL_ARTIFACT}': {str(error).splitlines()[0]}"
        ) from None
    if jit_compile(config) is True:  # tested with XLA, as it was trained: the same rounding, the same score
        model.jit_compile = True
    return evaluate(model, split), len(split)
