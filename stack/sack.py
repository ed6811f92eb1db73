"""SACK-based loss recovery (RFC 6675) on a scoreboard of SACKed ranges (RFC 2018).

Theory of operation: `Scoreboard` is RFC 6675 section 3's record of which octets above SND.UNA
the receiver holds, kept as sorted disjoint ranges; it does Update(), IsLost() and SetPipe()
of section 4 range by range, not octet by octet. IsLost() depends only on what is SACKed
above an octet, so every octet of one un-SACKed span (a hole) is lost or not alike: `holes`
lists the spans with that verdict, and pipe and NextSeg() read them. `SackRecovery` holds the
state of section 5 (DupAcks, RecoveryPoint, HighRxt, RescueRxt) and decides, for each ACK,
between nothing, limited transmit and entering recovery; in recovery `next_seg` names what to
send while cwnd - pipe >= SMSS. The window itself (cwnd, ssthresh) is `congestion.Reno`'s.
Nothing here sends: the connection asks and transmits.

Sequence numbers: RFC 6675 names octets (HighACK is the highest octet cumulatively
acknowledged, HighData the highest sent). Every edge here is the sequence number *after* the
octet, like SND.UNA and SND.MAX: HighACK + 1 = SND.UNA, HighData + 1 = SND.MAX, and
`recovery_point`, `high_rxt` and `rescue_rxt` are one past the RFC's RecoveryPoint, HighRxt
and RescueRxt.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import seqnum
from .congestion import DUPTHRESH, Reno


@dataclass(frozen=True)
class Hole:
    """An un-SACKed span [left, right) and whether IsLost() holds for its octets."""

    left: int
    right: int
    lost: bool


class Scoreboard:
    """SACKed ranges above SND.UNA, as sorted disjoint (left, right) sequence pairs."""

    def __init__(self) -> None:
        self.ranges: list[tuple[int, int]] = []

    def clear(self) -> None:
        self.ranges = []

    def sacked_octets(self) -> int:
        return sum(seqnum.diff(right, left) for left, right in self.ranges)

    def update(self, blocks: list[tuple[int, int]], una: int, top: int) -> bool:
        """Update() (RFC 6675 4): merge the reported blocks and forget what lies below `una`.
        A block not inside [una, top] is ignored (RFC 2018 4: SACK is advisory, and a block
        beyond what was sent is bogus). Returns True if a block SACKed octets that were
        neither acknowledged nor SACKed before: the ACK is then a duplicate acknowledgment as
        RFC 6675 2 defines it, whatever its cumulative ACK and window say."""
        if not blocks and not self.ranges:
            return False
        limit = seqnum.diff(top, una)
        spans = [(max(seqnum.diff(left, una), 0), seqnum.diff(right, una))
                 for left, right in self.ranges]
        spans = [(lo, hi) for lo, hi in spans if hi > 0]
        before = sum(hi - lo for lo, hi in spans)
        spans += [(seqnum.diff(left, una), seqnum.diff(right, una)) for left, right in blocks
                  if 0 <= seqnum.diff(left, una) < seqnum.diff(right, una) <= limit]
        merged: list[list[int]] = []
        for lo, hi in sorted(spans):
            if merged and lo <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        self.ranges = [(seqnum.add(una, lo), seqnum.add(una, hi)) for lo, hi in merged]
        return sum(hi - lo for lo, hi in merged) > before

    def sacked_end(self, seq: int) -> int:
        """`seq` itself if it is not SACKed, else the end of the range holding it."""
        for left, right in self.ranges:
            if seqnum.within(seq, left, seqnum.diff(right, left)):
                return right
        return seq

    def next_left(self, seq: int) -> int | None:
        """The left edge of the first SACKed range above `seq`, if any."""
        for left, _ in self.ranges:
            if seqnum.gt(left, seq):
                return left
        return None

    def is_lost(self, seq: int, smss: int) -> bool:
        """IsLost(SeqNum) (RFC 6675 4): DupThresh discontiguous SACKed ranges above `seq`, or
        more than (DupThresh - 1) * SMSS octets SACKed above it."""
        above = [(left, right) for left, right in self.ranges if seqnum.gt(left, seq)]
        octets = sum(seqnum.diff(right, left) for left, right in above)
        return len(above) >= DUPTHRESH or octets > (DUPTHRESH - 1) * smss

    def holes(self, una: int, top: int, smss: int) -> list[Hole]:
        """The un-SACKed spans from `una` to `top` in order, each with IsLost()'s verdict;
        the span above the highest SACKed octet (if any) is never lost."""
        out: list[Hole] = []
        end, octets = top, 0
        for count, (left, right) in enumerate(reversed(self.ranges), start=1):
            if seqnum.gt(end, right):
                out.append(Hole(right, end, self._lost(count - 1, octets, smss)))
            octets += seqnum.diff(right, left)
            end = left
        if seqnum.gt(end, una):
            out.append(Hole(una, end, self._lost(len(self.ranges), octets, smss)))
        out.reverse()
        return out

    @staticmethod
    def _lost(ranges_above: int, octets_above: int, smss: int) -> bool:
        return ranges_above >= DUPTHRESH or octets_above > (DUPTHRESH - 1) * smss

    def pipe(self, una: int, top: int, high_rxt: int, smss: int) -> int:
        """SetPipe() (RFC 6675 4): for each un-SACKed octet from `una` to `top`, one if it is
        not lost (a) and one more if it was retransmitted, i.e. lies below `high_rxt` (b)."""
        total = 0
        for hole in self.holes(una, top, smss):
            size = seqnum.diff(hole.right, hole.left)
            if not hole.lost:
                total += size
            total += min(max(seqnum.diff(high_rxt, hole.left), 0), size)
        return total


class SackRecovery:
    """RFC 6675 section 5: duplicate ACKs, limited transmit, and loss recovery by NextSeg()."""

    def __init__(self, window: Reno, iss: int) -> None:
        self.window = window
        self.board = Scoreboard()
        self.dupacks = 0
        self.active = False
        self.recovery_point = seqnum.add(iss, 1)   # none yet: any cumulative ACK is beyond it
        self.high_rxt = self.recovery_point
        self.rescue_rxt: int | None = None
        self.limited = 0        # octets sent by limited transmit since the last cumulative ACK

    def on_ack(self, blocks: list[tuple[int, int]], ack: int, una: int, top: int) -> bool:
        """An acceptable ACK (`una` is SND.UNA before it, `top` SND.MAX). Updates the
        scoreboard, counts it as a duplicate or not, and leaves recovery at a cumulative ACK
        covering RecoveryPoint (5 (A)). Returns True if it is a duplicate ACK (RFC 6675 2)
        outside recovery: the caller then asks `loss_detected` to choose between entering
        recovery and limited transmit."""
        advanced = seqnum.gt(ack, una)
        duplicate = self.board.update(blocks, ack if advanced else una, top)
        if advanced:
            self.dupacks = 0            # "If the incoming ACK is a cumulative acknowledgment"
            self.limited = 0
        if self.active:
            if seqnum.ge(ack, self.recovery_point):
                self.active = False     # (A); the scoreboard above HighACK is kept
            return False
        if duplicate:
            self.dupacks += 1
        return duplicate

    def loss_detected(self, una: int, smss: int) -> bool:
        """Section 5 steps (1) and (2) for a duplicate ACK: DupAcks >= DupThresh, or
        IsLost(HighACK + 1). A new recovery may not begin before the cumulative ACK reaches
        the last RecoveryPoint (5, and 5.1 after an RTO)."""
        if not seqnum.ge(una, self.recovery_point):
            return False
        return self.dupacks >= DUPTHRESH or self.board.is_lost(una, smss)

    def limited_transmit_pipe(self, una: int, top: int) -> int:
        """Step (3): HighRxt = HighACK, then SetPipe()."""
        self.high_rxt = una
        return self.board.pipe(una, top, una, self.window.mss)

    def enter(self, una: int, top: int, flight: int) -> None:
        """Step (4): RecoveryPoint = HighData, ssthresh = cwnd = FlightSize / 2 (at least
        2*SMSS, RFC 5681 3.1 (4)), where FlightSize leaves out what limited transmit sent
        (4.2). The caller retransmits from HighACK + 1 (4.3) and then calls `first_resent`."""
        self.recovery_point = top
        self.window.cwnd = self.window.halve(flight - self.limited)
        self.active = True
        self.high_rxt = una
        self.limited = 0

    def first_resent(self, end: int) -> None:
        """Step (4.3): HighRxt and RescueRxt after the first retransmission."""
        self.high_rxt = self.rescue_rxt = end

    def pipe(self, una: int, top: int) -> int:
        return self.board.pipe(una, top, self.high_rxt, self.window.mss)

    def next_seg(self, una: int, top: int, new_data: bool) -> tuple[int, int] | None:
        """NextSeg() (RFC 6675 4): the range [start, end) to retransmit now, or None when
        rule (2) applies (`new_data`: there is unsent data the peer's window takes, which the
        caller sends) or when nothing may be sent (rule (5)). Rules (1) and (3) take the first
        hole at or above HighRxt and below the highest SACKed octet: rule (1) if it is lost,
        rule (3) if not and there is no new data; as IsLost() only weakens going up, no later
        hole can be lost when that one is not. Rule (4) is the rescue retransmission, once
        per recovery, of the highest un-SACKed octets. A range never runs into SACKed octets
        and is at most SMSS long. HighRxt and RescueRxt are updated as (C.2) and rule (4) say,
        on the understanding that the caller sends the whole range."""
        smss = self.window.mss
        holes = self.board.holes(una, top, smss)
        below_sacked = holes[:-1] if holes and holes[-1].right == top else holes
        for hole in below_sacked:
            if seqnum.gt(hole.right, self.high_rxt):
                if not hole.lost and new_data:
                    return None
                start = hole.left if seqnum.ge(hole.left, self.high_rxt) else self.high_rxt
                end = hole.right if seqnum.diff(hole.right, start) <= smss \
                    else seqnum.add(start, smss)
                self.high_rxt = end
                return start, end
        if new_data or not holes:
            return None
        if self.rescue_rxt is None or seqnum.gt(una, self.rescue_rxt):
            last = holes[-1]
            start = last.left if seqnum.diff(last.right, last.left) <= smss \
                else seqnum.add(last.right, -smss)
            self.rescue_rxt = self.recovery_point
            return start, last.right
        return None

    def on_timeout(self, top: int) -> None:
        """RFC 6675 5.1: an RTO sets RecoveryPoint = HighData and ends recovery; the
        scoreboard is forgotten, as RFC 2018 8 advises (the receiver may have reneged), and
        what is SACKed afterwards is used again."""
        self.recovery_point = top
        self.active = False
        self.dupacks = 0
        self.board.clear()
