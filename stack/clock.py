"""Clocks: where the stack's notion of "now" comes from.

Theory of operation: the TCP core never reads a clock; the host asks its clock for `now()`
and passes the value in. A `VirtualClock` only moves when told (`advance`, `set`), which makes
every test and every harness case exact and fast; a `RealClock` follows the monotonic clock.
`can_block` tells the host whether a blocking socket call may wait for the clock to move: a
real clock can, a virtual one cannot (nothing would ever advance it), so with a virtual clock a
call that would wait raises BlockingIOError instead.
"""

from __future__ import annotations

import time


class VirtualClock:
    """Time that moves only when the caller says so, in seconds from `start`."""

    can_block = False

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a clock does not run backwards")
        self._now += seconds
        return self._now

    def set(self, when: float) -> float:
        if when < self._now:
            raise ValueError(f"cannot set the clock back from {self._now} to {when}")
        self._now = when
        return self._now


class RealClock:
    """Monotonic wall time, in seconds since the clock was made."""

    can_block = True

    def __init__(self) -> None:
        self._origin = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self._origin
