"""The local sweep storage survives a write that stopped part-way: a torn record is cut (and kept aside) before anything
is appended after it, a journal already broken that way is recovered, and a file that is not a journal is one line."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from rnnbench.errors import UserError
from rnnbench.sweep import studies


def a_journal(path, trials: int = 3) -> None:
    """A real journal: a study with `trials` queued trials, as a sweep writes them."""
    study = optuna.create_study(study_name="s:final", storage=studies.open_storage(str(path)))
    for number in range(trials):
        study.enqueue_trial({"seed": number})


def queued(path) -> int:
    return len(optuna.load_study(study_name="s:final", storage=studies.open_storage(str(path))).get_trials())


def test_a_torn_last_record_is_cut_before_the_next_append_and_kept_aside(tmp_path, capsys):
    journal = tmp_path / "optuna.journal"
    a_journal(journal)
    whole = journal.read_bytes()
    journal.write_bytes(whole + b'{"op_code":4,"worker_id":"a-')  # the disk filled up in the middle of a record

    storage = studies.open_storage(str(journal))
    assert "repaired the Optuna journal" in capsys.readouterr().err
    assert journal.read_bytes() == whole
    assert (tmp_path / "optuna.journal.torn").read_bytes() == b'{"op_code":4,"worker_id":"a-\n'
    optuna.load_study(study_name="s:final", storage=storage).enqueue_trial({"seed": 9})  # appends after a whole line
    assert queued(journal) == 4


def test_a_journal_already_broken_by_an_append_after_a_torn_record_is_recovered(tmp_path, capsys):
    """What rnnbench before this repair left: Optuna appended after the torn record, and every open then failed."""
    journal = tmp_path / "optuna.journal"
    a_journal(journal, trials=2)
    with open(journal, "ab") as file:
        file.write(b'{"op_code":4,"wor')
    for seed in (7, 8):  # Optuna alone appends after the fragment, and then cannot read what it wrote
        plain = JournalStorage(JournalFileBackend(str(journal)))
        with pytest.raises((AttributeError, ValueError)):
            optuna.load_study(study_name="s:final", storage=plain).enqueue_trial({"seed": seed})
    with pytest.raises(ValueError):
        JournalStorage(JournalFileBackend(str(journal)))  # the journal as it was: unreadable

    assert queued(journal) == 4  # the records written after the torn one are kept
    assert "cut 1 torn record(s)" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content, message",
    [
        (b"SQLite format 3\x00\x10\x00\x01\x01", "is not an Optuna journal (its first line is not a journal record)"),
        (b"key: value\n", "is not an Optuna journal"),
    ],
)
def test_a_file_that_is_not_a_journal_is_refused_in_one_line(tmp_path, content, message):
    path = tmp_path / "studies.db"
    path.write_bytes(content)
    with pytest.raises(UserError, match="give --storage an existing journal, a new file's path, or an RDB URL") as error:
        studies.open_storage(str(path))
    assert message in str(error.value) and path.read_bytes() == content


def _append_beyond(limit: int, path: str) -> None:
    """In a child process: appends to the journal with a file-size limit that stops the write part-way."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit, write() fails with EFBIG instead of killing us
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    study = optuna.load_study(study_name="s:final", storage=studies.open_storage(path))
    try:
        study.enqueue_trial({"seed": 99, "padding": "x" * 4096})
    except OSError as error:
        print(error.filename)


def test_an_append_that_stops_part_way_is_cut_at_once_and_its_error_names_the_journal(tmp_path):
    journal = tmp_path / "optuna.journal"
    a_journal(journal)
    whole = journal.read_bytes()
    code = (
        f"import sys; sys.path.insert(0, {str(__file__.rsplit('/', 1)[0])!r}); from test_journal import _append_beyond; "
        f"_append_beyond({len(whole) + 100}, {str(journal)!r})"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == str(journal), result.stderr
    assert journal.read_bytes() == whole  # what the failed append wrote is cut: the next one starts a line
    assert (tmp_path / "optuna.journal.torn").read_bytes().startswith(b'{"op_code"')
    assert queued(journal) == 3


def test_a_worker_given_a_missing_storage_says_so_and_leaves_no_file(tmp_path):
    for storage in (tmp_path / "optuna.journal", f"sqlite:///{tmp_path / 'studies.db'}"):
        with pytest.raises(UserError, match="no sweep storage .*: start the sweep first"):
            studies.open_storage(str(storage), create=False)
    assert list(tmp_path.iterdir()) == []
