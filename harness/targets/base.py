"""The one small interface between the runner and a system under test.

The runner never asks which target it runs on. A target gives: the time now, a way to
inject a packet, a way to wait for the next outbound packet until a deadline, calls as data
(`call(Call) -> CallResult`, harness.calls: an op, the target's integer descriptors and
plain arguments in; the return value, errno and output arguments out), a connection's state
as a dict of RFC 9293 names (`connection(fd)`, harness.connection), and a way to run a
script call (whose Calls may block) while the timeline goes on (`start_call`). The script's
fd numbers, the map from them to descriptors, and every judgement stay in the harness
(harness/syscalls.py). Adding a target adds a file in this package: an in-process one
performs Calls with the shared dispatcher of sockets.py, the protocol target sends each as
one request of the target protocol (PROTOCOL.md).

What is the same for every target lives here and in the runner, not in each target:
- isolation: execute.py puts every case in its own network namespace with a read-only
  /proc/sys before `setup`;
- a call's completion (`CallHandle.complete`), and the rule for a call that blocks: on a
  target in real time the runner interrupts it after a while (SIGALRM); on one in virtual
  time (`virtual_time`) time stands still during a call, so the runner starts every call
  with `start_call` and a call the script did not mark as blocking (`...`) that is not done
  at once has blocked;
- moving a virtual clock (`VirtualTime`): to the next thing that can happen, a timer of the
  target or the runner's own deadline, one timer at a time.
"""

from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from harness import netns
from harness.calls import Call, CallResult
from harness.capabilities import EVERYTHING, Capabilities
from harness.model import Script


class CallTimeout(Exception):
    """A call the script did not mark as blocking blocked (raised in the runner's thread by
    SIGALRM, on a target in real time)."""


class CallBlocked(Exception):
    """Raised by a virtual-time target's socket call that would wait for the timeline to move
    (its target runs the call again after the next step of the timeline)."""


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

    def run(self, fn: Callable[[], Any]) -> None:
        """Make the call here; its result, or the exception it raised, is kept for the runner
        (which reports an exception with the script line)."""
        try:
            self.result, self.error = fn(), None
        except BaseException as exc:
            self.error = exc

    def finish(self, at: float) -> None:
        """The call returned at `at` (the case's time)."""
        self.finished_at = at
        self.event.set()


class Target(ABC):
    name: str = ""
    capabilities: Capabilities = EVERYTHING     # what cases may need of it (harness.capabilities)
    virtual_time = False     # whether `now` moves only when the runner waits (see the top)
    _watched: dict[str, str] = {}     # sysctl values as last read (watch_sysctls)

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
    def call(self, call: Call) -> CallResult:
        """Perform one call on the target's own descriptors. A failed call is a result with
        its errno; a call that would wait blocks here (real time) or raises CallBlocked
        (RetriedCalls)."""

    @abstractmethod
    def connection(self, fd: int) -> dict[str, Any]:
        """The state of descriptor `fd`'s connection, in RFC 9293's names (harness.connection);
        a variable the target cannot give is left out. Extras (tcpi_*) under their own names."""

    @abstractmethod
    def start_call(self, fn: Callable[[], Any]) -> CallHandle:
        """Run `fn` (a script call, which makes its Calls through `call`) so that the runner
        can go on while it blocks."""

    def watch_sysctls(self, names: tuple[str, ...]) -> None:
        """Hand those of these sysctls that a script's shell command changes in the case's
        namespace (a .pkt's `sysctl -w`) to `apply_sysctls`."""
        self._watched = netns.read_sysctls(names)

    def after_shell(self) -> None:
        """A script's shell command ran: the watched sysctls it changed are applied."""
        if not self._watched:
            return
        now = netns.read_sysctls(tuple(self._watched))
        changed = {name: value for name, value in now.items() if self._watched.get(name) != value}
        self._watched = now
        if changed:
            self.apply_sysctls(changed)

    def apply_sysctls(self, changed: dict[str, str]) -> None:
        """Watched sysctls a shell command changed, with their new values as /proc/sys has them."""

    def restart_clock(self) -> None:
        """Time 0 of the case is now: the runner calls it after a script's init command, as
        packetdrill starts its clock then. A target in virtual time, which a shell command
        does not advance, has nothing to do."""

    def teardown(self) -> None:
        """Release what setup took (the process exit releases the rest)."""

    def environment(self) -> dict[str, str]:
        """Facts for the report: kernel version, sysctls, stack version."""
        return {}



