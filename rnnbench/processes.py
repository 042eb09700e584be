"""Processes: who owns a run or a trial, and whether that process still exists.

    rnnbench report      # names the runs still RUNNING whose process is gone (kill -9, a reboot)

Every MLflow run and every taken Optuna trial records its owner as `host:pid@started`. On the same
host a pid that no longer exists, or one reused by a process that started at another time, means
the owner is gone; on another host only a heartbeat can tell (`studies.heartbeat`).
"""

from __future__ import annotations

import os
import socket
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
