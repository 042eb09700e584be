"""Faults of the machine and of the services a run writes to, each told in one line with its fix.

    rnnbench run experiments/seed_lstm.yaml     # a full disk mid-run: the run FAILED, one line, exit 1

A full disk, a read-only store, memory running out and a tracking server that stops answering all
surface as some library's exception, often wrapped by another (MLflow wraps SQLAlchemy, which wraps
sqlite3). `explain` recognises them anywhere in the chain; the runner records the run as FAILED with
`Fault.kind` as its `rnnbench.failure`, and the command line prints `Fault.message` instead of a
traceback. Errors it does not recognise keep their traceback: they are bugs to report.
"""

from __future__ import annotations

import dataclasses
import errno

from rnnbench import credentials


@dataclasses.dataclass(frozen=True)
class Fault:
    kind: str
    """The run's `rnnbench.failure` tag: disk_full, read_only, out_of_memory or store_unreachable."""
    message: str
    """One line: what happened, where, and what to do (a password in a URL masked)."""

    def __post_init__(self):
        object.__setattr__(self, "message", credentials.mask(self.message))


def explain(error: BaseException) -> Fault | None:
    """The fault behind `error` (or any exception it was raised from), or None if it is not one of them."""
    from rnnbench import tracking

    chain = list(_chain(error))
    text = " | ".join(f"{type(link).__name__}: {link}" for link in chain)
    for link in chain:
        if isinstance(link, OSError) and link.errno in (errno.ENOSPC, errno.EDQUOT):
            return Fault(
                "disk_full",
                f"no space left on the device holding {_where(link, tracking)}; free some space "
                "(df -h shows how much is left) and run again",
            )
        if isinstance(link, OSError) and link.errno == errno.EROFS:
            return Fault(
                "read_only",
                f"{_where(link, tracking)} is on a read-only file system; make it writable, or set "
                "MLFLOW_TRACKING_URI (and TMPDIR) to a place you can write",
            )
        if isinstance(link, MemoryError) or type(link).__name__ == "ResourceExhaustedError":
            return Fault("out_of_memory", "out of memory while training; lower train.batch_size or model.hidden_units")
    if "database or disk is full" in text or "No space left on device" in text:
        return Fault(
            "disk_full",
            f"no space left on the device holding the tracking store {tracking.shown_uri()}; "
            "free some space (df -h shows how much is left) and run again",
        )
    deleted = _deleted_store(tracking.tracking_uri())
    missing = any(isinstance(link, FileNotFoundError) for link in chain)
    if deleted and (missing or "readonly database" in text or "no such table" in text or "unable to open database" in text):
        return Fault(
            "store_deleted",
            f"the tracking store {deleted} was deleted while in use; the runs recorded in it are "
            "gone with it: restore it from a backup, or run again to start a new store there",
        )
    if "readonly database" in text or "Read-only file system" in text:
        return Fault(
            "read_only",
            f"the tracking store {tracking.shown_uri()} is read-only; make it writable, or set "
            "MLFLOW_TRACKING_URI to a store you can write",
        )
    if "RESOURCE_EXHAUSTED" in text or "bad_alloc" in text:
        return Fault("out_of_memory", "out of memory while training; lower train.batch_size or model.hidden_units")
    if tracking.is_server(tracking.tracking_uri()) and any(_is_connection_error(link) for link in chain):
        return Fault(
            "store_unreachable",
            f"the MLflow tracking server {tracking.shown_uri()} stopped answering "
            f"({_first_line(chain[-1])}); check that it runs, then run again",
        )
    return None


def _deleted_store(uri: str) -> str | None:
    """The local SQLite store's path when its file no longer exists (SQLite then calls it a read-only database)."""
    from rnnbench.tracking import sqlite_path

    path = sqlite_path(uri)
    return None if path is None or path.exists() else str(path)


def _chain(error: BaseException | None):
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _where(error: OSError, tracking) -> str:
    """The file that could not be written: a copy's destination (`filename2`, where its source is `filename`)."""
    if error.filename2 or error.filename:
        return str(error.filename2 or error.filename)
    return f"the tracking store {tracking.shown_uri()} or the temporary folder"


def _is_connection_error(error: BaseException) -> bool:
    import requests

    return isinstance(error, (requests.ConnectionError, requests.Timeout)) or "Max retries exceeded" in str(error)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:200]
