"""Mutants of the receiver's acknowledgments and window (RFC 1122 4.2.3.2-4.2.3.3, RFC 5681
4.2, RFC 9293 3.8.6) and of the sender's segment sizes (Nagle, SWS, PSH)."""

from __future__ import annotations

from stack import seqnum
from stack.connection import Connection
from stack.events import Timer
from stack.wire import ACK, PSH

from harness.mutate.patching import config, guard, method, mutant

C = Connection
R = "rfc5681:"


def _ack_every_third(orig):
    """The ACK that two full-sized segments make due waits for a third (or the timer)."""
    def soon(self: Connection, data_len: int) -> None:
        quick = self.quick_acks and not self.pingpong
        due = self._ack_due
        orig(self, data_len)
        if self._ack_due and not (due or quick) and self.pending_ack_bytes < 3 * self.rcv_mss:
            self._ack_due = False
            if Timer.DELACK not in self.timers:
                self._arm(Timer.DELACK, self.cfg.delayed_ack)
    return soon


def _delack_restarted(orig):
    def soon(self: Connection, data_len: int) -> None:
        orig(self, data_len)
        if Timer.DELACK in self.timers and not self._ack_due:
            self._arm(Timer.DELACK, self.cfg.delayed_ack)
    return soon


def _no_quick_ack_for(gap: bool):
    """Out-of-order data (gap=False) or data filling a gap (gap=True) waits for the timer."""
    def build(orig):
        def text(self: Connection, seg) -> None:
            holes = bool(self.reasm.blocks)
            in_order = seg.seq == self.rcv_nxt
            due = self._ack_due
            orig(self, seg)
            delayed = (holes and in_order) if gap else not in_order
            if delayed and self._ack_due and not due:
                self._ack_due = False
                if Timer.DELACK not in self.timers:
                    self._arm(Timer.DELACK, self.cfg.delayed_ack)
        return text
    return build


def _two_acks(orig):
    def send(self: Connection) -> None:
        orig(self)
        orig(self)
    return send


def _ooo_dropped(orig):
    def text(self: Connection, seg) -> None:
        if seg.seq != self.rcv_nxt:
            self._ack_due = True
            return
        orig(self, seg)
    return text


def _ack_before_queue(orig):
    def text(self: Connection, seg) -> None:
        if self.reasm.blocks and seg.seq == self.rcv_nxt:
            early = self._segment(ACK)
            early.ack = seqnum.add(self.rcv_nxt, len(seg.payload))
        orig(self, seg)
    return text


def _window_retracts(orig):
    """The window offered (receiver SWS avoidance kept) is cut to the free buffer space when
    that is smaller, so buffer taken by out-of-order data pulls the right edge left."""
    def field(self: Connection) -> int:
        value = orig(self)
        free = self._free_space() >> self.neg.rcv_scale
        if free < value:
            value = free
            self.rcv_adv = seqnum.add(self.rcv_nxt, value << self.neg.rcv_scale)
        return value
    return field


def _with_nodelay(value: bool):
    def build(orig):
        def allows(self: Connection, size: int, unsent: int, in_flight: int) -> bool:
            saved = self.opts.nodelay
            self.opts.nodelay = value
            try:
                return orig(self, size, unsent, in_flight)
            finally:
                self.opts.nodelay = saved
        return allows
    return build


