"""Congestion control: RFC 5681 slow start and congestion avoidance, with NewReno recovery
(RFC 6582).

Theory of operation: `Reno` holds cwnd and ssthresh in octets and is told about events by the
connection: new data acknowledged, a duplicate ACK, a retransmission timeout, an idle restart.
It answers the questions the sender asks: how many octets may be in flight, and whether a
duplicate ACK calls for a fast retransmit. It never sends anything itself. Whatever
`net.ipv4.tcp_congestion_control` names (reno, cubic, bbr...), this is the algorithm that runs.
"""

from __future__ import annotations

from . import seqnum

DUPTHRESH = 3   # RFC 5681 3.2


def initial_window(mss: int, segments: int | None) -> int:
    """IW: `segments` * MSS if configured, else RFC 5681 3.1 min(4*MSS, max(2*MSS, 4380))."""
    if segments is not None:
        return segments * mss
    return min(4 * mss, max(2 * mss, 4380))


class Reno:
    def __init__(self, mss: int, iw_segments: int | None) -> None:
        self.mss = mss
        self.iw_segments = iw_segments
        self.cwnd = initial_window(mss, iw_segments)
        self.ssthresh = 1 << 30          # RFC 5681 3.1: arbitrarily high at first
        self.dupacks = 0
        self.recover: int | None = None  # RFC 6582: SND.MAX when recovery began
        self.partial_acked = 0           # octets acked in CA since the last cwnd increase

    @property
    def in_recovery(self) -> bool:
        return self.recover is not None

    def syn_lost(self) -> None:
        """RFC 5681 3.1: if the SYN or SYN-ACK was lost, the initial window MUST be one
        segment of at most SMSS octets."""
        self.cwnd = self.mss

    def set_mss(self, mss: int) -> None:
        """A new effective MSS: keep cwnd in the same number of segments."""
        self.cwnd = max(mss, self.cwnd * mss // self.mss)
        self.mss = mss

    def on_ack(self, acked: int, ack: int, flight: int) -> bool:
        """New data acknowledged. Returns True for a NewReno partial ACK (RFC 6582 3.2 step 5):
        the caller then retransmits the first unacknowledged segment."""
        self.dupacks = 0
        if self.recover is not None:
            if seqnum.ge(ack, self.recover):
                # RFC 6582 3.2 step 3 (full ACK: everything up to and including the highest
                # octet sent when recovery began, i.e. SND.MAX then): deflate, option (2).
                self.cwnd = max(min(self.ssthresh, flight + self.mss), self.mss)
                self.recover = None
                return False
            # Step 5: partial ACK; deflate by the amount acked, add back one MSS if that was
            # at least one MSS.
            self.cwnd = max(self.cwnd - acked + (self.mss if acked >= self.mss else 0), self.mss)
            return True
        if self.cwnd < self.ssthresh:
            self.cwnd += min(acked, self.mss)       # RFC 5681 3.1 (3.2): slow start
        else:
            self.partial_acked += acked             # RFC 5681 3.1 (3.3): about 1 MSS per RTT
            if self.partial_acked >= self.cwnd:
                self.partial_acked -= self.cwnd
                self.cwnd += self.mss
        return False

    def on_dupack(self, flight: int, snd_max: int) -> bool:
        """A duplicate ACK (RFC 5681 2). Returns True when it is the third: fast retransmit."""
        if self.recover is not None:
            self.cwnd += self.mss                   # RFC 5681 3.2 step 4: inflate
            return False
        self.dupacks += 1
        if self.dupacks < DUPTHRESH:
            return False
        # RFC 5681 3.2 steps 2-3 with RFC 6582 3.2 step 2: remember `recover`.
        self.ssthresh = max(flight // 2, 2 * self.mss)
        self.cwnd = self.ssthresh + DUPTHRESH * self.mss
        self.recover = snd_max
        return True

    def on_timeout(self, flight: int) -> None:
        """RFC 5681 3.1 (4) and 3.2 (5): ssthresh from flight size, cwnd to the loss window."""
        self.ssthresh = max(flight // 2, 2 * self.mss)
        self.cwnd = self.mss
        self.dupacks = 0
        self.recover = None
        self.partial_acked = 0

    def on_idle(self) -> None:
        """RFC 5681 4.1: after an idle period longer than RTO, cwnd <- min(IW, cwnd)."""
        self.cwnd = min(self.cwnd, initial_window(self.mss, self.iw_segments))
