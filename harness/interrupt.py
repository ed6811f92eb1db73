"""Stopping a run on SIGINT or SIGTERM without losing the verdicts it has, and without
leaving a case's process (its namespace, its TUN device) behind.

Theory of operation: while a run is in progress `StopSignals` replaces the handlers of
SIGINT and SIGTERM with one that only notes the signal and writes a byte to a pipe. The
scheduler (harness.execute) watches that pipe beside the case processes' pipes, so it wakes
at once, kills every running case's process group, reaps it (the kernel removes a
namespace and its TUN device when its last process is gone) and hands back the results it
has, the rest marked `interrupted`. No exception is raised into code that happens to be
running, so a report is never half-written by a signal. A second signal while stopping
takes the usual way out (KeyboardInterrupt / SystemExit).

A case's process notices the death of the process that forked it, even by SIGKILL:
`watch_parent` asks the kernel for SIGTERM at that moment (prctl PR_SET_PDEATHSIG) and
turns it into SIGKILL for the case's whole process group, so shell commands a case
started go too.
"""

from __future__ import annotations

import ctypes
import os
import signal
from types import FrameType
from typing import Callable

PR_SET_PDEATHSIG = 1          # linux/prctl.h
EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}    # 128 + signal number, as shells say
_libc = ctypes.CDLL(None, use_errno=True)


class StopSignals:
    """SIGINT and SIGTERM noted instead of acted on, while installed (a context manager).
    `signum` is the first one received; `fileno()` becomes readable when one arrives."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._read, self._write = -1, -1
        self._previous: dict[int, Callable[..., object] | int | None] = {}

    def __enter__(self) -> "StopSignals":
        self._read, self._write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        for signum in EXIT_STATUS:
            self._previous[signum] = signal.signal(signum, self._note)
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()
        os.close(self._read)
        os.close(self._write)

    def restore(self) -> None:
        """The handlers as they were before (also what a forked case process wants)."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()

    def fileno(self) -> int:
        return self._read

    @property
    def stopping(self) -> bool:
        return self.signum is not None

    @property
    def exit_status(self) -> int:
        return EXIT_STATUS.get(self.signum, 1) if self.signum is not None else 0

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def _note(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:          # the second one: stop the hard way
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(EXIT_STATUS[signal.Signals(signum)])
        self.signum = signum
        try:
            os.write(self._write, b"!")
        except BlockingIOError:
            pass


def _kill_group(signum: int, frame: FrameType | None) -> None:
    os.killpg(0, signal.SIGKILL)


def watch_parent(parent: int) -> None:
    """In a freshly forked case process (the leader of its own process group): end the
    whole group when `parent` dies, however it dies."""
    for signum in EXIT_STATUS:
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, _kill_group)
    if _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != parent:        # it died before the request was made
        _kill_group(signal.SIGTERM, None)
