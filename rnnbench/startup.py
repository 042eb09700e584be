"""The garbage collector of an rnnbench process, set for one that imports TensorFlow, Keras and MLflow.

    python -c "import gc; from rnnbench import startup; startup.collect_less_often(); print(gc.get_threshold())"

Python's cyclic garbage collector looks for unreachable cycles after every 700 new container objects (its default
threshold). Importing TensorFlow, Keras and MLflow creates millions of such objects, nearly all of them alive until the
process ends, so at the default a large part of every start-up goes to collections that find nothing. rnnbench
collects after every `YOUNG_THRESHOLD` new objects instead, and once the libraries are in, `loaded()` moves everything
alive into the collector's permanent generation (`gc.freeze`), so that later full collections skip the libraries'
objects. Cycles are still collected: only less often, which costs at most a few megabytes of memory in between.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
"""New container objects between two collections of the youngest generation (Python's default: 700)."""


def collect_less_often() -> None:
    """Sets the youngest generation's threshold to YOUNG_THRESHOLD, keeping the older generations' own; called before
    the large imports (the command line's start, `backend.load`). Idempotent."""
    young, middle, oldest = gc.get_threshold()
    gc.set_threshold(max(YOUNG_THRESHOLD, young), middle, oldest)


def loaded() -> None:
    """Marks the objects alive now (the imported libraries) as permanent for the collector: later collections do not
    traverse them again. Called once the libraries are imported (`backend.load`)."""
    gc.freeze()
