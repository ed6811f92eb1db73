"""What a connection's events are made of: its states, timers and notices, the effects one
event has, and the decorator that runs an event.

Theory of operation: `Connection` (connection.py) is assembled from parts that each hold one
side of the TCB (sender.py, receiver.py, handshake.py, timeouts.py); this module holds what they
all speak of. An event method is wrapped by `event`: it sets the time, collects the event's
`Effects` (segments, timers, notices, result), then lets the connection send what became
sendable and any ACK that is due. `reset_for` is the CLOSED state's reply (RFC 9293 3.10.7.1),
used by the host for segments that reach no connection and by a connection that is deleted.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from . import seqnum
from .wire import ACK, RST, TCPSegment

if TYPE_CHECKING:
    from .connection import Connection


class Singletons(enum.Enum):
    """An Enum hashed by identity, in C: its members are singletons anyway, and Enum's own
    __hash__ (a Python function hashing the name) would otherwise run for every timer lookup
    and state test on the data path."""

    __hash__ = object.__hash__


class State(Singletons):
    CLOSED = "CLOSED"
    LISTEN = "LISTEN"
    SYN_SENT = "SYN-SENT"
    SYN_RECEIVED = "SYN-RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN-WAIT-1"
    FIN_WAIT_2 = "FIN-WAIT-2"
    CLOSE_WAIT = "CLOSE-WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST-ACK"
    TIME_WAIT = "TIME-WAIT"


# Linux's numbering of the states (include/net/tcp_states.h), as tcp_info reports it.
LINUX_STATE = {
    State.ESTABLISHED: 1, State.SYN_SENT: 2, State.SYN_RECEIVED: 3, State.FIN_WAIT_1: 4,
    State.FIN_WAIT_2: 5, State.TIME_WAIT: 6, State.CLOSED: 7, State.CLOSE_WAIT: 8,
    State.LAST_ACK: 9, State.LISTEN: 10, State.CLOSING: 11,
}

SYNCHRONIZED = frozenset({State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2,
                          State.CLOSE_WAIT, State.CLOSING, State.LAST_ACK, State.TIME_WAIT})
# RFC 9293 3.10.7.4 sixth and seventh steps: URG and text are processed only here.
RECEIVING = frozenset({State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2})
# States in which queued data (and then a FIN) may still go out.
TRANSMITTING = frozenset({State.ESTABLISHED, State.CLOSE_WAIT, State.FIN_WAIT_1,
                          State.CLOSING, State.LAST_ACK})


class Timer(Singletons):
    RETRANSMIT = "retransmit"     # RFC 6298 (also SYN and SYN-ACK retransmission)
    PERSIST = "persist"           # RFC 9293 3.8.6.1 zero-window probes; RFC 1122 4.2.3.4 override
    DELACK = "delack"             # RFC 9293 3.8.6.3 delayed ACK
    KEEPALIVE = "keepalive"       # RFC 1122 4.2.3.6
    TIME_WAIT = "time-wait"       # 2 MSL (RFC 9293 3.10.7.4)
    FIN_WAIT_2 = "fin-wait-2"     # orphaned FIN-WAIT-2 lifetime (Linux tcp_fin_timeout)


class Notice(Singletons):
    ESTABLISHED = "established"
    READABLE = "readable"
    URGENT = "urgent"
    WRITABLE = "writable"
    EOF = "eof"                   # the peer's FIN: "connection closing" (RFC 9293 3.10.7.4)
    ERROR = "error"               # `Connection.error` holds the errno
    CLOSED = "closed"             # the TCB is gone
    NEGATIVE_ADVICE = "negative-advice"   # R1 reached (RFC 1122 4.2.3.5)


@dataclass
class Effects:
    segments: list[TCPSegment] = field(default_factory=list)
    timers: dict[Timer, float] = field(default_factory=dict)
    notices: list[Notice] = field(default_factory=list)
    result: Any = None


class Throttle:
    """At most `limit` events per second (RFC 5961 7: challenge ACKs SHOULD be throttled)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.second = -1
        self.count = 0

    def allow(self, now: float) -> bool:
        if int(now) != self.second:
            self.second, self.count = int(now), 0
        self.count += 1
        return self.count <= self.limit


@dataclass
class IcmpError:
    """An ICMP error about this connection (RFC 1122 4.2.3.9), already classified."""

    errno: int
    hard: bool                 # protocol/port unreachable: abort (RFC 1122 4.2.3.9)
    seq: int                   # the sequence number in the quoted TCP header
    mtu: int | None = None     # fragmentation needed: the next-hop MTU (RFC 1191)


def reset_for(seg: TCPSegment, window: int = 0) -> TCPSegment | None:
    """The reply of a CLOSED port (RFC 9293 3.10.7.1): nothing to a RST; otherwise
    <SEQ=SEG.ACK><CTL=RST> if the segment had an ACK, else <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
    `window` fills the window field, which a reset gives no meaning."""
    if seg.flags & RST:
        return None
    if seg.flags & ACK:
        return TCPSegment(seg.dport, seg.sport, seg.ack, 0, RST, window)
    return TCPSegment(seg.dport, seg.sport, 0, seqnum.add(seg.seq, seg.seg_len), RST | ACK, window)


def event(method: Callable[..., Any]) -> Callable[..., Effects]:
    """Run one event: set the time, collect effects, then send what became sendable."""

    @functools.wraps(method)
    def run(self: Connection, *args: Any) -> Effects:
        self.now = args[-1]
        fx = self._fx = Effects()
        fx.result = method(self, *args[:-1])
        if self.state in TRANSMITTING:
            self._output()
        if self._ack_due and self.state is not State.CLOSED:
            self._send_ack()
        fx.timers = dict(self.timers)
        return fx

    return run
