"""Unroll is a speed setting: which setting trains each model in full, and the check that the settings agree.

    rnnbench sweep experiments/sweep.yaml --dry-run      # shows the setting each model trains in, and its timing runs

`model.unroll` turns the recurrent loop into straight-line code: speed and memory change, the function
computed does not. So the final stage trains each model (cell, hidden size) with each seed once, in the
`grid.unroll` setting that the measured speeds of the tracking store say is faster (where both are
measured; else the cost model's estimate), and gives each other setting one timing run (stage `timing`)
of `train.eval_every_steps` steps: its speed, compile time and peak memory.

The check: the trained setting's seed-0 run and the other setting's run from seed 0 (its timing run)
start from the same weights, so before training both models must give the same loss and the same
gradient (the direction of the first training step) on the first validation images, to
RELATIVE_TOLERANCE (`rnnbench.train.starting_point`: in inference mode and eagerly, so deterministic
whatever the setting, its compiler or dropout). Not the losses later on: training is chaotic, and the
float rounding that differs between the settings (another order of operations, XLA or not) grows with
every step until, at a high learning rate and within tens of steps, it moves the loss as much as another
function would. Where the two do not agree (a cell whose unrolled path computes something else, a backend
that rounds differently), the settings are different models: the sweep says so in one line and trains
that model in full in every setting, and the report ranks them apart. Where the check cannot be made
(one of the two runs diverged), nothing is assumed either: it trains every setting in full.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
from optuna.trial import FrozenTrial, TrialState

from rnnbench import names
from rnnbench.results import Speed
from rnnbench.sweep.definition import Plan, Study, SweepDefinition

RELATIVE_TOLERANCE = 1e-4
"""How far apart (relative) the two settings' untrained loss and gradient may be: far above float rounding, far below
what a different function gives (measured: the docs' results page; the tests build both cases)."""

AGREE, DIFFER, UNCHECKED, PENDING = "agree", "differ", "unchecked", "pending"
"""Verdicts of the check: the same function; different functions; not decidable (a run diverged); not yet decided."""


@dataclasses.dataclass(frozen=True)
class Check:
    """The check of one model: its trained setting's seed-0 run against the other setting's first run."""

    verdict: str
    trained: bool
    other: bool | None
    """The setting checked against `trained` (None: the grid has one setting, nothing to check)."""
    difference: float | None = None
    """`difference` of the two runs' starting points: their untrained loss's and gradient's relative difference."""

    @property
    def trains_every_setting(self) -> bool:
        """Whether the model must be trained in full in every setting: it differs, or could not be checked."""
        return self.verdict in (DIFFER, UNCHECKED)

    def describe(self, study: Study) -> str:
        """The line the sweep says for a model it trains in full in every setting (`trains_every_setting`)."""
        settings = f"{_name(self.trained)} and {_name(self.other)}"
        if self.verdict == DIFFER:
            return (
                f"{study.key}: {settings} compute different functions (untrained loss and gradient {self.difference:.1e} "
                f"apart relative, more than {RELATIVE_TOLERANCE:g}); training it in full in each setting"
            )
        return f"{study.key}: {settings} could not be checked (a run diverged); training it in full in each setting"


def trained_setting(definition: SweepDefinition, study: Study, speeds: dict, valid_images: int) -> bool:
    """The unroll setting in which the study's model trains fastest: a whole final run (compilation, steps, validation),
    from the measured speeds where every setting is measured (see `estimate.measured_speeds`), else from the cost model."""
    from rnnbench import cost
    from rnnbench.config import xla_on_cpu_for
    from rnnbench.sweep.estimate import run_seconds

    settings = definition.grid.unroll
    keys = {
        unroll: (study.cell, study.hidden_units, unroll, xla_on_cpu_for(definition.train.xla_on_cpu, unroll))
        for unroll in settings
    }
    measured = all(key in speeds for key in keys.values())

    def seconds(unroll: bool) -> float:
        speed: Speed = (
            speeds[keys[unroll]]
            if measured
            else cost.modelled_speed(study.cell, study.hidden_units, unroll, definition.train.batch_size, definition.data.task)
        )
        return run_seconds(speed, definition.train, valid_images)

    return min(settings, key=seconds)


def check(sweep_plan: Plan, study: Study, trained: bool, final_trials: Sequence[FrozenTrial]) -> Check:
    """The verdict for `study`'s model from the final study's trials (as Optuna returns them; retries handled by the
    caller's `live_trials`): its seed-0 run in the `trained` setting against the other setting's first run."""
    others = [unroll for unroll in sweep_plan.unroll if unroll != trained]
    if not others:
        return Check(AGREE, trained, None)
    other = others[0]
    pair = [
        _seed_zero(final_trials, study, unroll, timing=unroll != trained and not sweep_plan.every_unroll)
        for unroll in (trained, other)
    ]
    found = [trial for trial in pair if trial is not None]
    if len(found) < len(pair) or any(trial.state in (TrialState.WAITING, TrialState.RUNNING) for trial in found):
        return Check(PENDING, trained, other)
    if any(trial.state == TrialState.FAIL for trial in found):
        diverged = all(trial.state != TrialState.FAIL or trial.user_attrs.get(names.FAILURE) == "diverged" for trial in found)
        return Check(UNCHECKED if diverged else PENDING, trained, other)  # a lost run is retried by a re-run
    first, second = (trial.user_attrs.get(names.STARTING_POINT) for trial in found)
    if first is None or second is None:
        return Check(UNCHECKED, trained, other)
    apart = difference(first, second)
    return Check(AGREE if apart <= RELATIVE_TOLERANCE else DIFFER, trained, other, apart)


def difference(first: dict, second: dict) -> float:
    """The larger relative difference of two `train.starting_point` records: of their losses, and of their gradients
    (the distance of the sketches over the larger sketch's norm); infinite where a value is not finite."""
    sketches = [np.asarray(point["gradient_sketch"], dtype=float) for point in (first, second)]
    if not all(np.isfinite(sketch).all() for sketch in sketches):
        return math.inf
    scale = max(float(np.linalg.norm(sketches[0])), float(np.linalg.norm(sketches[1])), 1e-30)
    return max(_relative(first["loss"], second["loss"]), float(np.linalg.norm(sketches[0] - sketches[1]) / scale))


def _seed_zero(trials: Sequence[FrozenTrial], study: Study, unroll: bool, timing: bool) -> FrozenTrial | None:
    for trial in trials:
        params = trial.params
        if (params.get("cell"), params.get("hidden_units"), params.get("unroll"), params.get("seed")) == (
            study.cell,
            study.hidden_units,
            unroll,
            0,
        ) and bool(params.get("timing", False)) == timing:
            return trial
    return None


def _relative(first: float, second: float) -> float:
    if not (math.isfinite(first) and math.isfinite(second)):
        return math.inf
    return abs(first - second) / max(abs(first), abs(second), 1e-12)


def _name(unroll: bool | None) -> str:
    return "unrolled" if unroll else "looped"
