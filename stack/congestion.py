"""Congestion control: the RFC 5681 window, and NewReno loss recovery (RFC 6582) for
connections without SACK.

Theory of operation: `Reno` holds cwnd and ssthresh in octets: it grows them as data is
acknowledged (slow start, congestion avoidance), cuts them on a loss or a timeout, and restarts
after idle. It never sends anything and does not know how losses are found. Two recovery
algorithms drive it: `NewReno` here, counting duplicate ACKs as RFC 5681 2 defines them, and,
when SACK was agreed, `sack.SackRecovery` (RFC 6675). Both answer the same questions for the
connection: whether it is recovering (`active`), and what an RTO means for the recovery
(`on_timeout`). Whatever `net.ipv4.tcp_congestion_control` names (reno, cubic, bbr...), this
is the algorithm that runs.

Sequence numbers kept here (`recover`) are, like SND.MAX, the number *after* the octet the
RFC names: RFC 6582's recover ("the highest sequence number transmitted") is `recover - 1`.
"""

from __future__ import annotations

from . import seqnum

DUPTHRESH = 3   # RFC 5681 3.2, RFC 6675 2


def initial_window(mss: int, segments: int | None) -> int:
    """IW: `segments` * MSS if configured, else RFC 5681 3.1 min(4*MSS, max(2*MSS, 4380))."""
    if segments is not None:
        return segments * mss
    return min(4 * mss, max(2 * mss, 4380))


class Reno:
    """cwnd and ssthresh (RFC 5681 3.1)."""

    def __init__(self, mss: int, iw_segments: int | None) -> None:
        self.mss = mss
        self.iw_segments = iw_segments
        self.cwnd = initial_window(mss, iw_segments)
        self.ssthresh = 1 << 30          # RFC 5681 3.1: arbitrarily high at first
        self.partial_acked = 0           # octets acked in CA since the last cwnd increase

    def syn_lost(self) -> None:
        """RFC 5681 3.1: if the SYN or SYN-ACK was lost, the initial window MUST be one
        segment of at most SMSS octets."""
        self.cwnd = self.mss

    def set_mss(self, mss: int) -> None:
        """A new effective MSS: keep cwnd in the same number of segments."""
        self.cwnd = max(mss, self.cwnd * mss // self.mss)
        self.mss = mss

    def grow(self, acked: int) -> None:
        """New data acknowledged outside loss recovery: slow start below ssthresh (RFC 5681
        3.1 (2)), else about one SMSS per round trip (3.1 (3))."""
        if self.cwnd < self.ssthresh:
            self.cwnd += min(acked, self.mss)
        else:
            self.partial_acked += acked
            if self.partial_acked >= self.cwnd:
                self.partial_acked -= self.cwnd
                self.cwnd += self.mss

    def halve(self, flight: int) -> int:
        """A loss was detected: ssthresh = max(FlightSize / 2, 2*SMSS) (RFC 5681 3.1 (4));
        returns it."""
        self.ssthresh = max(flight // 2, 2 * self.mss)
        self.partial_acked = 0
        return self.ssthresh

    def on_timeout(self, flight: int) -> None:
        """RFC 5681 3.1 (4) and 3.2 (5): ssthresh from flight size, cwnd to the loss window."""
        self.halve(flight)
        self.cwnd = self.mss

    def on_idle(self) -> None:
        """RFC 5681 4.1: after an idle period longer than RTO, cwnd <- min(IW, cwnd)."""
        self.cwnd = min(self.cwnd, initial_window(self.mss, self.iw_segments))


class NewReno:
    """Fast retransmit and fast recovery (RFC 5681 3.2) with NewReno's partial ACKs (RFC 6582
    3.2), for a connection without SACK."""

    def __init__(self, window: Reno, iss: int, full_ack_option: int = 1) -> None:
        self.window = window
        self.full_ack_option = full_ack_option
        self.dupacks = 0
        self.active = False
        self.recover = seqnum.add(iss, 1)   # RFC 6582 3.2 step 1: recover = ISS
        self.limited = 0        # octets sent by limited transmit since the last new ACK

    def limited_transmit_budget(self, flight: int) -> int:
        """RFC 5681 3.2 / RFC 3042: on the first and second duplicate ACKs one segment of new
        data may go if FlightSize stays at most cwnd + 2*SMSS (and the peer's window allows,
        which the sender checks); cwnd does not change. The octets that may go now (0: none)."""
        if self.active or self.dupacks not in (1, 2):
            return 0
        cc = self.window
        return max(0, min(cc.cwnd + 2 * cc.mss - flight, cc.mss))

    def on_ack(self, acked: int, ack: int, flight: int) -> bool:
        """New data acknowledged. Returns True for a partial ACK (RFC 6582 3.2 step 3): the
        caller then retransmits the first unacknowledged segment."""
        self.dupacks = 0
        self.limited = 0
        cc = self.window
        if not self.active:
            cc.grow(acked)
            return False
        if seqnum.ge(ack, self.recover):
            # Full acknowledgment (all up to and including recover): deflate, by option (1)
            # min(ssthresh, max(FlightSize, SMSS) + SMSS) or option (2) ssthresh, and leave
            # fast recovery.
            cc.cwnd = (min(cc.ssthresh, max(flight, cc.mss) + cc.mss) if self.full_ack_option == 1
                       else cc.ssthresh)
            self.active = False
            return False
        # Partial acknowledgment: deflate by the amount acked, add back one SMSS if that was
        # at least one SMSS, and stay in fast recovery.
        cc.cwnd = max(cc.cwnd - acked + (cc.mss if acked >= cc.mss else 0), cc.mss)
        return True

    def on_dupack(self, ack: int, flight: int, snd_max: int) -> bool:
        """A duplicate ACK (RFC 5681 2). Returns True when it is the third and the ACK covers
        more than recover (RFC 6582 3.2 step 2): fast retransmit."""
        cc = self.window
        if self.active:
            cc.cwnd += cc.mss                       # RFC 5681 3.2 step 4: inflate
            return False
        self.dupacks += 1
        if self.dupacks != DUPTHRESH or not seqnum.ge(ack, self.recover):
            return False
        # RFC 5681 3.2 steps 2-3, recover = the highest sequence number sent (RFC 6582);
        # what limited transmit sent is not part of FlightSize here (RFC 5681 3.2 step 2).
        cc.cwnd = cc.halve(flight - self.limited) + DUPTHRESH * cc.mss
        self.recover = snd_max
        self.active = True
        return True

    def on_timeout(self, snd_max: int) -> None:
        """RFC 6582 3.2 step 4: recover = the highest sequence number sent; fast recovery
        ends."""
        self.recover = snd_max
        self.active = False
        self.dupacks = 0
        self.limited = 0
