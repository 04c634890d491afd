"""The error types users see.

Every check on user input (config, files, graph) raises :class:`GraphRecError` with a
message that says *what* is wrong and *where* (file, column, row, config key). The CLI
prints it as one line and exits with status 2; nothing is written after it is raised.

A fault of the run itself (a loss that turned non-finite, a full disk) is a
:class:`RunError`: one line, exit status 1. SIGINT and SIGTERM become :class:`Interrupted`
(exit 130 and 143), which the job turns into one line saying what was written.
"""

from __future__ import annotations

import contextlib
import signal


class GraphRecError(Exception):
    """Bad input, explained in one line: what is wrong and where."""

    exit_code = 2


class ConfigError(GraphRecError):
    """A config file or override that does not fit the schema."""


class DataError(GraphRecError):
    """Graph data that cannot be used: a missing column, a bad value, a dangling edge."""


class RunError(GraphRecError):
    """The run could not finish: training diverged, a disk filled up, a server went away."""

    exit_code = 1


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived. A ``BaseException`` (like ``KeyboardInterrupt``), so no
    ``except Exception`` on the way up swallows it; staging folders are removed as it
    passes. ``outcome`` says what was written, filled in by the stage that knows."""

    def __init__(self, signum: int, outcome: str = "nothing was written") -> None:
        super().__init__(signum)
        self.signum = signum
        self.outcome = outcome
        self.stage: str | None = None
        """The stage that was running (set by the first stage clock it passes)."""

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


PENDING: list[int] = []
"""Signals that arrived in this process (the CLI's handler notes them before it raises)."""


DEFERRING: list[bool] = []
"""Open :func:`signals_deferred` sections: while any is open, the CLI's handler notes a
signal in :data:`PENDING` and returns instead of raising."""


@contextlib.contextmanager
def signals_deferred(raise_after: bool = True):
    """A section that a signal must not cut in two (starting or shutting down sampler worker
    processes): a SIGINT or SIGTERM that arrives meanwhile is noted and, with
    ``raise_after``, raised when the section ends normally. Blocking the signals in the main
    thread is not enough: another thread may receive one, and Python then runs the handler
    in the main thread wherever it is."""
    DEFERRING.append(True)
    try:
        yield
    finally:
        DEFERRING.pop()
    if raise_after:
        raise_if_interrupted()


def raise_if_interrupted() -> None:
    """Raise :class:`Interrupted` for a signal that arrived before. The handler raises where
    the main thread is; when that is a finalizer (a DataLoader iterator's ``__del__`` joining
    its workers), Python prints "Exception ignored" and goes on, so long loops call this
    between steps to stop all the same."""
    if PENDING:
        raise Interrupted(PENDING[0])


def warn(message: str) -> None:
    """One line on stderr that does not stop the run: ``graphrec: warning: ...``."""
    import sys

    print(f"graphrec: warning: {message}", file=sys.stderr, flush=True)
