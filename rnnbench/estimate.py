"""The dry run: a sweep's plan and what it will cost, without running anything; and whether a run fits in memory.

    rnnbench sweep experiments/sweep.yaml --dry-run

A run's cost is its compilation, its training steps, its validations and a fixed cost for
building, recording and testing. Speeds come from runs already in the tracking store with the
same cell, size, unroll and batch size (the median of their `speed/*` metrics); for the others,
from a model of the FLOP count (3 x 28 x 2 x gates x H x (28 + H) per training sample) fitted to
`make bench`'s grid on a 2-core AMD EPYC CPU (BENCHMARKS.md, 10 steps per execution): off by 20%
for the median shape of that grid, by up to 70% for the smallest.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

from rnnbench.config import ModelConfig, TrainConfig
from rnnbench.errors import ConfigError
from rnnbench.sweep_config import SEED_MODEL, SEED_TRAIN, Plan, SweepDefinition

GATES = {"simple_rnn": 1, "gru": 3, "lstm": 4}
STEP_OVERHEAD_S = 1.2e-3
"""Fitted: seconds per training step that do not grow with the model (2-core EPYC, TF 2.21; 2.6e-3
at one step per execution)."""
FLOP_RATE = 95e9
"""Fitted: float32 FLOP/s that a training step reaches on the same machine."""
COMPILE_S = {
    ("simple_rnn", False): 0.8, ("simple_rnn", True): 1.2, ("lstm", False): 0.9, ("lstm", True): 3.1,
    ("gru", False): 1.1, ("gru", True): 5.2,
}
"""Measured compile times (medians of the grid), by cell and unroll (the same machine)."""
FIXED_S = 2.0
"""Per run: building the model, the MLflow records, figures (and for final runs the test and the model)."""


@dataclasses.dataclass(frozen=True)
class Speed:
    train_samples_per_s: float
    compile_s: float
    eval_samples_per_s: float
    measured: bool


def modelled_speed(cell: str, hidden_units: int, unroll: bool, batch_size: int) -> Speed:
    flops = 3 * 28 * 2 * GATES[cell] * hidden_units * (28 + hidden_units)
    step_seconds = STEP_OVERHEAD_S + batch_size * flops / FLOP_RATE
    return Speed(batch_size / step_seconds, COMPILE_S[cell, unroll], 3 * batch_size / step_seconds, measured=False)


def memory_needed(model: ModelConfig, batch_size: int) -> tuple[int, int]:
    """A lower bound of the bytes one training step needs, and the model's parameter count.

    float32 weights, their gradients and Adam's two moments (4 per parameter); the activations kept
    for back-propagation through the 28 steps (the gates and the state, at least); the batch in
    training and the two prefetched. Keras needs more than this, never less.
    """
    gates, units, rows, pixels = GATES[model.cell], model.hidden_units, 28, 28
    parameters = gates * units * (pixels + units + 2) + 10 * (units + 1)
    activations = batch_size * rows * (gates + 2) * units
    inputs = 3 * batch_size * rows * pixels
    return 4 * (4 * parameters + activations + inputs), parameters


def available_memory() -> int | None:
    """Bytes of memory this process can still use: the machine's available memory, within a cgroup limit."""
    limits = []
    try:
        meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        limits.append(int(meminfo["MemAvailable"].split()[0]) * 1024)
    except (OSError, KeyError, ValueError):
        try:
            limits.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            pass
    try:
        limit, usage = (Path("/sys/fs/cgroup", name).read_text().strip() for name in ("memory.max", "memory.current"))
        if limit != "max":
            limits.append(int(limit) - int(usage))
    except (OSError, ValueError):
        pass
    return min(limits) if limits else None


def check_fits(model: ModelConfig, batch_size: int, train_images: int) -> None:
    """Refuses, before any run exists, a batch larger than the training split or a step that cannot fit in memory.

    Raises:
        ConfigError: naming the setting, the estimate and the memory available.
    """
    if batch_size > train_images:
        raise ConfigError(
            f"train.batch_size={batch_size} is more than the {train_images:,} training images: every batch would "
            f"repeat images; use at most {train_images}"
        )
    needed, parameters = memory_needed(model, batch_size)
    available = available_memory()
    if available is not None and needed > available:
        raise ConfigError(
            f"model.hidden_units={model.hidden_units} with train.batch_size={batch_size} needs at least {_bytes(needed)} "
            f"for a training step ({parameters:.3g} parameters with their gradients and Adam's moments, and the "
            f"batch's activations), but {_bytes(available)} of memory is available; lower model.hidden_units or train.batch_size"
        )


def check_sweep_fits(definition: SweepDefinition, sweep_plan: Plan, train_images: int) -> None:
    """`check_fits` for every model the sweep trains, its reference runs' included."""
    for study in sweep_plan.studies:
        model = ModelConfig(study.cell, study.hidden_units, definition.search.unroll)
        check_fits(model, definition.train.batch_size, train_images)
    if sweep_plan.reference_seeds:
        check_fits(SEED_MODEL, SEED_TRAIN.batch_size, train_images)