class VirtualTime:
    """`Target.wait` for a target in virtual time: the clock goes straight to the next thing
    that can happen, the target's next timer or the runner's deadline, one timer at a time,
    so that each packet and each completed call carries the time it happened. Like a real
    wait it ends just past `until`, so that the runner sees its deadline passed.

    A target using it keeps its packets in `outbound`, stamped with the virtual time they
    were sent, sets `finished` when a call completes, and gives `_quiesce` (let the stack
    finish processing, collect what it sent, retry blocked calls), `_next_timer` and
    `_advance`."""

    virtual_time = True

    def __init__(self) -> None:
        super().__init__()
        self.outbound: deque[Captured] = deque()
        self.finished = threading.Event()     # a call completed since the last wait

    @abstractmethod
    def now(self) -> float: ...

    @abstractmethod
    def _quiesce(self) -> None:
        """Bring the stack to rest at the current time; what it sent goes into `outbound`."""

    @abstractmethod
    def _next_timer(self) -> float | None:
        """When the stack's next timer is due (seconds; None: no timer)."""

    @abstractmethod
    def _advance(self, to: float) -> None:
        """Move the clock to `to`, firing every timer due on the way at its own due time."""

    def _taken(self) -> tuple[bool, Captured | None]:
        """What `wait` returns now, if anything: (True, the next packet sent), else (True,
        None) for a call finished since the last wait, else (False, None)."""
        if self.outbound:
            return True, self.outbound.popleft()
        if self.finished.is_set():
            self.finished.clear()
            return True, None
        return False, None

    def wait(self, until: float) -> Captured | None:
        while True:
            self._quiesce()
            done, packet = self._taken()
            if done:
                return packet
            now = self.now()
            if now > until:
                return None
            past = math.nextafter(until, math.inf)
            timer = self._next_timer()
            self._advance(past if timer is None else min(past, max(timer, now)))


class RetriedCalls(VirtualTime):
    """A target in virtual time whose calls never wait (a stack in the harness's process):
    `start_call` makes the call; one that would wait raises CallBlocked, and is made again at
    every step of the timeline (`retry_blocked`, from the target's `_quiesce`) until it
    returns, at the virtual time of that step."""

    def __init__(self) -> None:
        super().__init__()
        self.blocked: list[tuple[Callable[[], Any], CallHandle]] = []

    def start_call(self, fn: Callable[[], Any]) -> CallHandle:
        handle = CallHandle()
        self._attempt(fn, handle)
        if not handle.done:
            self.blocked.append((fn, handle))
        return handle

    def retry_blocked(self) -> None:
        for fn, handle in list(self.blocked):
            self._attempt(fn, handle)
        self.blocked = [(fn, handle) for fn, handle in self.blocked if not handle.done]

    def _attempt(self, fn: Callable[[], Any], handle: CallHandle) -> None:
        handle.run(fn)
        if isinstance(handle.error, CallBlocked):
            handle.would_block, handle.error = True, None
            return
        if handle.would_block and not self._retried(handle):
            return
        handle.finish(self.now())
        self.finished.set()

    def _retried(self, handle: CallHandle) -> bool:
        """A call that blocked before has returned `handle.result` on a retry: whether that
        is its return (a target may adjust it), or says the call is still under way."""
        return True