def _half_segments(orig):
    def size(self: Connection, budget: int | None = None) -> int:
        return min(orig(self, budget), max(self.mss // 2, 1))
    return size


def _no_push(orig):
    def transmit(self: Connection, flags: int, payload: bytes, seq: int | None = None) -> None:
        orig(self, flags & ~PSH, payload, seq)
    return transmit


MUTANTS = [
    mutant("delayed-ack-600ms", ["rfc9293:MUST-40", "rfc1122:4.2.3.2-b", R + "4.2-ack-within-500ms",
                                 R + "4.2-no-excessive-delay"],
           "the delayed-ACK timer is 600 ms", config(delayed_ack=0.6)),
    mutant("no-delayed-ack", ["rfc9293:SHLD-18", "rfc1122:4.2.3.2-a", R + "4.2-use-delayed-ack"],
           "every data segment is acknowledged at once (no delayed ACK)",
           method(C, "_ack_soon", lambda orig: lambda self, data_len: setattr(self, "_ack_due", True))),
    mutant("delayed-ack-restarted-per-segment", ["rfc9293:MUST-40", "rfc1122:4.2.3.2-b",
                                                 R + "4.2-ack-within-500ms"],
           "each new data segment restarts the delayed-ACK timer",
           method(C, "_ack_soon", _delack_restarted)),
    mutant("ack-every-third-segment", ["rfc9293:SHLD-19", "rfc1122:4.2.3.2-c",
                                       R + "4.2-ack-every-second-segment"],
           "a delayed ACK waits for three full-sized segments instead of two",
           method(C, "_ack_soon", _ack_every_third)),
    mutant("data-never-acked", ["rfc793:transition:ESTABLISHED:data", R + "4.2-ack-within-500ms"],
           "in-order data is delivered but never acknowledged by itself",
           guard(C, "_ack_soon", lambda self, data_len: True)),
    mutant("out-of-order-ack-delayed", [R + "3.2-immediate-dupack", R + "4.2-ooo-ack-immediately"],
           "out-of-order data is acknowledged only when the delayed-ACK timer fires",
           method(C, "_text", _no_quick_ack_for(gap=False))),
    mutant("gap-fill-ack-delayed", [R + "3.2-immediate-ack-gap-fill"],
           "data filling a gap is acknowledged only when the delayed-ACK timer fires",
           method(C, "_text", _no_quick_ack_for(gap=True))),
    mutant("two-acks-per-segment", [R + "4.2-max-one-ack-per-segment", "rfc9293:MUST-58"],
           "every ACK is sent twice", method(C, "_send_ack", _two_acks)),
    mutant("out-of-order-data-dropped", ["rfc9293:SHLD-31", "rfc1122:4.2.2.20-a"],
           "segments beyond RCV.NXT are dropped (acknowledged, not queued)",
           method(C, "_text", _ooo_dropped)),
    mutant("ack-before-queue-processed", ["rfc9293:MUST-59", "rfc1122:4.2.2.20-b"],
           "a segment filling a gap is acknowledged before the queued segments behind it",
           method(C, "_text", _ack_before_queue)),
    mutant("no-receiver-sws-avoidance", ["rfc9293:MUST-39", "rfc1122:4.2.3.3-a"],
           "the window offered grows by any amount the application frees",
           method(C, "_window_to_offer", lambda orig: lambda self, current=None: self._free_space())),
    mutant("window-retracts", ["rfc9293:SHLD-14", "rfc1122:4.2.2.16-a"],
           "the right window edge moves left when the buffer fills (out-of-order data takes its space)",
           method(C, "_window_field", _window_retracts)),
    mutant("no-sender-sws-avoidance", ["rfc9293:MUST-38", "rfc1122:4.2.3.4-a"],
           "small segments go whenever the windows allow (no sender SWS avoidance or Nagle)",
           method(C, "_sws_allows", lambda orig: lambda self, size, unsent, in_flight: True)),
    mutant("no-nagle", ["rfc9293:SHLD-7", "rfc1122:4.2.3.4-b"],
           "Nagle's algorithm is off on every connection", method(C, "_sws_allows", _with_nodelay(True))),
    mutant("nodelay-ignored", ["rfc9293:MUST-17", "rfc1122:4.2.3.4-c"],
           "TCP_NODELAY does not turn Nagle's algorithm off", method(C, "_sws_allows", _with_nodelay(False))),
    mutant("no-push-flag", ["rfc9293:MUST-61", "rfc1122:4.2.2.2-e"],
           "PSH is never set, not even on the segment that empties the send queue",
           method(C, "_transmit", _no_push)),
    mutant("data-held-without-override", ["rfc9293:MUST-60", "rfc1122:4.2.2.2-d"],
           "data that Nagle/SWS holds back is never sent by the override timeout",
           guard(C, "_on_persist", lambda self: self.snd_wnd > 0)),
    mutant("half-size-segments", ["rfc9293:SHLD-28", "rfc1122:4.2.2.2-g", "rfc9293:SHLD-27",
                                  "rfc1122:4.2.2.2-b"],
           "data segments carry at most half an MSS", method(C, "_new_data_size", _half_segments)),
]
