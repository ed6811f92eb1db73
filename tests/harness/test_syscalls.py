"""What the syscall layer records about the script's writes."""

from __future__ import annotations

from harness.model import Expr
from harness.options import Plan
from harness.syscalls import Syscalls


class FakeSocket:
    """A connected socket 8080 -> 40000 that takes every byte at once."""

    def getsockname(self) -> tuple[str, int]:
        return ("192.168.0.1", 8080)

    def getpeername(self) -> tuple[str, int]:
        return ("192.0.2.1", 40000)

    def send(self, data: bytes, flags: int = 0) -> int:
        return len(data)


def calls_with_writes(*writes: tuple[float, int]) -> Syscalls:
    """Fd 4 after writes of (return time, byte count)."""
    now = [0.0]
    calls = Syscalls(api=None, plan=Plan(), clock=lambda: now[0])
    calls.fds[4] = FakeSocket()
    for returned, count in writes:
        now[0] = returned
        calls.sys_write(None, [Expr("int", 4), Expr("ellipsis"), Expr("int", count)])
    return calls


def test_a_segment_ending_inside_a_write_has_bytes_queued_after_it():
    calls = calls_with_writes((1.0, 3000))
    assert calls.queued_after(8080, 40000, 1000, at=0.5)
    assert not calls.queued_after(8080, 40000, 3000, at=9.0)     # the write's end empties it


def test_a_later_write_counts_once_it_has_returned():
    calls = calls_with_writes((1.0, 1000), (2.0, 1000))
    assert not calls.queued_after(8080, 40000, 1000, at=1.5)     # sent before the second write
    assert calls.queued_after(8080, 40000, 1000, at=2.0)
    assert not calls.queued_after(8080, 40000, 2000, at=3.0)


def test_an_unknown_connection_has_nothing_queued():
    calls = calls_with_writes((1.0, 3000))
    assert not calls.queued_after(8080, 40001, 1000, at=2.0)
