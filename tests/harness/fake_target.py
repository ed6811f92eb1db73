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
import threading
import time
from typing import Any, Callable

from scapy.layers.inet import IP, TCP
from scapy.packet import raw

from harness.calls import Call, CallResult
from harness.model import Script
from harness.targets.base import CallBlocked, CallHandle, Captured, RetriedCalls, Target

ISN = 5000


class FakeCalls:
    """Calls (harness.calls) on the fake's descriptors: 3 is the first socket, each socket
    or accepted connection the next number; every call but accept succeeds at once, and
    accept is the target's (`Fake.accept`)."""

    def __init__(self, target: "Fake") -> None:
        self.target = target
        self.next_fd = 3
        self.closed: set[int] = set()
        self.made: list[Call] = []       # every call, in order, as the target got it

    def call(self, call: Call) -> CallResult:
        self.made.append(call)
        target = self.target
        if call.op == "accept":
            try:
                peer = target.accept(call.fd or 0)
            except OSError as exc:
                return CallResult.failed(exc.errno or errno.EIO)
            return CallResult(self._new(), addr=peer)
        if call.op == "socket":
            return CallResult(self._new())
        if call.op == "bind":
            target.port = call.arg("addr")[1]
        if call.op == "close":
            self.closed.add(call.fd or 0)
        if call.op == "getsockname":
            return CallResult(0, addr=(target.local, target.port))
        if call.op == "getpeername":
            return CallResult(0, addr=(target.remote, target.peer_port))
        if call.op not in ("setsockopt", "bind", "listen", "close"):
            return CallResult.failed(errno.EOPNOTSUPP)
        return CallResult(0)

    def _new(self) -> int:
        fd, self.next_fd = self.next_fd, self.next_fd + 1
        return fd


class Fake(Target):
    """What both fakes share: the plan's addresses, calls as data, connection state."""

    def __init__(self) -> None:
        super().__init__()
        self.local = self.remote = ""
        self.port = self.peer_port = 0
        self.calls = FakeCalls(self)

    def setup(self, script: Script) -> None:
        self.local, self.remote = script.plan.local_ip, script.plan.remote_ip

    def call(self, call: Call) -> CallResult:
        return self.calls.call(call)

    def connection(self, fd: int) -> dict[str, Any]:
        """RFC 9293 names only, as an adapter may give them: the listener (3) in LISTEN, the
        accepted connection ESTABLISHED, with a window and an MSS."""
        if fd == 3:
            return {"state": "LISTEN"}
        return {"state": "ESTABLISHED", "SND.WND": 1000, "SMSS": 1460, "cwnd": 14600}

    def accept(self, fd: int) -> tuple[str, int]:
        """The peer of the connection an accept on listener `fd` returns."""
        raise NotImplementedError


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
        self.peer_isn = 0

    def accept(self, fd: int) -> tuple[str, int]:
        if not self.established:
            raise CallBlocked()        # a blocking accept waits for the handshake
        return self.remote, self.peer_port

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

    def accept(self, fd: int) -> tuple[str, int]:
        """Returns on the call's thread `late` seconds after `accept_at`, as a woken thread
        runs a moment after what woke it; an accept that finds its socket closed by then
        fails with EBADF, as poll() reports POLLNVAL for a descriptor closed under it."""
        time.sleep(max(0.0, self.accept_at + self.late - self.now()))
        if fd in self.calls.closed:
            raise OSError(errno.EBADF, "accept on a socket closed during the call")
        return self.remote, 9

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