def _bytes(count: float) -> str:
    units = ("bytes", "KiB", "MiB", "GiB", "TiB")
    power = min(int(math.log(max(count, 1), 1024)), len(units) - 1)
    return f"{count / 1024 ** power:,.1f} {units[power]}"


def measured_speeds(batch_size: int) -> dict[tuple[str, int, bool], Speed]:
    """Median speeds of finished runs in the tracking store, by (cell, hidden units, unroll)."""
    import os

    import mlflow

    from rnnbench import tracking

    if not os.environ.get("MLFLOW_TRACKING_URI") and not tracking.DEFAULT_STORE.exists():
        return {}  # no store yet: nothing measured, and a dry run creates nothing
    tracking.open_store()
    runs = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"attributes.status = 'FINISHED' and params.`train.batch_size` = '{batch_size}'",
    )
    speed_columns = ["metrics.speed/train_samples_per_s", "metrics.speed/compile_s", "metrics.speed/eval_samples_per_s"]
    if runs.empty or not set(speed_columns) <= set(runs.columns):
        return {}
    keys = ["params.model.cell", "params.model.hidden_units", "params.model.unroll"]
    medians = runs.dropna(subset=speed_columns).groupby(keys)[speed_columns].median()
    return {
        (cell, int(units), unroll == "True"): Speed(*values, measured=True)
        for (cell, units, unroll), values in medians.iterrows()
    }


def run_seconds(speed: Speed, train: TrainConfig, valid_images: int) -> float:
    evaluations = train.steps // train.eval_every_steps
    return (
        FIXED_S
        + speed.compile_s
        + train.steps * train.batch_size / speed.train_samples_per_s
        + evaluations * valid_images / speed.eval_samples_per_s
    )


def describe(definition: SweepDefinition, sweep_plan: Plan, valid_images: int, workers: int) -> str:
    """The plan, study by study, with each stage's estimated time on one worker and on `workers`."""
    speeds = measured_speeds(definition.train.batch_size)
    search = definition.search
    lines = [
        f"sweep '{definition.sweep.name}' on {definition.data.source}: {definition.train.steps} steps of "
        f"{definition.train.batch_size}, validation every {definition.train.eval_every_steps} "
        f"({valid_images:,} images)",
        f"stage 1: {len(sweep_plan.studies)} studies x {search.trials} trials = {sweep_plan.trials} trials "
        f"(learning rate {search.learning_rate_min:g} to {search.learning_rate_max:g}, log-uniform; TPE seed "
        f"{search.sampler_seed}; {search.pruner} pruner; trials unroll={str(search.unroll).lower()})",
        f"stage 2: {len(sweep_plan.final_runs)} final runs = {len(sweep_plan.final_runs) // max(len(sweep_plan.studies), 1)} "
        f"per study ({len(definition.grid.unroll)} unroll settings x {definition.final.seeds} seeds), tested on the test split"
        + (f"; {len(sweep_plan.reference_seeds)} reference runs of the seed tutorial" if sweep_plan.reference_seeds else ""),
        "",
        f"{'study':<16}{'trial (each)':>14}{'final runs':>12}  speed source",
    ]
    search_total = final_total = 0.0
    for study in sweep_plan.studies:
        def speed_of(unroll: bool) -> Speed:
            key = (study.cell, study.hidden_units, unroll)
            return speeds.get(key) or modelled_speed(*key, definition.train.batch_size)

        trial = run_seconds(speed_of(search.unroll), definition.train, valid_images)
        finals = sum(run_seconds(speed_of(run.unroll), definition.train, valid_images) for run in sweep_plan.finals_of(study))
        search_total += trial * search.trials
        final_total += finals
        source = "measured in this store" if speed_of(search.unroll).measured else "FLOP model (~20%)"
        lines.append(f"{study.key:<16}{trial:>12.0f} s{finals:>10.0f} s  {source}")
    if sweep_plan.reference_seeds:
        key = (SEED_MODEL.cell, SEED_MODEL.hidden_units, SEED_MODEL.unroll)
        same_batch = SEED_TRAIN.batch_size == definition.train.batch_size
        seed_speeds = speeds if same_batch else measured_speeds(SEED_TRAIN.batch_size)
        speed = seed_speeds.get(key) or modelled_speed(*key, SEED_TRAIN.batch_size)
        seeds = len(sweep_plan.reference_seeds)
        reference = run_seconds(speed, SEED_TRAIN, valid_images) * seeds
        final_total += reference
        lines.append(f"{'reference':<16}{'':>14}{reference:>10.0f} s  the seed tutorial x {seeds} seeds")
    total = search_total + final_total
    lines += [
        "",
        f"estimate on one worker: stage 1 at most {search_total / 60:.1f} min (less with pruning), "
        f"stage 2 {final_total / 60:.1f} min, total at most {total / 60:.1f} min",
    ]
    if workers > 1:
        lines.append(f"with {workers} workers: at best {total / 60 / workers:.1f} min, if the cores allow it")
    lines.append("nothing was run (--dry-run)")
    return "\n".join(lines)
