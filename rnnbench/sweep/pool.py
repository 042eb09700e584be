"""A sweep's worker processes on this machine, and the coordinator's progress display.

    rnnbench sweep experiments/sweep_tiny.yaml --workers 2     # starts two, follows them with one bar

Workers log to mlruns/logs/<sweep>-worker<N>.log, stop in order on SIGINT (recording their runs as
KILLED), and die with the coordinator even when it is killed with -9 (Linux).
"""

from __future__ import annotations

import ctypes
import dataclasses
import signal
import subprocess
import sys
import time
from pathlib import Path

from tqdm import tqdm

from rnnbench.sweep.state import Totals

POLL_SECONDS = 1.0
"""How often the coordinator and idle workers look at the studies (final runs appear when a study finishes)."""
STOP_GRACE_SECONDS = 60
"""How long stopped workers get to record their runs as KILLED before they are killed."""


@dataclasses.dataclass
class Workers:
    """A sweep's worker processes on this machine, each logging to its own file."""

    processes: list[subprocess.Popen]
    logs: list[Path]

    @classmethod
    def start(cls, command: list[str], environments: list[dict], log_stem: Path) -> Workers:
        """One process running `command` per environment, logging to `<log_stem>-worker<N>.log`."""
        log_stem.parent.mkdir(parents=True, exist_ok=True)
        processes, logs = [], []
        for index, environment in enumerate(environments):
            log = log_stem.with_name(f"{log_stem.name}-worker{index + 1}.log")
            with open(log, "a") as output:
                processes.append(
                    subprocess.Popen(
                        command,
                        stdout=output,
                        stderr=subprocess.STDOUT,
                        env=environment,
                        start_new_session=True,  # a Ctrl-C reaches only the coordinator, which stops them in order
                        preexec_fn=_die_with_parent,
                    )
                )
            logs.append(log)
        return cls(processes, logs)

    def alive(self) -> int:
        return sum(process.poll() is None for process in self.processes)

    def finish(self, poll_seconds: float) -> None:
        """At the sweep's end: workers notice it within a poll; any that do not are stopped."""
        deadline = time.monotonic() + 10 * poll_seconds
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.stop()

    def stop(self) -> None:
        """SIGINT for each worker (they record their runs as KILLED), then SIGKILL for stragglers."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in self.processes:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _die_with_parent() -> None:
    """Linux: the worker gets SIGKILL when the coordinator dies, even by kill -9 (a re-run resumes).

    Also restores SIGINT, which the coordinator uses to stop a worker in order: a coordinator started
    in the background (`cmd &`) has it ignored, and its children would inherit that.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Progress:
    """One bar for the whole sweep on a terminal; one line per change when the output is a log."""

    def __init__(self, total: int):
        self.interactive = sys.stdout.isatty()
        self.bar = tqdm(total=total, unit="run", dynamic_ncols=True, file=sys.stdout, disable=not self.interactive)
        self.started = time.monotonic()
        self.last = ""

    def show(self, totals: Totals) -> None:
        details = f"pruned {totals.pruned}, failed {totals.failed}, running {totals.running}"
        if self.interactive:
            self.bar.total = totals.planned
            self.bar.n = totals.finished
            self.bar.set_postfix_str(details, refresh=False)
            self.bar.refresh()
            return
        line = f"{totals.finished}/{totals.planned} done ({details})"
        if line != self.last:
            elapsed = time.monotonic() - self.started
            remaining = elapsed / totals.finished * (totals.planned - totals.finished) if totals.finished else None
            left = f", about {tqdm.format_interval(remaining)} left" if remaining is not None else ""
            print(f"[{tqdm.format_interval(elapsed)}] {line}{left}", flush=True)
            self.last = line

    def note(self, line: str) -> None:
        """A line of news above the bar (or between the log's lines)."""
        if self.interactive:
            self.bar.write(line)
        else:
            print(line, flush=True)

    def close(self) -> None:
        self.bar.close()
