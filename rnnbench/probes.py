"""Probes: whether a tracking server or a database server answers, found out in bounded time.

    probe_database("postgresql://me@db/optuna", "the Optuna storage", "or give --storage a journal file path")

MLflow, SQLAlchemy and the database drivers wait minutes, or forever, on a server that takes the connection and
never answers. These connect once, for at most PROBE_SECONDS, before any work, and raise a `UserError` of one line
that names the server and the fix.
"""

from __future__ import annotations

import time

from rnnbench.errors import UserError

PROBE_SECONDS = 15
"""How long a tracking server gets to answer before a command gives up on it, in one line."""


def is_database(uri: str) -> bool:
    """A database server's URL (postgresql://, mysql+pymysql://, mssql://), which MLflow and Optuna open with SQLAlchemy."""
    return "://" in uri and _database_kind(uri) in ("postgresql", "mysql", "mssql", "oracle")


def _database_kind(url: str) -> str:
    """postgresql for postgresql+psycopg://..., mysql for mysql+pymysql://..."""
    return url.partition("://")[0].partition("+")[0]


DRIVERS = {
    "postgresql": "psycopg[binary] (pip install -e '.[postgres]')",
    "mysql": "PyMySQL (pip install -e '.[mysql]'), with a mysql+pymysql:// URL",
}


def probe_database(url: str, what: str, fix: str) -> None:
    """Connects once to the database server at `url`, waiting at most PROBE_SECONDS, else says why in one line.

    Args:
        url: a SQLAlchemy URL, e.g. postgresql://user:password@host/db.
        what: what the database is, for the message ("the MLflow tracking store").
        fix: the message's last words, another place to record.
    """
    import sqlalchemy

    kind = _database_kind(url)
    timeout = {
        "postgresql": {"connect_timeout": PROBE_SECONDS},  # PyMySQL's covers the TCP connection only
        "mysql": {"connect_timeout": PROBE_SECONDS, "read_timeout": PROBE_SECONDS},
    }.get(kind, {})
    try:
        engine = sqlalchemy.create_engine(url, connect_args=timeout, poolclass=sqlalchemy.pool.NullPool)
        with engine.connect():
            pass
    except ModuleNotFoundError as error:
        raise UserError(
            f"{what} {url} needs the database driver {error.name}, which is not installed; install "
            f"{DRIVERS.get(kind, error.name)}"
        ) from None
    except Exception as error:  # a bad URL, a server down or silent, a login refused
        cause = getattr(error, "orig", None) or error
        first_line = (str(cause).strip().splitlines() or [type(cause).__name__])[0].rstrip(".")
        raise UserError(
            f"{what} {url} cannot be reached ({first_line}; tried for at most {PROBE_SECONDS} s): start it "
            f"or correct the URL, {fix}"
        ) from None


def probe_server(uri: str) -> None:
    """Waits up to PROBE_SECONDS for the tracking server's /health and then its API to answer, else says how to fix it.

    Any answer counts (authentication or a proxy are the server's business); one that takes the connection and never
    answers, or answers /health but not its API, fails here rather than after MLflow's retries.
    """
    import requests

    deadline = time.monotonic() + PROBE_SECONDS
    base = uri.rstrip("/")
    while True:
        problem = "no connection"
        try:
            requests.get(f"{base}/health", timeout=max(min(5.0, deadline - time.monotonic()), 1.0))
            problem = "its /health answers, but its API does not"
            requests.get(f"{base}/api/2.0/mlflow/experiments/search?max_results=1", timeout=max(deadline - time.monotonic(), 1.0))
            return
        except requests.Timeout:
            if problem == "no connection":
                problem = "it took the connection but sent nothing back"
        except requests.RequestException:
            pass
        if time.monotonic() + 1 >= deadline:
            break
        time.sleep(1)
    raise UserError(
        f"the MLflow tracking server {uri} does not answer ({problem}; tried for {PROBE_SECONDS} s): start it "
        "(`mlflow server --host HOST --port PORT --backend-store-uri ...`), or unset MLFLOW_TRACKING_URI to record in ./mlruns"
    )
