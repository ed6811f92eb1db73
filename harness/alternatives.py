"""What the RFCs leave open, played: optional segments, `either` branches, flights, and
assertions that must come true inside a window. A mixin of the Runner (harness/runner.py),
whose queue, clock, matching and reporting it uses.

Theory of operation, all deterministic given what the target sends:
- `>?` takes the next outbound segment if it matches the line, fields and time; otherwise
  it takes nothing (the segment stays for the next line) and the timeline goes on.
- `either`: every branch but at most one starts with an expected segment. The runner waits
  for the target's next segment until the latest of those lines' windows closes. The first
  branch, in written order, whose line matches it is taken. No segment by then: the one
  branch that starts otherwise is taken (or the case fails). A segment that matches no
  branch fails the case with each branch's difference.
- A flight takes consecutive new-data segments from its start (each at most `mss`) until
  its end is reached or its window closes, then checks the count and where it ended.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.model import ANY, AssertEvent, EitherEvent, FlightEvent, PacketEvent
from harness.peer import MOD
from harness.result import Taken
from harness.targets.base import Captured
from harness.values import matches
from harness.matcher import Difference, compare
from harness.tcp import ACK, FIN, RST, SYN

if TYPE_CHECKING:
    from harness.runner import Examined


class Alternatives:
    """Runner methods for the open choices; see the module docstring."""

    def maybe(self, event: PacketEvent, due: tuple[float, float] | None, tolerance: float) -> None:
        bounds = self.window(due, tolerance)
        packet = self.next_packet(event, bounds[1])
        if packet is not None and self.attempt(event, packet, bounds, due, tolerance) is None:
            return
        if packet is not None:
            self.queue.appendleft(packet)
        self.step(self.target.now(), event, "optional", "not sent (allowed)")

    def attempt(self, event: PacketEvent, packet: Captured, bounds: tuple[float, float],
                due: tuple[float, float] | None, tolerance: float) -> Examined | None:
        """Take `packet` for `event` if it matches (None); else how it differs, forgetting
        what the peer learned from it (an ISN, a TS clock)."""
        saved = self.peer.learned()
        found = self.examine(event, packet, bounds, due, tolerance, merge=False)
        if found.diffs or found.timing:
            self.peer.forget(saved)
            return found
        self.took(event, packet, found.actual, due)
        return None

    # -- either ... or ... ------------------------------------------------------------------
    def either(self, event: EitherEvent) -> None:
        guarded = [(i, b) for i, b in enumerate(event.branches) if b.guard is not None]
        default = next((i for i, b in enumerate(event.branches) if b.guard is None), None)
        plans = {i: self.schedule(b.guard.time, True) for i, b in guarded}
        bounds = {i: self.window(due, tol) for i, (due, tol) in plans.items()}
        deadline = max((high for _, high in bounds.values()), default=self.target.now())
        packet = self.next_packet(event, deadline) if guarded else None
        if packet is not None:
            misses, only_when = [], True
            for i, branch in guarded:
                found = self.attempt(branch.guard, packet, bounds[i], *plans[i])
                if found is None:
                    self.take(event, i)
                    self.play(branch.events[1:])
                    return
                only_when = only_when and not found.diffs
                misses.append({"field": f'branch {i + 1} "{branch.label}"',
                               "expected": branch.guard.text,
                               "actual": found.timing or "; ".join(map(str, found.diffs))})
            self.queue.appendleft(packet)
            # A segment that some branch takes but for its time failed on timing.
            self.fail(event, "the target's segment matches no branch", actual=self.describe(packet),
                      diff=misses, timing=only_when)
        if default is None:
            self.fail(event, f"no segment by {deadline:.6f}, and every branch starts with one",
                      timing=True)
        self.take(event, default)
        self.play(event.branches[default].events)

    def take(self, event: EitherEvent, index: int) -> None:
        branch = event.branches[index]
        taken = Taken(event.loc.line, branch.label, branch.kind, index + 1, len(event.branches))
        self.taken.append(taken)
        self.on_branch(taken)
        self.step(self.target.now(), event, "branch", taken.describe())

    # -- flights ------------------------------------------------------------------------------
    def flight(self, event: FlightEvent, due: tuple[float, float] | None, tolerance: float) -> None:
        """RFC 5681 3.1: new data in any split of at most SMSS octets each, so a case bounds
        a window (how many segments, how far) instead of pinning one sender's choice."""
        low, deadline = self.window(due, tolerance)
        got: list[tuple[Captured, int]] = []        # each segment and its payload length
        diffs: list[Difference] = []
        edge = event.start
        while not (got and isinstance(event.end, int) and (edge - event.end) % MOD == 0):
            packet = self.next_packet(event, deadline)
            if packet is None:
                break
            ip, seg = self.decode(event, packet)
            start = self.peer.relative_seq(seg)
            if not seg.payload or seg.flags & (SYN | FIN | RST) or start != edge % MOD:
                self.queue.appendleft(packet)       # not this flight's: the next line's
                break
            number = len(got) + 1
            line = PacketEvent(event.time, event.loc, event.text, direction=">", flags=ACK,
                               seq=start, end=(start + len(seg.payload)) % MOD,
                               length=len(seg.payload), ack=event.ack, win=event.win, options=None)
            diffs += [Difference(f"segment {number} {d.field}", d.expected, d.actual) for d in
                      compare(line, ip, seg, self.peer, self.calls.sent_bytes(seg.sport, seg.dport),
                              free_psh=True)]
            if event.mss is not None and len(seg.payload) > event.mss:
                diffs.append(Difference(f"segment {number} length", f"<= {event.mss}",
                                        str(len(seg.payload))))
            if packet.time < low:
                diffs.append(Difference(f"segment {number} time", f">= {low:.6f}",
                                        f"{packet.time:.6f}"))
            got.append((packet, len(seg.payload)))
            edge += len(seg.payload)
        if not got:
            self.fail(event, f"the flight did not start: no new data from {event.start} by "
                      f"{deadline:.6f}", timing=True)
        if event.segments is not None and not matches(event.segments, len(got)):
            diffs.append(Difference("segments", str(event.segments), str(len(got))))
        if event.end is not ANY and not matches(event.end, edge % MOD):
            diffs.append(Difference("end", str(event.end), str(edge % MOD)))
        summary = (f"{len(got)} segments, {event.start}:{edge % MOD} "
                   f"({', '.join(str(n) for _, n in got)} octets)")
        if diffs:
            self.fail(event, "the flight does not match", actual=summary,
                      diff=[{"field": d.field, "expected": d.expected, "actual": d.actual}
                            for d in diffs], timing=all(d.field.endswith(" time") for d in diffs))
        for packet, _ in got:
            self.matched(packet, event)
        self.mark(got[0][0].time, got[-1][0].time)
        self.step(got[-1][0].time, event, "outbound", summary, due[0] if due else None)

    # -- assertions over a window ---------------------------------------------------------------
    def assert_within(self, event: AssertEvent, due: tuple[float, float], tolerance: float) -> None:
        """`1.0~1.5 assert 4 state CLOSE`: the assertion comes true inside the window (it
        is polled from the previous event on; holding before the window is a failure)."""
        low, high = due[0] - tolerance, due[1] + tolerance
        while True:
            now = self.target.now()
            problem = self.assertion_problem(event)
            if problem is None:
                break
            if now >= high:
                self.fail(event, f"{problem} at {now:.6f}, the end of the window "
                          f"{due[0]:.6f}..{due[1]:.6f} (±{tolerance * 1000:.1f} ms)", timing=True)
            self.wait_until(min(now + max(tolerance / 2, 1e-4), high))
        if now < low:
            self.fail(event, f"the assertion held already at {now:.6f}, before its window "
                      f"{due[0]:.6f}..{due[1]:.6f} (±{tolerance * 1000:.1f} ms)", timing=True)
        self.check_unexpected(event, now, tolerance)
        self.mark(now, now)
        self.step(now, event, "assert", f"holds from {now:.6f}")
