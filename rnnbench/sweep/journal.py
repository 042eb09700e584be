"""The local sweep storage: Optuna's journal file, kept readable through a full disk or a writer killed mid-write.

    rnnbench sweep experiments/sweep.yaml --storage /shared/sweeps/optuna.journal

Optuna appends records to the journal as JSON lines under a lock, and reads an unfinished last line as the
journal's end; but it appends after such a line, and the line that results can never be read, so from then
on every process that opens the journal fails. A record is torn when its write stops part-way (a full disk,
a writer killed by SIGKILL). `JournalFile` is Optuna's `JournalFileBackend` that never appends after one:
when the journal is opened, a torn record is cut off (also one that a write has already followed, by
rnnbench versions before this one: the complete record behind it is kept), and after an append fails, the
part of it that was written is cut off. What is cut is kept in `<journal>.torn`. A write error names the
journal, and a file that is not a journal is refused in one line.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

from rnnbench.errors import UserError

RECORD_START = b'{"op_code":'
"""How every record Optuna writes begins (`json.dumps(log, separators=(",", ":"))` of a log with op_code first)."""


class JournalFile(JournalFileBackend):
    """Optuna's journal file backend, repaired when opened and after a failed append (see the module's docstring).

    Attributes:
        repaired: a line saying what was cut when the journal was opened, or None when it was whole.
    """

    def __init__(self, path: Path):
        self.path = path
        self.lock = JournalFileSymlinkLock(str(path))  # Optuna's default lock: every process on the journal takes it
        super().__init__(str(path), lock_obj=self.lock)
        with _locked(self.lock):
            self.repaired = repair(path)

    def append_logs(self, logs: list[dict]) -> None:
        try:
            super().append_logs(logs)
        except OSError as error:
            with contextlib.suppress(OSError), _locked(self.lock):  # if even this fails, the next open repairs it
                _cut_torn_tail(self.path)
            raise OSError(error.errno, error.strerror, str(self.path)) from error


def repair(path: Path) -> str | None:
    """Cuts torn records out of the journal at `path` (the caller holds its lock); says what it cut, or None.

    Raises:
        UserError: the file is not an Optuna journal, or a line in it is neither a record nor a torn one.
    """
    data = path.read_bytes()
    if not data:
        return None
    kept, cut = [], []
    lines = data.splitlines(keepends=True)
    for number, line in enumerate(lines, start=1):
        if _is_record(line):
            kept.append(line)
            continue
        start = line.rfind(RECORD_START, 1)
        while start > 0 and not _is_record(line[start:]):
            start = line.rfind(RECORD_START, 1, start)
        if start > 0:  # a torn record, then a whole one appended after it
            kept.append(line[start:])
            cut.append(line[:start])
        elif number == len(lines) and not line.endswith(b"\n") and line.startswith(RECORD_START[:1]):
            cut.append(line)  # the last write stopped part-way
        elif number == 1:
            raise UserError(
                f"{path} is not an Optuna journal (its first line is not a journal record); give --storage an existing "
                "journal, a new file's path, or an RDB URL such as postgresql://user@host/db"
            )
        else:
            raise UserError(
                f"line {number} of the Optuna journal {path} is not a journal record; move the file aside and "
                "re-run the sweep with another --storage, or delete that line to keep the rest"
            )
    if not cut:
        return None
    if b"".join(kept) == data[: sum(map(len, kept))]:
        os.truncate(path, sum(map(len, kept)))  # only the tail was torn: the records before keep their offsets
    else:
        replacement = path.with_name(f"{path.name}.repairing")
        replacement.write_bytes(b"".join(kept))
        os.replace(replacement, path)
    _keep_cut(path, cut)
    return (
        f"repaired the Optuna journal {path}: cut {len(cut)} torn record(s) ({sum(map(len, cut))} bytes, kept in "
        f"{path.name}.torn) left by a write that stopped part-way (a full disk, a killed process); "
        f"{len(kept)} records kept"
    )


def _is_record(line: bytes) -> bool:
    if not line.endswith(b"\n"):
        return False
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and "op_code" in record


def _cut_torn_tail(path: Path) -> None:
    """Truncates the journal after its last complete line, if its end is a torn record."""
    with open(path, "rb") as journal:
        end = journal.seek(0, os.SEEK_END)
        position = end
        while position > 0:
            size = min(65536, position)
            journal.seek(position - size)
            chunk = journal.read(size)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                position = position - size + newline + 1
                break
            position -= size
    if position < end:
        with open(path, "rb") as journal:
            journal.seek(position)
            fragment = journal.read()
        os.truncate(path, position)
        _keep_cut(path, [fragment])


def _keep_cut(path: Path, cut: list[bytes]) -> None:
    """Keeps what was cut in `<journal>.torn`, where the disk has room for it (cutting never needs any)."""
    with contextlib.suppress(OSError), open(f"{path}.torn", "ab") as torn:
        torn.write(b"\n".join(cut) + b"\n")


@contextlib.contextmanager
def _locked(lock: JournalFileSymlinkLock):
    lock.acquire()
    try:
        yield
    finally:
        lock.release()
