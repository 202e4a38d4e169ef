"""SIGTERM and SIGHUP handled like Ctrl-C.

CI runners and ``timeout`` stop a job with SIGTERM; a closed terminal sends SIGHUP. Both are
turned into ``Terminated``, a KeyboardInterrupt, so every place that already leaves a
partial report on Ctrl-C (and cleans up workers and cgroups through its ``finally``/
``ExitStack``) does the same for them. Exit codes follow the shell's convention, 128 + the
signal number: 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

HANDLED = (signal.SIGTERM, signal.SIGHUP)


class Terminated(KeyboardInterrupt):
    """The process was asked to stop by ``signum``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def signal_of(exc: BaseException) -> int:
    """The signal behind an interruption (SIGINT for a plain KeyboardInterrupt)."""
    return exc.signum if isinstance(exc, Terminated) else int(signal.SIGINT)


def reason(exc: BaseException) -> str:
    """How a report names the interruption."""
    signum = signal_of(exc)
    if signum == signal.SIGINT:
        return "interrupted (Ctrl-C)"
    return f"terminated ({signal.Signals(signum).name})"


def interruption(signum: int) -> KeyboardInterrupt:
    """The exception that ``signum`` raised, to raise again where a caller caught it (a
    replay that stopped early returns its partial result; a loop of replays must stop too)."""
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def exit_code(exc: BaseException) -> int:
    return 128 + signal_of(exc)


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM and SIGHUP raise ``Terminated`` in the main thread."""

    def raise_terminated(signum: int, _frame: FrameType | None) -> None:
        raise Terminated(signum)

    previous = {}
    for signum in HANDLED:
        # outside the main thread (e.g. inside the app's worker) signals stay as they are
        with contextlib.suppress(ValueError):
            previous[signum] = signal.signal(signum, raise_terminated)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
