"""Round-trip time estimation and the retransmission timeout (RFC 6298).

Theory of operation: `RttEstimator` turns RTT samples into SRTT, RTTVAR and RTO with the
formulas of RFC 6298 section 2, clamps RTO to [rto_min, rto_max], and doubles it on each
timer expiry (section 5.5) until a fresh sample arrives. Which segments may be sampled (Karn's
algorithm, timestamps) is the connection's decision; this class only does the arithmetic.
"""

from __future__ import annotations

from .config import Config


class RttEstimator:
    ALPHA = 1 / 8   # RFC 6298 2.3
    BETA = 1 / 4
    K = 4

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.base_rto = cfg.rto_initial     # RFC 6298 2.1: 1 second before any sample
        self.backoff = 0                    # timer expiries since the last sample

    @property
    def rto(self) -> float:
        """The current timeout: the computed RTO doubled once per backoff, at most rto_max."""
        return min(self.base_rto * (2 ** self.backoff), self.cfg.rto_max)

    def sample(self, rtt: float) -> None:
        """Take one measurement R (RFC 6298 2.2 for the first, 2.3 after)."""
        rtt = max(rtt, 0.0)
        if self.srtt is None:
            self.srtt = rtt
            self.rttvar = rtt / 2
        else:
            self.rttvar = (1 - self.BETA) * self.rttvar + self.BETA * abs(self.srtt - rtt)
            self.srtt = (1 - self.ALPHA) * self.srtt + self.ALPHA * rtt
        rto = self.srtt + max(self.cfg.clock_granularity, self.K * self.rttvar)
        # RFC 6298 2.4 (round up to rto_min) and 2.5 (a maximum may be placed on RTO).
        self.base_rto = min(max(rto, self.cfg.rto_min), self.cfg.rto_max)
        self.backoff = 0

    def expired(self) -> None:
        """RFC 6298 5.5: back off the timer (RTO <- RTO * 2)."""
        if self.rto < self.cfg.rto_max:
            self.backoff += 1

    def fall_back(self) -> None:
        """RFC 6298 5.7: the SYN timed out and no sample exists, so data starts with RTO 3 s."""
        if self.srtt is None:
            self.base_rto = max(self.base_rto, 3.0)
        self.backoff = 0
