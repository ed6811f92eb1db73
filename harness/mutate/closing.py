"""Mutants of closing: CLOSE and ABORT per state, the FIN steps, TIME-WAIT, and what the user
is told (RFC 793 3.9, RFC 9293 3.10.4-3.10.7, RFC 1122 4.2.2.13)."""

from __future__ import annotations

import errno

from stack import seqnum
from stack.connection import Connection
from stack.events import State, Timer
from stack.host import Host
from stack.wire import ACK, FIN, RST

from harness.mutate.patching import config, guard, method, mutant

C = Connection
_T = "rfc793:transition:"


def _in(*states: State):
    return lambda self, *args: self.state in states


def _fin_not_acked(*states: State):
    """The peer's FIN handled, but not acknowledged, in `states`."""
    def build(orig):
        def fin(self: Connection) -> None:
            state = self.state
            orig(self)
            if state in states:
                self._ack_due = False
                self.timers.pop(Timer.DELACK, None)
        return fin
    return method(C, "_fin", build)


def _fin_state(before: State, becomes: State):
    """The FIN step leaves `before` for `becomes` instead of the state the RFC names."""
    def build(orig):
        def fin(self: Connection) -> None:
            state = self.state
            orig(self)
            if state is before and self.state is not becomes:
                self.timers.pop(Timer.TIME_WAIT, None)
                if becomes is State.TIME_WAIT:
                    self._enter_time_wait()
                elif becomes is State.CLOSED:
                    self._terminate(None)
                else:
                    self.state = becomes
        return fin
    return method(C, "_fin", build)


def _fin_and_ack_to_closing(orig):
    """FIN-WAIT-1, a segment with the FIN and the ACK of ours: left in CLOSING. (The ACK step
    runs first and passes through FIN-WAIT-2, so the FIN step alone never sees this case.)"""
    def arrive(self: Connection, seg) -> None:
        state = self.state
        orig(self, seg)
        if state is State.FIN_WAIT_1 and self.state is State.TIME_WAIT and seg.flags & FIN:
            self.timers.pop(Timer.TIME_WAIT, None)
            self.state = State.CLOSING
    return arrive


def _reported_as_reset(orig):
    def fin(self: Connection) -> None:
        orig(self)
        if self.state is State.CLOSE_WAIT:
            self._terminate(errno.ECONNRESET)
    return fin


def _second_fin(self: Connection) -> None:
    self._segment(ACK | FIN, self.snd_max)


def _ack_without_delivery(self: Connection, seg) -> None:
    if seg.seq == self.rcv_nxt:
        self.rcv_nxt = seqnum.add(self.rcv_nxt, len(seg.payload))
        self.rcv_off += len(seg.payload)
    self._ack_due = True


def _abort_without_rst(self: Connection, error) -> None:
    self._terminate(error)


def _abort_at_una(self: Connection, error) -> None:
    self._segment(RST | ACK, self.snd_una)
    self._terminate(error)


def _fin_before_data(orig):
    def queue_fin(self: Connection) -> None:
        if self.state is State.ESTABLISHED and self.unsent:
            self._segment(ACK | FIN, self.snd_nxt)
        orig(self)
    return queue_fin


def _listener_kept(orig):
    def remove(self: Host, sock) -> None:
        sock.accept_queue.clear()
    return remove


def _listen_disturbs(orig):
    def add(self: Host, sock) -> None:
        orig(self, sock)
        port = sock.local[1]
        for key, conn in list(self.conns.items()):
            if key[0] == port and conn.state is not State.CLOSED:
                self.apply(conn, conn.abort(self.clock.now()))
    return add


def _listen_refused(orig):
    def add(self: Host, sock) -> None:
        port = sock.local[1]
        if any(key[0] == port and conn.state in (State.SYN_SENT, State.SYN_RECEIVED)
               for key, conn in self.conns.items()):
            from stack.socket import error
            raise error(errno.EADDRINUSE)
        orig(self, sock)
    return add


