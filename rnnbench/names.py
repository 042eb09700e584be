"""Metric and tag names, written down once: the MLflow UI and the report rely on them."""

TRAIN_LOSS = "train/loss"
TRAIN_ACCURACY = "train/accuracy"
VAL_LOSS = "val/loss"
VAL_ACCURACY = "val/accuracy"
TEST_LOSS = "test/loss"
TEST_ACCURACY = "test/accuracy"

TRAIN_SAMPLES_PER_S = "speed/train_samples_per_s"
COMPILE_S = "speed/compile_s"
EVAL_SAMPLES_PER_S = "speed/eval_samples_per_s"
WALL_S = "speed/wall_s"
PEAK_MEMORY_MB = "speed/peak_memory_mb"
"""The most memory training held: the GPU's on a GPU, else the process's resident memory (the runtime included)."""
PARAMETERS = "model/parameters"

STAGE = "rnnbench.stage"
FAILURE = "rnnbench.failure"
"""On a run and its Optuna trial, why it did not finish: `diverged` is a result (the learning rate is too
high), `pruned` a decision of the pruner; anything else on a sweep's run is a lost run, which fails the sweep
and is retried when it is re-run."""
RETRIED_FAILURES = ("worker_died", "interrupted")
"""`rnnbench.failure` values of sweep runs whose trial Optuna re-enqueued: the retry is the planned run."""
RETRIED = "rnnbench.retried"
"""On a lost run ("true") whose trial a re-run of the sweep re-enqueued: the retry is the planned run."""
FAILURE_REASON = "rnnbench.failure_reason"
GIT_COMMIT = "mlflow.source.git.commit"
GIT_DIRTY = "rnnbench.git_dirty"
DATA_SPLITS = "rnnbench.data_splits"
TENSORFLOW_VERSION = "rnnbench.tensorflow_version"
KERAS_VERSION = "rnnbench.keras_version"
JAX_VERSION = "rnnbench.jax_version"
"""Only on runs with train.backend=jax."""
PYTHON_VERSION = "rnnbench.python_version"
CPU = "rnnbench.cpu"
PROCESS = "rnnbench.process"
"""host:pid of the process recording the run: a RUNNING run whose process is gone will never end."""
GPU = "rnnbench.gpu"

PERMUTATION = "rnnbench.permutation"
"""On runs of a permuted task: a digest of the pixel order (data.permutation_seed draws it; equal digests, equal order)."""

PREDICTIONS_ARTIFACT = "test_predictions.csv"
"""Final and reference runs: each test image's label and the predicted class, in the test split's order."""
TEST_SPLIT = "rnnbench.test_split"
"""The test split's content digest: runs are compared image by image only on the same split."""

MODEL_ARTIFACT = "model"
"""The name the trained Keras model is logged under: `runs:/<run id>/model`."""

SWEEP = "rnnbench.sweep"
STUDY = "rnnbench.study"
"""On a study's parent run and its trial runs: cell-h<units>, e.g. lstm-h64."""
VARIANT = "rnnbench.variant"
"""On final runs: cell-h<units>-unrolled|looped, the unit of comparison."""
TRIAL_NUMBER = "rnnbench.trial_number"
TRIAL_STATE = "rnnbench.trial_state"
"""The Optuna state a trial run ended in: COMPLETE, PRUNED or FAIL."""

TRAINED_UNROLL = "rnnbench.trained_unroll"
"""On a study's parent run ("true"/"false"), and as an Optuna attribute of its study: the unroll setting its model is
trained in (the faster one; rnnbench.sweep.unroll)."""
UNROLL_CHECK = "rnnbench.unroll_check"
"""On a study's parent run and its timing runs: agree, differ or unchecked (rnnbench.sweep.unroll)."""
UNROLL_DIFFERENCE = "study/unroll_difference"
"""On a study's parent run: the relative difference of the two settings' untrained loss and gradient (the check)."""

BEST_TRIAL = "rnnbench.best_trial"
"""On a study's parent run: the Optuna number of its best trial."""
BEST_VALUE_PREFIX = "study/best/"
"""On a study's parent run: the best trial's value of each searched key, e.g. study/best/train.learning_rate."""
OLD_BEST_LEARNING_RATE = "study/best_learning_rate"
"""What sweeps before the `space:` section recorded for study/best/train.learning_rate (read, not written)."""
BEST_VAL_ACCURACY = "study/best_val_accuracy"
TRIALS_COMPLETE = "study/trials_complete"
TRIALS_PRUNED = "study/trials_pruned"
TRIALS_FAILED = "study/trials_failed"
RUNS_LOST = "sweep/runs_lost"
"""On a sweep's run that ended FAILED: how many planned runs failed for another reason than divergence."""


# Optuna study and trial attributes: the sweep's work queue (rnnbench.sweep.studies)
STUDY_DEFINITION = "rnnbench.definition"
"""Study attribute: the resolved sweep definition, so that workers and re-runs use the same one."""
MLFLOW_RUN = "mlflow_run_id"
"""Trial and study attribute: the MLflow run recording it (the study's parent run)."""
TRIAL_WORKER = "rnnbench.worker"
"""Trial attribute: host:pid of the process running it, to tell a dead worker from a slow one."""
TRIAL_PLANNED = "rnnbench.planned"
"""Trial attribute of every trial the sweep enqueues (retries inherit it). Optuna's ask() creates a
new trial when the queue emptied between a worker's look and its ask; such a trial lacks it, is
marked UNPLANNED and failed at once, and counts nowhere."""
TRIAL_UNPLANNED = "rnnbench.unplanned"
TRIAL_HEARTBEAT = "rnnbench.heartbeat"
"""Trial attribute: when its worker last said it is alive (seconds since the epoch)."""
STARTING_POINT = "rnnbench.starting_point"
"""Trial attribute of seed-0 final and timing runs: the untrained model's loss and gradient (the unroll check)."""
COORDINATOR = "rnnbench.coordinator"
"""Attribute of a sweep's final study: host:pid@started of the coordinator following it ("" once it has stopped)."""
COORDINATOR_HEARTBEAT = "rnnbench.coordinator_heartbeat"
"""Attribute of a sweep's final study: when its coordinator last said it is alive (seconds since the epoch)."""
SLURM_JOBS = "rnnbench.slurm_jobs"
"""Attribute of a sweep's final study: the job ids of the Slurm arrays it was submitted as, oldest first."""
SLURM_JOB = "rnnbench.slurm_job"
"""Tag of a sweep's and its studies' MLflow runs: the Slurm job array they were last submitted as."""
TRIAL_SAMPLES_PER_SECOND = "samples_per_second"
"""Trial attribute of a finished run: its steady training speed (shown by optuna-dashboard)."""


def best_value(key: str) -> str:
    """The study metric holding the best trial's value of the searched `key`."""
    return BEST_VALUE_PREFIX + key
