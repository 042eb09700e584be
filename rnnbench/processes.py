"""Processes: who owns a run or a trial, whether that process still exists, and a sweep's local workers.

    rnnbench report      # names the runs still RUNNING whose process is gone (kill -9, a reboot)

Every MLflow run and every taken Optuna trial records its owner as `host:pid@started`. On the same
host a pid that no longer exists, or one reused by a process that started at another time, means
the owner is gone; on another host only a heartbeat can tell (`studies.heartbeat`).
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def this_process() -> str:
    """`host:pid@started` of this process (started: seconds since the epoch, where the system says),
    as recorded on the runs and trials it owns."""
    started = _start_time(os.getpid())
    return f"{socket.gethostname()}:{os.getpid()}" + (f"@{started:.0f}" if started is not None else "")


def host_of(owner: str) -> str:
    return owner.rpartition(":")[0]


def is_gone(owner: str) -> bool:
    """True when `owner` (as `this_process` wrote it) ran on this host and that process has exited,
    its pid now free or taken by a process that started at another time."""
    host, _, process = owner.rpartition(":")
    pid, _, started = process.partition("@")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's process: this one cannot tell
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # it exists, owned by another user
    now_started = _start_time(int(pid))
    return bool(started) and now_started is not None and abs(now_started - float(started)) > 2


def _start_time(pid: int) -> float | None:
    """Linux: when the process started (seconds since the epoch), from /proc; None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime"))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, StopIteration, IndexError, ValueError):
        return None


STOP_GRACE_SECONDS = 60
"""How long stopped workers get to record their runs as KILLED before they are killed."""


@dataclasses.dataclass
class Workers:
    """A sweep's worker processes on this machine, each logging to its own file."""

    processes: list[subprocess.Popen]
    logs: list[Path]

    @classmethod
    def start(cls, command: list[str], count: int, log_stem: Path, environment: dict) -> Workers:
        """`count` processes running `command`, logging to `<log_stem>-worker<N>.log`."""
        log_stem.parent.mkdir(parents=True, exist_ok=True)
        processes, logs = [], []
        for index in range(count):
            log = log_stem.with_name(f"{log_stem.name}-worker{index + 1}.log")
            with open(log, "a") as output:
                processes.append(
                    subprocess.Popen(
                        command, stdout=output, stderr=subprocess.STDOUT, env=environment,
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
