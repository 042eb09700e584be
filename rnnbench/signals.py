"""Stop signals: Ctrl-C (SIGINT) and SIGTERM (docker stop, Kubernetes, batch schedulers) end work alike.

    rnnbench run experiments/seed_lstm.yaml & kill -TERM $!    # the run is recorded as KILLED, exit 143

Both become a KeyboardInterrupt, so every `except KeyboardInterrupt` that closes a run closes it for
either; SIGTERM's is the subclass `Terminated`, which the command line turns into exit code 143
(128 + 15, what a shell reports for a process killed by SIGTERM) instead of Ctrl-C's 130.
Inside TensorFlow neither may raise at once (see `deferred`). Python drops an exception raised while
a garbage-collector callback runs (seen: a SIGTERM lost inside JAX's, and the worker went on), so
the signal is also remembered, and the loops of a sweep and every `deferred` block raise it again.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator


class Terminated(KeyboardInterrupt):
    """Raised for SIGTERM: stop as for Ctrl-C, and exit with 143."""


STOP_SIGNALS = {signal.SIGINT: KeyboardInterrupt, signal.SIGTERM: Terminated}
EXIT_CODES = {KeyboardInterrupt: 130, Terminated: 143}
WORDS = {KeyboardInterrupt: "Ctrl-C", Terminated: "SIGTERM"}
_received: type[KeyboardInterrupt] | None = None
"""The stop signal this process received, once `install` has run; kept in case its exception was dropped."""


def install() -> None:
    """Ctrl-C and SIGTERM raise their exception and are remembered (once per process, at the command line's start).

    A signal that is ignored (SIGINT of a background job) or handled by someone else is left as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for number, default in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL)):
        if signal.getsignal(number) is default:
            signal.signal(number, _raise_stop)
    report_unraisable = sys.unraisablehook

    def unraisable(event):
        if isinstance(event.exc_value, KeyboardInterrupt) and _received is not None:
            return  # dropped inside a garbage-collector callback: remembered, and raised again at the next safe point
        report_unraisable(event)

    sys.unraisablehook = unraisable


def raise_if_received() -> None:
    """Raises the stop signal received earlier, if any: for loops between units of work."""
    if _received is not None:
        raise _received()


def exit_code(stop: KeyboardInterrupt) -> int:
    return EXIT_CODES[Terminated if isinstance(stop, Terminated) else KeyboardInterrupt]


def describe(stop: KeyboardInterrupt) -> str:
    """ "Ctrl-C" or "SIGTERM": what stopped the process, for messages and run tags."""
    return WORDS[Terminated if isinstance(stop, Terminated) else KeyboardInterrupt]


class Pending:
    """A stop signal received inside `deferred`: which one, raised where it is safe."""

    def __init__(self):
        self.received = threading.Event()
        self.kind: type[KeyboardInterrupt] = KeyboardInterrupt

    def raise_if_received(self) -> None:
        if self.received.is_set():
            raise self.kind()


@contextlib.contextmanager
def deferred(raise_earlier: bool = True, leave_pending: bool = False) -> Iterator[Pending]:
    """Inside: a stop signal only marks the yielded `Pending`; the caller raises it from a safe place
    (a Keras callback between executions), and leaving the block raises it at the latest.

    Args:
        raise_earlier: first raise a stop signal received before the block (False: for closing a run, which must
            happen also while a stop is being handled).
        leave_pending: where the command line remembers stops (`install`), leave one received inside for the next
            `raise_if_received` or `deferred` instead of raising it as the block ends: for closing a run that ended
            on its own (finished, pruned, diverged), so that its caller records how it ended before stopping.

    Python raises KeyboardInterrupt wherever the main thread happens to be, and inside TensorFlow's
    eager tensor conversion that could crash the interpreter (SIGSEGV), which left the run RUNNING with
    nothing to say why. A second signal raises at once.
    Only the main thread may set handlers; a signal that is ignored or handled by someone else is left
    as it is.
    """
    if raise_earlier:
        raise_if_received()
    pending = Pending()
    if threading.current_thread() is not threading.main_thread():
        yield pending
        return
    ours = (_raise_stop, signal.default_int_handler)
    taken = {number: signal.getsignal(number) for number in STOP_SIGNALS if signal.getsignal(number) in ours}

    def defer(number, frame):
        if pending.received.is_set():
            raise STOP_SIGNALS[number]()
        pending.kind = STOP_SIGNALS[number]
        pending.received.set()
        if taken[number] is _raise_stop:
            _remember(pending.kind)
        print(
            f"\nrnnbench: {WORDS[pending.kind]}: stopping after the current steps ({WORDS[pending.kind]} again stops at once)",
            file=sys.stderr,
            flush=True,
        )

    for number in taken:
        signal.signal(number, defer)
    try:
        yield pending
    finally:
        for number, handler in taken.items():
            signal.signal(number, handler)
    if not (leave_pending and _received is not None):
        pending.raise_if_received()


def _remember(kind: type[KeyboardInterrupt]) -> None:
    global _received
    _received = kind


def _raise_stop(number, frame):
    _remember(STOP_SIGNALS[number])
    raise STOP_SIGNALS[number]()
