"""An in-process target for the runner's own tests: no root, no kernel, no TUN, no adapter.

`FakeTarget` is a passive opener in virtual time, just enough TCP to play a handshake (RFC
9293 3.5): its listening socket answers a SYN to its port with a SYN-ACK (ISN `ISN`, MSS
1460) after `syn_ack_delay`, sends that SYN-ACK again at each of `retransmit_at` (times
after the first) while it is not acknowledged, and lets `accept` return once the ACK of
its SYN has come. Its packets are built with scapy, not with the harness's codec. It uses
the harness's virtual-time machinery (base.RetriedCalls), as the stack target does: the
runner's rules for blocking calls and for moving time are what these tests exercise.
`RealTimeTarget` has no packets: a real-time target whose calls run on threads, as on the
kernel target, for the rules that only real time has.
"""

from __future__ import annotations

import errno
import socket
import threading
import time
from typing import Any, Callable

from scapy.layers.inet import IP, TCP
from scapy.packet import raw

from harness.model import Script
from harness.targets.base import CallBlocked, CallHandle, Captured, RetriedCalls, Target

ISN = 5000


class FakeSocket:
    """A listening socket, or the connection it accepted; every other call succeeds."""

    family = socket.AF_INET

    def __init__(self, target: "FakeTarget") -> None:
        self.target = target

    def setsockopt(self, level: int, name: int, value: Any) -> None:
        pass

    def bind(self, address: tuple) -> None:
        self.target.port = address[1]

    def listen(self, backlog: int) -> None:
        pass

    def accept(self) -> tuple["FakeSocket", tuple[str, int]]:
        if not self.target.established:
            raise CallBlocked()        # a blocking accept waits for the handshake
        return FakeSocket(self.target), (self.target.remote, self.target.peer_port)

    def getsockname(self) -> tuple[str, int]:
        return self.target.local, self.target.port

    def getpeername(self) -> tuple[str, int]:
        return self.target.remote, self.target.peer_port

    def close(self) -> None:
        pass


class FakeAPI:
    def __init__(self, target: "Fake") -> None:
        self.target = target

    def socket(self, family: int, type_: int, proto: int) -> FakeSocket:
        if isinstance(self.target, RealTimeTarget):
            return LateSocket(self.target)
        return FakeSocket(self.target)


class Fake(Target):
    """What both fakes share: the plan's addresses and the socket API."""

    def __init__(self) -> None:
        super().__init__()
        self.local = self.remote = ""
        self._api = FakeAPI(self)

    @property
    def api(self) -> "FakeAPI":
        return self._api

    def setup(self, script: Script) -> None:
        self.local, self.remote = script.plan.local_ip, script.plan.remote_ip


class FakeTarget(RetriedCalls, Fake):
    name = "fake"

    def __init__(self, syn_ack_delay: float | None = 0.0,
                 retransmit_at: tuple[float, ...] = ()) -> None:
        super().__init__()
        self.syn_ack_delay = syn_ack_delay     # None: a SYN is never answered
        self.retransmit_at = retransmit_at
        self.clock = 0.0
        self.timers: list[tuple[float, bytes]] = []     # (due, packet), sent unless acked
        self.established = False
        self.port = 0
        self.peer_port = 0
        self.peer_isn = 0

    def now(self) -> float:
        return self.clock

    def inject(self, data: bytes) -> None:
        seg = IP(data)[TCP]
        if seg.dport != self.port:
            return
        if seg.flags.S and self.syn_ack_delay is not None:
            self.peer_port, self.peer_isn = seg.sport, seg.seq
            first = self.clock + self.syn_ack_delay
            self.timers += [(first + after, self._syn_ack()) for after in (0.0, *self.retransmit_at)]
        elif seg.flags.A and seg.ack == ISN + 1:
            self.established = True
            self.timers.clear()
        self._quiesce()

    def _syn_ack(self) -> bytes:
        return raw(IP(src=self.local, dst=self.remote)
                   / TCP(sport=self.port, dport=self.peer_port, seq=ISN, ack=self.peer_isn + 1,
                         flags="SA", window=1000, options=[("MSS", 1460)]))

    def _quiesce(self) -> None:
        due = [packet for when, packet in self.timers if when <= self.clock]
        self.timers = [(when, packet) for when, packet in self.timers if when > self.clock]
        self.outbound.extend(Captured(self.clock, packet) for packet in due)
        self.retry_blocked()

    def _next_timer(self) -> float | None:
        return min((when for when, _ in self.timers), default=None)

    def _advance(self, to: float) -> None:
        self.clock = to


class LateSocket(FakeSocket):
    """A listening socket in real time whose accept() returns on its own thread `late`
    seconds after `accept_at`, as a woken thread runs a moment after what woke it; an
    accept() that finds its socket closed by then fails with EBADF, as poll() reports
    POLLNVAL for a descriptor closed under it."""

    def __init__(self, target: "RealTimeTarget") -> None:
        super().__init__(target)
        self.closed = False

    def accept(self) -> tuple[FakeSocket, tuple[str, int]]:
        target = self.target
        time.sleep(max(0.0, target.accept_at + target.late - target.now()))
        if self.closed:
            raise OSError(errno.EBADF, "accept on a socket closed during the call")
        return FakeSocket(target), (target.remote, 9)

    def close(self) -> None:
        self.closed = True


class RealTimeTarget(Fake):
    """No packets; real time, each call on a thread of its own, as on the kernel target."""

    name = "fake-real-time"
    virtual_time = False

    def __init__(self, accept_at: float, late: float) -> None:
        super().__init__()
        self.accept_at, self.late = accept_at, late
        self.started = time.monotonic()

    def setup(self, script: Script) -> None:
        super().setup(script)
        self.started = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.started

    def inject(self, data: bytes) -> None:
        pass

    def wait(self, until: float) -> Captured | None:
        time.sleep(max(0.0, min(until - self.now(), 0.001)))
        return None

    def start_call(self, fn: Callable[[], Any]) -> CallHandle:
        handle = CallHandle()

        def run() -> None:
            handle.started_at = self.now()
            handle.run(fn)
            handle.finish(self.now())
        threading.Thread(target=run, daemon=True).start()
        return handle
