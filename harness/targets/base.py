"""The one small interface between the runner and a system under test.

The runner never asks which target it runs on. A target gives: the time now, a way to
inject a packet, a way to wait for the next outbound packet until a deadline, sockets to
make calls on (a `SocketAPI`), and a way to run a call that may block while the timeline
goes on. Adding a target adds a file in this package.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable

from harness.capabilities import EVERYTHING, Capabilities
from harness.model import Script


class CallTimeout(Exception):
    """A call the script did not mark as blocking blocked (raised in the runner's thread: by
    SIGALRM on a target in real time, at once by one in virtual time, where it cannot end)."""


@dataclass
class Captured:
    """An outbound packet and when the target sent it (seconds since the case started)."""

    time: float
    data: bytes


class CallHandle:
    """A system call in progress; `finished_at` is set when it returns."""

    def __init__(self) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.finished_at: float | None = None
        self.started_at: float | None = None   # when its thread began it (None: no thread)
        self.cpu_wait = 0.0    # seconds its thread was runnable but not running, during the call
        self.would_block = False       # a target without threads saw it wait at least once
        self.event = threading.Event()

    @property
    def done(self) -> bool:
        return self.event.is_set()


class Target(ABC):
    name: str = ""
    capabilities: Capabilities = EVERYTHING     # what cases may need of it (harness.capabilities)

    @abstractmethod
    def setup(self, script: Script) -> None:
        """Prepare for one case (called in the case's own process, already in its private
        network namespace with a read-only /proc/sys: execute.py isolates every target)."""

    @abstractmethod
    def now(self) -> float:
        """Seconds since setup."""

    @abstractmethod
    def inject(self, data: bytes) -> None:
        """Deliver one IPv4 packet to the target, as if from the remote peer."""

    @abstractmethod
    def wait(self, until: float) -> Captured | None:
        """Return the next outbound IPv4 packet, or None at `until` or when a call finishes."""

    @abstractmethod
    def start_call(self, fn: Callable[[], Any]) -> CallHandle:
        """Run `fn` (a socket call) so that the runner can go on while it blocks."""

    @property
    @abstractmethod
    def api(self) -> Any:
        """The SocketAPI of this target."""

    def after_shell(self) -> None:
        """A script's shell command ran (it may have changed sysctls in the namespace)."""

    def restart_clock(self) -> None:
        """Time 0 of the case is now: the runner calls it after a script's init command, as
        packetdrill starts its clock then. A target in virtual time, which a shell command
        does not advance, has nothing to do."""

    def teardown(self) -> None:
        """Release what setup took (the process exit releases the rest)."""

    def environment(self) -> dict[str, str]:
        """Facts for the report: kernel version, sysctls, stack version."""
        return {}