MUTANTS = [
    mutant("close-sends-no-fin", [_T + "ESTABLISHED:close-call"],
           "CLOSE in ESTABLISHED enters FIN-WAIT-1 without ever sending a FIN",
           guard(C, "_queue_fin", _in(State.ESTABLISHED),
                 lambda self: setattr(self, "state", State.FIN_WAIT_1))),
    mutant("fin-before-queued-data", [_T + "ESTABLISHED:close-call"],
           "CLOSE sends a FIN at once, ahead of data still queued",
           method(C, "_queue_fin", _fin_before_data)),
    mutant("close-wait-close-sends-no-fin", [_T + "CLOSE-WAIT:close-call"],
           "CLOSE in CLOSE-WAIT enters LAST-ACK without sending a FIN",
           guard(C, "_queue_fin", _in(State.CLOSE_WAIT),
                 lambda self: setattr(self, "state", State.LAST_ACK))),
    mutant("second-close-sends-second-fin", [_T + "FIN-WAIT-1:close-call"],
           "a second CLOSE in FIN-WAIT-1 sends another FIN",
           guard(C, "_queue_fin", _in(State.FIN_WAIT_1), _second_fin)),
    mutant("syn-received-close-resets", [_T + "SYN-RECEIVED:close-call"],
           "CLOSE in SYN-RECEIVED sends a RST instead of a FIN",
           guard(C, "_queue_fin", _in(State.SYN_RECEIVED), lambda self: self._abort(None))),
    mutant("syn-sent-close-sends-rst", [_T + "SYN-SENT:close-call"],
           "CLOSE in SYN-SENT sends a RST before deleting the TCB",
           guard(C, "_queue_fin", _in(State.SYN_SENT), lambda self: (
               self._segment(RST, self.snd_nxt), self._terminate(None)))),
    mutant("abort-sends-no-rst", [_T + "ESTABLISHED:abort-call"],
           "ABORT in ESTABLISHED deletes the TCB without sending a RST",
           guard(C, "_abort", _in(State.ESTABLISHED), _abort_without_rst)),
    mutant("close-wait-abort-sends-no-rst", [_T + "CLOSE-WAIT:abort-call"],
           "ABORT in CLOSE-WAIT deletes the TCB without sending a RST",
           guard(C, "_abort", _in(State.CLOSE_WAIT), _abort_without_rst)),
    mutant("abort-rst-at-snd-una", [_T + "ESTABLISHED:abort-call"],
           "ABORT's RST carries SND.UNA instead of SND.NXT",
           guard(C, "_abort", lambda self, error: self.state is State.ESTABLISHED
                 and self.snd_una != self.snd_max, _abort_at_una)),
    mutant("listener-close-keeps-listening", [_T + "LISTEN:close-call"],
           "closing a listener leaves it accepting SYNs",
           method(Host, "remove_listener", _listener_kept)),
    mutant("listen-resets-connections", ["rfc9293:MUST-41", "rfc1122:4.2.2.18-a"],
           "a new LISTEN aborts the connections already using its port",
           method(Host, "add_listener", _listen_disturbs)),
    mutant("listen-refused-while-opening", ["rfc9293:MUST-42", "rfc1122:4.2.2.18-b"],
           "LISTEN fails while a connection on the port is in SYN-SENT or SYN-RECEIVED",
           method(Host, "add_listener", _listen_refused)),
    # the FIN steps
    mutant("fin-not-acked-in-established", [_T + "ESTABLISHED:fin"],
           "a FIN in ESTABLISHED enters CLOSE-WAIT but is never acknowledged",
           _fin_not_acked(State.ESTABLISHED)),
    mutant("fin-not-acked-in-fin-wait-2", [_T + "FIN-WAIT-2:fin"],
           "a FIN in FIN-WAIT-2 enters TIME-WAIT but is never acknowledged",
           _fin_not_acked(State.FIN_WAIT_2)),
    mutant("fin-not-acked-in-fin-wait-1", [_T + "FIN-WAIT-1:fin-our-fin-unacked"],
           "a FIN in FIN-WAIT-1 is never acknowledged",
           _fin_not_acked(State.FIN_WAIT_1)),
    mutant("fin-wait-2-fin-skips-time-wait", [_T + "FIN-WAIT-2:fin", "rfc9293:MUST-13",
                                              "rfc1122:4.2.2.13-d"],
           "a FIN in FIN-WAIT-2 deletes the TCB at once instead of entering TIME-WAIT",
           _fin_state(State.FIN_WAIT_2, State.CLOSED)),
    mutant("fin-wait-1-acked-fin-to-closing", [_T + "FIN-WAIT-1:fin-our-fin-acked"],
           "a FIN that also acknowledges our FIN leads to CLOSING, not TIME-WAIT",
           method(C, "_synchronized", _fin_and_ack_to_closing)),
    mutant("fin-wait-1-unacked-fin-to-time-wait", [_T + "FIN-WAIT-1:fin-our-fin-unacked"],
           "a FIN while our FIN is unacknowledged leads to TIME-WAIT, not CLOSING",
           _fin_state(State.FIN_WAIT_1, State.TIME_WAIT)),
    mutant("fin-reported-as-reset", ["rfc9293:MUST-12", "rfc1122:4.2.2.13-a", _T + "ESTABLISHED:fin"],
           "the peer's FIN is reported to the user as a reset",
           method(C, "_fin", _reported_as_reset)),
    mutant("reset-reported-as-close", ["rfc9293:MUST-12", "rfc1122:4.2.2.13-a",
                                       _T + "ESTABLISHED:rst-in-window"],
           "a RST in a synchronized state is reported to the user as a normal close",
           guard(C, "_reset_by_peer", lambda self: self.state is not State.SYN_RECEIVED,
                 lambda self: self._terminate(None))),
    mutant("ack-of-fin-ignored-in-fin-wait-1", [_T + "FIN-WAIT-1:ack-of-fin"],
           "the ACK of our FIN leaves FIN-WAIT-1 as it is",
           guard(C, "_ack_by_state", _in(State.FIN_WAIT_1))),
    mutant("ack-of-fin-ignored-in-closing", [_T + "CLOSING:ack-of-fin"],
           "the ACK of our FIN leaves CLOSING as it is",
           guard(C, "_ack_by_state", _in(State.CLOSING))),
    mutant("ack-of-fin-ignored-in-last-ack", [_T + "LAST-ACK:ack-of-fin"],
           "the ACK of our FIN leaves LAST-ACK as it is",
           guard(C, "_ack_by_state", _in(State.LAST_ACK))),
    mutant("text-dropped-in-fin-wait-1", [_T + "FIN-WAIT-1:data"],
           "text arriving in FIN-WAIT-1 is acknowledged but not delivered",
           guard(C, "_text", _in(State.FIN_WAIT_1), _ack_without_delivery)),
    mutant("text-dropped-in-fin-wait-2", [_T + "FIN-WAIT-2:data"],
           "text arriving in FIN-WAIT-2 is dropped, neither delivered nor acknowledged",
           guard(C, "_text", _in(State.FIN_WAIT_2))),
    mutant("fin-wait-2-drops-segments", [_T + "FIN-WAIT-2:ack"],
           "in FIN-WAIT-2 the ACK step drops every segment (so nothing after it is processed)",
           guard(C, "_ack", lambda self, seg: self.state is State.FIN_WAIT_2,
                 lambda self, seg: False)),
    mutant("ack-ignored-in-close-wait", [_T + "CLOSE-WAIT:ack"],
           "ACKs in CLOSE-WAIT do not acknowledge our data",
           guard(C, "_ack_advance", lambda self, seg, *rest, **kw: self.state is State.CLOSE_WAIT)),
    # TIME-WAIT
    mutant("time-wait-fin-not-acked", [_T + "TIME-WAIT:fin"],
           "the peer's FIN again in TIME-WAIT is not acknowledged",
           guard(C, "_ack_invalid", lambda self, seg: self.state is State.TIME_WAIT
                 and bool(seg.flags & FIN))),
    mutant("time-wait-fin-no-restart", [_T + "TIME-WAIT:fin"],
           "the peer's FIN again in TIME-WAIT does not restart the 2 MSL timer",
           guard(C, "_arm", lambda self, timer, delay: timer is Timer.TIME_WAIT
                 and Timer.TIME_WAIT in self.timers)),
    mutant("time-wait-too-short", ["rfc9293:MUST-13", "rfc1122:4.2.2.13-d"],
           "TIME-WAIT lasts 2 s (MSL of 1 s)", config(msl=1.0)),
    mutant("time-wait-never-ends", [_T + "TIME-WAIT:time-wait-timeout"],
           "the 2 MSL timeout does not delete the TCB",
           guard(C, "_on_time_wait", lambda self: True)),
    # data the user will not read (RFC 1122 4.2.2.13, RFC 9293 3.10.4)
    mutant("close-with-unread-data-sends-fin", ["rfc9293:SHLD-3", "rfc1122:4.2.2.13-c"],
           "CLOSE with unread received data sends a FIN instead of a RST",
           guard(C, "_abort", lambda self, error: self.orphan and error is None
                 and bool(self.recvq or self.reasm.blocks),
                 lambda self, error: (self.recvq.clear(), self.reasm.blocks.clear(),
                                      self._queue_fin()))),
    mutant("data-after-close-accepted", ["rfc9293:SHLD-3", "rfc1122:4.2.2.13-c"],
           "data arriving after CLOSE is acknowledged and thrown away, with no RST",
           guard(C, "_reset_and_close", lambda self, seg: self.orphan and bool(seg.payload),
                 lambda self, seg: (self._deliver(seg.payload), self.recvq.clear(),
                                    setattr(self, "_ack_due", True)))),
]
