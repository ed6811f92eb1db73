"""Mutants of congestion control (RFC 5681, RFC 1122 4.2.2.15, RFC 6582, RFC 6675) and of
what the send window allows (RFC 9293 3.8.6)."""

from __future__ import annotations

from stack import congestion, sack, seqnum
from stack.congestion import NewReno, Reno
from stack.connection import Connection
from stack.sack import SackRecovery

from harness.mutate.patching import after, config, guard, method, mutant

C = Connection
R = "rfc5681:"


def _ss_overgrows(orig):
    def grow(self: Reno, acked: int) -> None:
        if self.cwnd < self.ssthresh:
            self.cwnd += 2 * acked
        else:
            orig(self, acked)
    return grow


def _always_ss(orig):
    def grow(self: Reno, acked: int) -> None:
        self.cwnd += min(acked, self.mss)
    return grow


def _packet_counting(orig):
    def grow(self: Reno, acked: int) -> None:
        if self.cwnd < self.ssthresh:
            self.cwnd += self.mss
        else:
            orig(self, acked)
    return grow


def _ssthresh_halved_again(orig):
    def timeout(self: Reno, flight: int) -> None:
        if self.ssthresh < 1 << 30 and self.cwnd == self.mss:
            self.ssthresh = max(self.ssthresh // 2, 2 * self.mss)
        else:
            self.halve(flight)
        self.cwnd = self.mss
    return timeout


def _no_halving_on_dupack(orig):
    def dupack(self: NewReno, ack: int, flight: int, snd_max: int) -> bool:
        cc = self.window
        ssthresh, cwnd = cc.ssthresh, cc.cwnd
        entered = orig(self, ack, flight, snd_max)
        if entered:
            cc.ssthresh = max(ssthresh if ssthresh < 1 << 30 else cwnd, flight)
            cc.cwnd = cc.ssthresh + 3 * cc.mss
        return entered
    return dupack


def _no_plus_three(orig):
    def dupack(self: NewReno, ack: int, flight: int, snd_max: int) -> bool:
        entered = orig(self, ack, flight, snd_max)
        if entered:
            self.window.cwnd = self.window.ssthresh
        return entered
    return dupack


def _no_inflation(orig):
    def dupack(self: NewReno, ack: int, flight: int, snd_max: int) -> bool:
        if self.active:
            return False
        return orig(self, ack, flight, snd_max)
    return dupack


def _no_deflation(orig):
    def on_ack(self: NewReno, acked: int, ack: int, flight: int) -> bool:
        cwnd, active = self.window.cwnd, self.active
        partial = orig(self, acked, ack, flight)
        if active and not self.active:
            self.window.cwnd = cwnd
        return partial
    return on_ack


def _partial_ends_recovery(orig):
    def on_ack(self: NewReno, acked: int, ack: int, flight: int) -> bool:
        if self.active and not seqnum.ge(ack, self.recover):
            self.active = False
            self.window.cwnd = self.window.ssthresh
            return False
        return orig(self, acked, ack, flight)
    return on_ack


def _sack_no_reduction(orig):
    def enter(self: SackRecovery, una: int, top: int, flight: int) -> None:
        cwnd = self.window.cwnd
        orig(self, una, top, flight)
        self.window.cwnd = self.window.ssthresh = max(cwnd, flight)
    return enter


def _rwnd_ignored(orig):
    def size(self: Connection, budget: int | None = None) -> int:
        saved = self.snd_wnd
        self.snd_wnd = 1 << 30
        try:
            return orig(self, budget)
        finally:
            self.snd_wnd = saved
    return size


def _old_right_edge(orig):
    """A shrunk window is not taken: the sender keeps to the right edge it knew."""
    def take(self: Connection, seg, force: bool = False) -> None:
        edge = seqnum.add(self.snd_wl2, self.snd_wnd)
        orig(self, seg, force)
        if not force and seqnum.gt(edge, seqnum.add(seg.ack, self.snd_wnd)):
            self.snd_wnd = seqnum.diff(edge, seg.ack)
    return take


def _dupthresh(value: int):
    return (method(congestion, "DUPTHRESH", lambda orig: value),
            method(sack, "DUPTHRESH", lambda orig: value))


def _ignore_shrink_stall(orig):
    def expired(self: Connection) -> None:
        if self.snd_wnd and seqnum.gt(self.snd_nxt, seqnum.add(self.snd_una, self.snd_wnd)):
            self.rtt.expired()
            self._arm_retransmit()
            return
        orig(self)
    return expired


MUTANTS = [
    mutant("initial-window-20-segments", [R + "3.1-iw-upper-bound"],
           "the initial window is 20 segments", config(initial_window=20)),
    mutant("no-congestion-window", [R + "3-never-exceed-cwnd-rwnd", R + "3.1-use-ss-ca",
                                    "rfc1122:4.2.2.15-a", "rfc9293:MUST-19"],
           "cwnd is unlimited: only the peer's window limits sending",
           method(Reno, "__init__", lambda orig: lambda self, mss, iw: (
               orig(self, mss, iw), setattr(self, "cwnd", 1 << 30))[0])),
    mutant("slow-start-overgrows", [R + "3.1-ss-increment-bound", "rfc1122:4.2.2.15-a"],
           "slow start grows cwnd by twice the octets acknowledged", method(Reno, "grow", _ss_overgrows)),
    mutant("no-congestion-avoidance", [R + "3.1-ca-increment-limit", R + "3.1-ca-increment-per-rtt",
                                       "rfc1122:4.2.2.15-b"],
           "cwnd grows as in slow start above ssthresh too", method(Reno, "grow", _always_ss)),
    mutant("congestion-avoidance-frozen", [R + "3.1-ca-increment-per-rtt", "rfc1122:4.2.2.15-b"],
           "cwnd never grows above ssthresh",
           guard(Reno, "grow", lambda self, acked: self.cwnd >= self.ssthresh)),
    mutant("slow-start-counts-acks", [R + "3.1-abc-recommended"],
           "slow start adds one SMSS per ACK whatever it acknowledges (no byte counting)",
           method(Reno, "grow", _packet_counting)),
    mutant("rto-keeps-cwnd", [R + "3.1-rto-cwnd-loss-window"],
           "a timeout leaves cwnd as it was", method(Reno, "on_timeout", lambda orig: lambda self, flight:
                                                     self.halve(flight))),
    mutant("rto-keeps-ssthresh", [R + "3.1-rto-ssthresh", R + "3.1-ssthresh-reduce-on-congestion"],
           "a timeout sets cwnd to one segment but leaves ssthresh",
           method(Reno, "on_timeout", lambda orig: lambda self, flight: setattr(self, "cwnd", self.mss))),
    mutant("rto-halves-ssthresh-again", [R + "3.1-rto-ssthresh-hold"],
           "a repeated timeout halves ssthresh again", method(Reno, "on_timeout", _ssthresh_halved_again)),
    mutant("lost-syn-full-initial-window", [R + "3.1-lost-syn-iw-one"],
           "after a retransmitted SYN the initial window is the full IW",
           guard(Reno, "syn_lost", lambda self: True)),
    mutant("handshake-grows-cwnd", [R + "3.1-synack-no-cwnd-growth"],
           "the ACK of our SYN grows cwnd by one SMSS",
           after(C, "_established", lambda result, self: setattr(self.cc, "cwnd",
                                                                 self.cc.cwnd + self.cc.mss))),
    mutant("peer-window-ignored", [R + "3-never-exceed-cwnd-rwnd"],
           "new data is sent beyond the peer's window", method(C, "_new_data_size", _rwnd_ignored)),
    mutant("shrunk-window-not-taken", ["rfc9293:SHLD-15", "rfc9293:MUST-34", "rfc1122:4.2.2.16-b"],
           "when the peer shrinks its window, new data still goes up to the old right edge",
           method(C, "_take_window", _old_right_edge)),
    mutant("shrunk-window-stalls", ["rfc9293:SHLD-16", "rfc9293:MUST-34", "rfc1122:4.2.2.16-b"],
           "after the peer shrinks its window below what is in flight, nothing is retransmitted",
           method(C, "_on_retransmit", _ignore_shrink_stall)),
    mutant("pmtu-keeps-cwnd", [R + "3.1-pmtu-cwnd-reduce"],
           "a smaller path MTU leaves cwnd in octets as it was",
           method(Reno, "set_mss", lambda orig: lambda self, mss: setattr(self, "mss", mss))),
    mutant("no-restart-after-idle", [R + "4.1-restart-after-idle"],
           "cwnd is kept after an idle period longer than the RTO",
           guard(Reno, "on_idle", lambda self: True)),
    # fast retransmit and fast recovery (RFC 5681 3.2, RFC 6582, RFC 6675)
    mutant("no-fast-retransmit", [R + "3.2-use-fast-retransmit", R + "3.2-fr-retransmit-inflate"],
           "duplicate ACKs never trigger a retransmission (only the RTO does)",
           guard(NewReno, "on_dupack", lambda self, ack, flight, snd_max: not self.active,
                 lambda self, ack, flight, snd_max: False),
           guard(SackRecovery, "loss_detected", lambda self, una, smss: True,
                 lambda self, una, smss: False)),
    mutant("fast-retransmit-on-second-dupack", [R + "3.2-fr-retransmit-inflate",
                                                R + "3.2-use-fast-retransmit"],
           "fast retransmit on the second duplicate ACK (DupThresh 2)", *_dupthresh(2)),
    mutant("fast-retransmit-keeps-ssthresh", [R + "3.2-fr-ssthresh",
                                              R + "3.1-ssthresh-reduce-on-congestion"],
           "entering fast recovery does not lower ssthresh", method(NewReno, "on_dupack",
                                                                   _no_halving_on_dupack)),
    mutant("fast-recovery-no-three-segments", [R + "3.2-fr-retransmit-inflate"],
           "entering fast recovery sets cwnd = ssthresh, without the 3*SMSS",
           method(NewReno, "on_dupack", _no_plus_three)),
    mutant("fast-recovery-no-inflation", [R + "3.2-fr-inflate-per-dupack", R + "3.2-fr-send-new-data"],
           "further duplicate ACKs in fast recovery do not inflate cwnd",
           method(NewReno, "on_dupack", _no_inflation)),
    mutant("fast-recovery-no-deflation", [R + "3.2-fr-deflate"],
           "the ACK ending fast recovery leaves cwnd inflated", method(NewReno, "on_ack", _no_deflation)),
    mutant("no-limited-transmit", [R + "3.2-limited-transmit"],
           "the first two duplicate ACKs send no new data",
           guard(NewReno, "limited_transmit_budget", lambda self, flight: True, lambda self, flight: 0),
           guard(SackRecovery, "limited_transmit_pipe", lambda self, una, top: True,
                 lambda self, una, top: 1 << 30)),
    mutant("partial-ack-ends-recovery", [R + "4.3-advanced-loss-recovery"],
           "a partial ACK ends fast recovery without retransmitting (Reno, not NewReno)",
           method(NewReno, "on_ack", _partial_ends_recovery)),
    mutant("sack-recovery-keeps-cwnd", [R + "4.3-recovery-halve-per-rtt",
                                        R + "3.1-ssthresh-reduce-on-congestion"],
           "SACK loss recovery keeps cwnd and ssthresh at the flight size",
           method(SackRecovery, "enter", _sack_no_reduction)),
]
