"""Secrets in URLs: a password in a storage or tracking URL is shown as `***`, and never leaves the URL it came in.

    RNNBENCH_STORAGE=postgresql://me:PASSWORD@db/optuna rnnbench sweep experiments/sweep.yaml
    # prints, records and links postgresql://me:***@db/optuna, http://host:5000 (never the password)

`mask` is the one helper every message, page, param and tag goes through where a URL may appear; links
that a browser opens (the report's, the sweep's) drop the credentials altogether with `without_credentials`,
so the browser asks for them instead. The URLs themselves reach other processes through the environment
(`MLFLOW_TRACKING_URI`, `STORAGE_VARIABLE`), never through a command line that `ps` shows.
"""

from __future__ import annotations

import re
import urllib.parse

STORAGE_VARIABLE = "RNNBENCH_STORAGE"
"""The environment variable that holds the Optuna storage URL when `--storage` is not given."""
MASK = "***"
_CREDENTIALS = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s'\"]*):(?P<password>[^@\s'\"]+)@")


def mask(text: str) -> str:
    """`text` with the password of every `scheme://user:password@` in it replaced by `***`.

    Returns:
        e.g. "cannot open postgresql://me:***@db/optuna" for "cannot open postgresql://me:s3cret@db/optuna".
    """
    return _CREDENTIALS.sub(lambda found: f"{found['scheme']}{found['user']}:{MASK}@", str(text))


def without_credentials(url: str) -> str:
    """`url` without its `user:password@`: a link a browser opens, asking for the credentials itself."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
