"""The whole commands the baselines time, each in a fresh interpreter, and the size they run at.

    seconds, output = timed([sys.executable, "-m", "rnnbench", "run", str(ROOT / "experiments/smoke.yaml")], folder)

`SIZE` lives here, not in `rnnbench.bench.baselines`: that module runs as `__main__`, and a part imported from another
module must see the same sizes its `--quick` set.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The repository: its experiments/ folder holds the run and sweep files the benchmarks time."""
QUICK = {
    "run": ["train.steps=100", "train.eval_every_steps=50"],
    "plain": ["--steps", "100", "--eval-every", "50"],
    "sweep": ["grid.cells=[simple_rnn]", "grid.unroll=[false]", "search.trials=1", "train.steps=20", "train.eval_every_steps=10"],
    "grid": ["--seconds", "0.3", "--peak-size", "1024"],
}
"""--quick: every part at a size that checks the benchmark end to end in seconds (its figures mean nothing)."""
SIZE: dict[str, list[str]] = {"run": [], "plain": [], "sweep": [], "grid": ["--seconds", "4"]}
"""The overrides each part passes on: empty at full size, QUICK with --quick."""


def timed(command: list[str], folder: Path, env: dict | None = None) -> tuple[float, str]:
    """Wall seconds of a whole command (a fresh interpreter), and its standard output."""
    started = time.perf_counter()
    result = subprocess.run(command, cwd=folder, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode:
        raise SystemExit(f"rnnbench.bench.baselines: {' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return seconds, result.stdout
