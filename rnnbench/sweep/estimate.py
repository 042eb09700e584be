"""The dry run: a sweep's plan and what it will cost, without running anything.

    rnnbench sweep experiments/sweep.yaml --dry-run

Each model's final runs train in the unroll setting `rnnbench.sweep.unroll` chooses, the other setting
is timed. A run's cost is its compilation, its training steps, its validations and a fixed cost for
building, recording and testing. Speeds come from runs already in the tracking store with the
same cell, size, unroll, batch size, task and XLA choice (the median of their `speed/*` metrics);
for the others, from the FLOP model of `rnnbench.cost`.
"""

from __future__ import annotations

import dataclasses

import mlflow

from rnnbench import cost, records, tracking
from rnnbench.config import SEED_MODEL, SEED_TRAIN, ModelConfig, TrainConfig, xla_on_cpu_for
from rnnbench.results import Speed
from rnnbench.sweep import unroll
from rnnbench.sweep.definition import Plan, Study, SweepDefinition

FIXED_S = 2.0
"""Per run: building the model, the MLflow records, figures (and for final runs the test and the model)."""


def check_sweep_fits(definition: SweepDefinition, sweep_plan: Plan, train_images: int) -> None:
    """`check_fits` for every model the sweep trains, its reference runs' included."""
    for study in sweep_plan.studies:
        model = ModelConfig(study.cell, study.hidden_units, definition.search.unroll)
        cost.check_fits(model, definition.train.batch_size, train_images, definition.data.task)
    if sweep_plan.reference_seeds:
        cost.check_fits(SEED_MODEL, SEED_TRAIN.batch_size, train_images, definition.data.task)


def measured_speeds(batch_size: int, task: str = "row") -> dict[tuple[str, int, bool, bool], Speed]:
    """Median speeds of finished runs of `task` in the tracking store, by (cell, hidden units, unroll, XLA on the
    CPU); runs recorded before `data.task` existed read rows, those before `train.xla_on_cpu` had no XLA."""
    if not tracking.store_exists():
        return {}  # no store yet: nothing measured, and a dry run creates nothing
    tracking.open_store()
    raw = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"attributes.status = 'FINISHED' and params.`train.batch_size` = '{batch_size}'",
    )
    if raw.empty:
        return {}
    speed_columns = ["train_samples_per_s", "compile_s", "eval_samples_per_s"]
    runs = records.tidy(raw).dropna(subset=speed_columns)
    medians = runs[runs.task == task].groupby(["cell", "hidden_units", "unroll", "xla"])[speed_columns].median()
    return {
        (cell, int(units), bool(unroll), bool(xla)): Speed(*values) for (cell, units, unroll, xla), values in medians.iterrows()
    }


def run_seconds(speed: Speed, train: TrainConfig, valid_images: int) -> float:
    evaluations = train.steps // train.eval_every_steps
    return (
        FIXED_S
        + speed.compile_seconds
        + train.steps * train.batch_size / speed.train_samples_per_second
        + evaluations * valid_images / speed.eval_samples_per_second
    )


def _final_stage(definition: SweepDefinition, sweep_plan: Plan) -> str:
    seeds = definition.final.seeds
    if sweep_plan.every_unroll or len(sweep_plan.unroll) == 1:
        return (
            f"{len(sweep_plan.final_runs)} final runs = {len(sweep_plan.unroll)} unroll setting(s) x {seeds} seeds per "
            "model, tested on the test split"
        )
    timing = sum(run.timing for run in sweep_plan.final_runs)
    return (
        f"{len(sweep_plan.final_runs) - timing} final runs = {seeds} seeds per model in its faster unroll setting "
        f"('trained' below), tested on the test split, and {timing} timing runs of the other setting "
        f"({definition.train.eval_every_steps} steps each: its speed, and the check that both settings agree; a model "
        "whose settings differ is trained in full in each)"
    )


def describe(definition: SweepDefinition, sweep_plan: Plan, valid_images: int, workers: int) -> str:
    """The plan, study by study, with each stage's estimated time on one worker and on `workers`."""
    speeds = measured_speeds(definition.train.batch_size, definition.data.task)
    search = definition.search
    lines = [
        f"sweep '{definition.sweep.name}' on {definition.data.source}: {definition.train.steps} steps of "
        f"{definition.train.batch_size}, validation every {definition.train.eval_every_steps} "
        f"({valid_images:,} images)",
        f"stage 1: {len(sweep_plan.studies)} studies x {search.trials} trials = {sweep_plan.trials} trials "
        f"(searching {'; '.join(dimension.describe() for dimension in definition.space)}; TPE seed "
        f"{search.sampler_seed}; {search.pruner} pruner; trials unroll={str(search.unroll).lower()})",
        f"stage 2: {_final_stage(definition, sweep_plan)}"
        + (f"; {len(sweep_plan.reference_seeds)} reference runs of the seed tutorial" if sweep_plan.reference_seeds else ""),
        "",
        f"{'study':<16}{'trial (each)':>14}{'final runs':>12}  {'trained':<10}speed source",
    ]
    timing_train = dataclasses.replace(definition.train, steps=definition.train.eval_every_steps)
    search_total = final_total = 0.0
    for study in sweep_plan.studies:

        def measured_key(unroll: bool, study: Study = study) -> tuple[str, int, bool, bool]:
            return study.cell, study.hidden_units, unroll, xla_on_cpu_for(definition.train.xla_on_cpu, unroll)

        def speed_of(unroll: bool, study: Study = study) -> Speed:
            modelled = cost.modelled_speed(
                study.cell, study.hidden_units, unroll, definition.train.batch_size, definition.data.task
            )
            return speeds.get(measured_key(unroll, study)) or modelled

        trial = run_seconds(speed_of(search.unroll), definition.train, valid_images)
        trained = unroll.trained_setting(definition, study, speeds, valid_images)
        finals = sum(
            run_seconds(speed_of(run.unroll), timing_train if run.timing else definition.train, valid_images)
            for run in sweep_plan.finals_of(study, trained)
        )
        search_total += trial * search.trials
        final_total += finals
        source = "measured in this store" if measured_key(search.unroll) in speeds else "FLOP model (~20%)"
        setting = "every" if sweep_plan.every_unroll else "unrolled" if trained else "looped"
        lines.append(f"{study.key:<16}{trial:>12.0f} s{finals:>10.0f} s  {setting:<10}{source}")
    if sweep_plan.reference_seeds:
        key = (SEED_MODEL.cell, SEED_MODEL.hidden_units, SEED_MODEL.unroll)
        same_batch = SEED_TRAIN.batch_size == definition.train.batch_size
        seed_speeds = speeds if same_batch else measured_speeds(SEED_TRAIN.batch_size, definition.data.task)
        measured = seed_speeds.get((*key, xla_on_cpu_for(SEED_TRAIN.xla_on_cpu, SEED_MODEL.unroll)))
        speed = measured or cost.modelled_speed(*key, SEED_TRAIN.batch_size, definition.data.task)
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
