"""A password in a storage or tracking URL is masked in every message, left out of links, and handed to local workers
through their environment, never their command line. (The whole sweep, run, report and worker over URLs with a
password, grepped for it everywhere: tests/test_team.py.)"""

from __future__ import annotations

import pytest
from conftest import TINY

from rnnbench import credentials, faults
from rnnbench.errors import UserError


@pytest.mark.parametrize(
    "text, shown",
    [
        ("postgresql://me:s3cret@db:5432/optuna", "postgresql://me:***@db:5432/optuna"),
        ("mysql+pymysql://me:p%40ss@db/optuna", "mysql+pymysql://me:***@db/optuna"),
        (
            "cannot open http://me:s3cret@host:5000 (no connection), nor https://you:x@y",
            "cannot open http://me:***@host:5000 (no connection), nor https://you:***@y",
        ),
        ("postgresql://me@db/optuna and sqlite:////tmp/a.db and http://host:5000/#/runs?a=b:c", None),
    ],
)
def test_every_password_in_a_text_is_masked_and_nothing_else_changes(text, shown):
    assert credentials.mask(text) == (shown or text)


@pytest.mark.parametrize(
    "url, link",
    [
        ("http://me:s3cret@host:5000", "http://host:5000"),
        ("https://me@[::1]:8443/mlflow", "https://[::1]:8443/mlflow"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ],
)
def test_links_leave_the_credentials_out(url, link):
    assert credentials.without_credentials(url) == link


def test_errors_and_fault_messages_mask_passwords_wherever_they_are_made():
    assert str(UserError("the storage postgresql://me:s3cret@db/x does not answer")) == (
        "the storage postgresql://me:***@db/x does not answer"
    )
    assert "s3cret" not in faults.Fault("store_unreachable", "server http://me:s3cret@host stopped").message


def test_local_workers_get_the_storage_url_in_their_environment_not_their_command_line(monkeypatch):
    from rnnbench.sweep import coordinator
    from rnnbench.sweep.definition import load_sweep
    from rnnbench.sweep.pool import Workers

    started = {}
    monkeypatch.setattr(
        Workers,
        "start",
        classmethod(lambda cls, command, environments, log_stem: started.update(command=command, environments=environments)),
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://me:tracking-secret@host:5000")
    url = "postgresql://me:storage-secret@db/optuna"
    coordinator._start_workers(load_sweep(TINY), url, 2)
    assert not any("secret" in argument for argument in started["command"])
    assert [environment[credentials.STORAGE_VARIABLE] for environment in started["environments"]] == [url, url]


def test_sweep_and_worker_read_the_storage_from_the_environment(monkeypatch):
    from rnnbench import cli

    monkeypatch.setenv(credentials.STORAGE_VARIABLE, "postgresql://me:s3cret@db/optuna")
    assert cli._parse(cli._parser(), ["worker", "sweep-tiny"]).storage == "postgresql://me:s3cret@db/optuna"
    assert cli._parse(cli._parser(), ["sweep", str(TINY), "--storage", "other.journal"]).storage == "other.journal"
