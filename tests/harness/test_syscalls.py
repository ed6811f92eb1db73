"""What the syscall layer records about the script's writes."""

from __future__ import annotations

import socket
from typing import Any

from harness.calls import Call, CallResult
from harness.constants import CONSTANTS
from harness.model import Expr
from harness.options import Plan
from harness.syscalls import Syscalls, pattern


class Connected:
    """A target with one connected socket, descriptor 9, 8080 -> 40000, that takes every
    byte at once; it keeps the Calls it got."""

    def __init__(self) -> None:
        self.made: list[Call] = []

    def call(self, call: Call) -> CallResult:
        self.made.append(call)
        addresses = {"getsockname": ("192.168.0.1", 8080), "getpeername": ("192.0.2.1", 40000)}
        if call.op in addresses:
            return CallResult(0, addr=addresses[call.op])
        return CallResult(len(call.arg("data")) if call.op == "write" else 0)

    def connection(self, fd: int) -> dict[str, Any]:
        return {}


def calls_with_writes(*writes: tuple[float, int]) -> Syscalls:
    """Script fd 4 (the target's 9) after writes of (return time, byte count)."""
    now = [0.0]
    calls = Syscalls(Connected(), plan=Plan(), clock=lambda: now[0])
    calls.fds[4] = 9
    calls.families[4] = socket.AF_INET
    for returned, count in writes:
        now[0] = returned
        calls.sys_write(None, [Expr("int", 4), Expr("ellipsis"), Expr("int", count)])
    return calls


def test_a_write_is_a_call_on_the_targets_descriptor_with_the_streams_bytes():
    calls = calls_with_writes((1.0, 300), (2.0, 5))
    writes = [c for c in calls.target.made if c.op == "write"]
    assert [(c.fd, c.arg("count")) for c in writes] == [(9, 300), (9, 5)]
    assert writes[1].arg("data") == pattern(300, 5)       # the stream goes on where it was


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


def test_epoll_calls_name_the_targets_descriptors_and_judge_the_events_by_script_fd():
    calls = calls_with_writes()
    calls.fds[5] = 12            # an epoll set: script fd 5, the target's 12
    add = [Expr("int", 5), Expr("name", "EPOLL_CTL_ADD"), Expr("int", 4),
           Expr("struct", [("events", Expr("name", "EPOLLIN"))])]
    assert calls.sys_epoll_ctl(None, add).ret == 0
    made = calls.target.made[-1]
    assert (made.op, made.fd, made.args) == ("epoll_ctl", 12, {
        "action": CONSTANTS["EPOLL_CTL_ADD"], "target": 9, "events": CONSTANTS["EPOLLIN"]})
    calls.target.call = lambda call: CallResult(1, ready=[(9, CONSTANTS["EPOLLOUT"])])
    waited = calls.sys_epoll_wait(None, [Expr("int", 5), Expr("struct", [("events", Expr("name", "EPOLLIN"))]),
                                         Expr("int", 1), Expr("int", 0)])
    assert waited.ret == 1
    assert waited.problems == ["epoll events of fd 4 are POLLOUT, expected POLLIN"]
