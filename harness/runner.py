"""The runner: plays a Script's timeline against a Target, as the remote peer.

Theory of operation (packetdrill's semantics):
- Each event has a scheduled time: absolute, relative to the previous event (`+t`), a window
  (`a~b`) or any time (`*`). Relative times count from the previous event as it really
  happened: an outbound segment at its (kernel) timestamp, an injection or a call over the
  interval from just before it started to just after it was done. What the runner does
  next is scheduled from the end of that interval; an expected segment may come at any point
  of the interval shifted by its offset. So neither the target's jitter nor the runner's own
  scheduling delays accumulate or count against the target.
- An event passes if it happens within max(usecs, percent x gap) of its time (`Tolerance`).
- Outbound segments are captured continuously into a queue. A `>` line takes the first one;
  a segment that arrives before a non-`>` event is due is unexpected at that point and
  fails the case there.
- Calls run through the target's `start_call`, so a blocking call (`...T`) runs while the
  timeline goes on; it must return at T (or inside `...a~b`) within the tolerance, T counted
  from when the call really began (as the events after it are): the scheduler's lateness in
  starting the call, or in running its thread once the call has returned, is measured and not
  the target's (cases/CASE_FORMAT.md, "Timing on a busy machine").
- A call the script does not mark as blocking must return at once: on a target in real time
  it is interrupted after CALL_SLACK (or the line's tolerance); on one in virtual time, where
  time stands still during a call, it is started like a blocking call and fails at once if
  it is not done (targets/base.py).
- What the RFCs leave open (harness/alternatives.py): `>?` segments the target may or may
  not send, `either` blocks whose branch is chosen by the first segment the target sends,
  flights of new data in any split, and times as multiples of the previous interval.
The runner raises `RunFailure` at the first mismatch; the caller turns it into a Result.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
from collections import deque
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator

from harness.alternatives import Alternatives
from harness.calls import CallResult
from harness.constants import CODE_NAMES, CONSTANTS, TCP_STATES
from harness.errors import CaseError, Loc, Malformed
from harness.ip import IP, IPv6, decode, protocol
from harness.matcher import Difference, compare
from harness.model import (AssertEvent, EitherEvent, Event, FlightEvent, PacketEvent,
                           PythonEvent, Script, ShellEvent, SyscallEvent, TimeSpec)
from harness.peer import MOD, Peer
from harness.result import Failure, PacketRecord, Step, Taken, diff_text
from harness.sched import Lateness
from harness.syscalls import STATE_NAMES, Syscalls
from harness.targets.base import CallHandle, CallTimeout, Captured, Target
from harness.tcp import CWR, FIN, PSH, Option, TCPSegment, flags_text

CALL_SLACK = 0.25      # how long a call without `...` may take before it counts as blocking
REPORT_GRACE = 1.0     # how long past its deadline a blocking call's thread may take to report
ANY_TIME_WAIT = 10.0   # how long a `*` line waits for its segment
BLOCKED = ("the call blocked; a call that is meant to block is written with its return time, "
           "e.g. '+0...0.2 accept(...)'")


@contextmanager
def alarm(seconds: float) -> Iterator[None]:
    """Interrupt a call that blocks longer than `seconds` (the signal makes it return EINTR)."""
    def expire(signum: int, frame: object) -> None:
        raise CallTimeout()
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class RunFailure(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


@dataclass(frozen=True)
class Outbound:
    """A TCP segment the target sent, as a Python block sees it (in `outbound`): to compare
    segments with each other, e.g. the ISNs of two connections (RFC 9293 3.4.1), the IP
    Identification of a retransmission (RFC 9293 3.8.1), or the right window edge over every
    segment, matched by a line or not (RFC 9293 3.8.6.2.2)."""

    time: float     # when it was sent, on the case's clock
    flags: str      # tcpdump style, e.g. "S."
    seq: int        # as on the wire, not relative to the ISN
    ack: int
    win: int
    length: int     # payload octets
    ip_id: int | None   # None in IPv6, which has no Identification field
    options: tuple[Option, ...] = ()    # as decoded, in order: ("mss", 1460), ("nop",), ...
    matched: bool = False       # whether a `>` line (or flight) took it
    line: int | None = None     # that line


@dataclass
class Pending:
    """A blocking call in progress. It must return `duration` after it began (or up to
    `spread` later, for `...a~b`): the runner started it at `began`, the target had it under
    way by `going` (or its handle's `started_at`, if later), so the return is due in that
    interval shifted by `duration`."""

    event: SyscallEvent
    handle: CallHandle
    began: float
    going: float
    duration: float
    tolerance: float
    spread: float = 0.0      # the width of a `...a~b` return window
    held_up: float = 0.0     # how late the runner performed an event due before the return

    @property
    def window(self) -> tuple[float, float]:
        started = max(self.going, self.handle.started_at or self.going)
        return self.began + self.duration, started + self.duration + self.spread + self.held_up

    @property
    def deadline(self) -> float:
        return self.window[1] + self.tolerance

    def problem(self) -> str:
        """What is wrong with the return, or "". Early: before the window less the
        tolerance. Late: after the window plus the tolerance, less the time the call's
        thread waited for a CPU during the call."""
        finished, waited = self.handle.finished_at, self.handle.cpu_wait
        if finished is None:
            return ""
        low, high = self.window
        if low - self.tolerance <= finished and finished - waited <= high + self.tolerance:
            return ""
        note = f"; its thread waited {waited * 1000:.1f} ms for a CPU" if waited >= 5e-4 else ""
        return (f"blocking call returned at {finished:.6f}, expected "
                f"{_window((low, high), self.tolerance)}{note}")


class Runner(Alternatives):
    def __init__(self, script: Script, target: Target, scale: float = 1.0,
                 on_step: Callable[[Step], None] | None = None,
                 on_branch: Callable[[Taken], None] | None = None) -> None:
        self.script = script
        self.target = target
        self.scale = scale
        self.on_step = on_step or (lambda step: None)
        self.on_branch = on_branch or (lambda taken: None)
        plan = script.plan
        self.peer = Peer(local_ip=plan.local_ip, remote_ip=plan.remote_ip,
                         local_port=plan.bind_port, ip_version=plan.ip_version,
                         ts_tick_usecs=plan.ts_tick_usecs,
                         ts_tolerance_usecs=script.tolerance.usecs * scale,
                         remote_relative=plan.remote_relative)
        self.calls = Syscalls(target, plan, target.now, script.tolerance.allowed(0, scale))
        self.queue: deque[Captured] = deque()
        self.pending: list[Pending] = []
        self.packets: list[PacketRecord] = []
        self.outbound: list[Outbound] = []      # every TCP segment seen, oldest first
        self.seen: dict[int, int] = {}          # id(Captured) -> its index in `outbound`
        self.captured: list[Captured] = []      # keeps those ids unique
        self.taken: list[Taken] = []            # the `either` branches taken
        self.anchor = (0.0, 0.0)   # when the previous event happened: (began, was done)
        self.gap = 0.0             # how long after the event before it that one began
        self.last_fd: int | None = None
        self.dissolved: set[int] = set()   # fds whose connection connect(AF_UNSPEC) dissolved
        self.socket_made = 0.0             # when the script last made a socket
        self.code_blocks: list[tuple[PythonEvent, dict[str, object]]] = []   # with their TCP_INFO
        self.lateness = Lateness()

    # -- the timeline ----------------------------------------------------------------------
    def run(self) -> None:
        for path in self.script.plan.init_scripts:     # packetdrill's --init_scripts
            self.shell(ShellEvent(TimeSpec("abs"), self.script.events[0].loc if self.script.events
                                  else Loc(self.script.path, 1), path, command=path))
        if self.script.init_command is not None:
            self.shell(self.script.init_command)
            self.target.restart_clock()      # packetdrill's clock starts after the init command
        self.play(self.script.events)
        self.finish()
        self.run_code()

    def play(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, EitherEvent):
                self.either(event)
                continue
            expected = isinstance(event, FlightEvent) or (isinstance(event, PacketEvent)
                                                          and event.direction == ">")
            due, tolerance = self.schedule(event.time, expected)
            if isinstance(event, FlightEvent):
                self.flight(event, due, tolerance)
                continue
            if expected:
                (self.maybe if event.optional else self.expect)(event, due, tolerance)
                continue
            if isinstance(event, AssertEvent) and event.time.kind == "range":
                self.assert_within(event, due, tolerance)
                continue
            # Build an injected packet before its time comes, so it leaves on time.
            packet = self.peer.packet(event) if isinstance(event, PacketEvent) else b""
            self.wait_until(due)
            self.check_unexpected(event, due, tolerance)
            if isinstance(event, SyscallEvent):
                self.await_returns(due)
            base = self.anchor[1]
            began = self.target.now()
            self.note_held_up(due, began)
            if isinstance(event, PacketEvent):
                self.inject(event, packet, due)
            elif isinstance(event, SyscallEvent):
                self.syscall(event, due, tolerance, base)
            else:
                self.perform(event)
            self.mark(began, self.target.now())

    def mark(self, began: float, done: float) -> None:
        """The event just done is the one the next relative time counts from."""
        self.gap = began - self.anchor[0]
        self.anchor = (began, done)

    def schedule(self, time: TimeSpec, expected: bool) -> tuple[Any, float]:
        """The due time and its allowed error. For an expected segment the due time is a
        window (low, high), or None for `*`; for anything else a point: when to act."""
        began, done = self.anchor
        allowed = self.script.tolerance.allowed
        if time.kind == "any":
            return None, allowed(0, self.scale)
        if time.kind == "ratio":        # x2: twice the interval before the previous event
            low, high = time.start * self.gap, (time.end or time.start) * self.gap
            return (began + low, done + high), allowed(low, self.scale)
        if time.kind == "range":
            low, high = ((began, done) if time.end_relative else (0.0, 0.0))
            return (low + time.start, high + time.end), allowed(time.start, self.scale)
        if time.kind == "abs":
            return ((time.start, time.start) if expected else time.start,
                    allowed(time.start - done, self.scale))
        if expected:
            return (began + time.start, done + time.start), allowed(time.start, self.scale)
        return done + time.start, allowed(time.start, self.scale)

    def perform(self, event: Event) -> None:
        if isinstance(event, AssertEvent):
            self.assertion(event)
        elif isinstance(event, PythonEvent):
            self.python(event)
        elif isinstance(event, ShellEvent):
            self.shell(event)

    # -- waiting and capturing -------------------------------------------------------------
    def note_held_up(self, due: float, began: float) -> None:
        """The runner performs an event late: a blocking call that this event may release
        (it is due before the call's deadline) may return that much later."""
        for pending in self.pending:
            if due <= pending.deadline:
                pending.held_up = max(pending.held_up, began - due)

    def wait_until(self, until: float) -> None:
        while True:
            self.check_pending(until)
            now = self.target.now()
            if now >= until:
                self.lateness.note(until, now)
                return
            self.capture(self.target.wait(until))

    def capture(self, captured: Captured | None) -> None:
        if captured is None:
            return
        self.packets.append(PacketRecord(captured.time, "out", captured.data))
        if protocol(captured.data) != 6:     # TCP; other outbound traffic is only logged
            return
        self.queue.append(captured)
        try:
            ip, seg = decode(captured.data)
        except Malformed:
            return      # the line that takes it reports it
        self.captured.append(captured)
        self.seen[id(captured)] = len(self.outbound)
        self.outbound.append(Outbound(captured.time, flags_text(seg.flags), seg.seq, seg.ack,
                                      seg.window, len(seg.payload),
                                      None if isinstance(ip, IPv6) else ip.ident,
                                      tuple(seg.options)))

    def matched(self, packet: Captured, event: Event) -> None:
        """Mark a captured segment as taken by a line (Python blocks see which were)."""
        index = self.seen.get(id(packet))
        if index is not None:
            self.outbound[index] = replace(self.outbound[index], matched=True, line=event.loc.line)

    def check_unexpected(self, event: Event, due: float, tolerance: float) -> None:
        """An outbound segment no line expected, sent before this line was due, fails here.
        packetdrill does not look (a segment no `>` line takes is only seen by the next `>`
        line, and none after the last), so a .pkt keeps its rule unless it asks for ours."""
        if not self.script.plan.fail_on_unexpected:
            return
        if self.queue and self.queue[0].time < due - tolerance:
            packet = self.queue[0]
            self.fail(event, f"unexpected outbound segment at {packet.time:.6f}: the script "
                      f"expects none before this line (due at {due:.6f})",
                      actual=self.describe(packet), timing=True)

    def describe(self, packet: Captured) -> str:
        try:
            ip, seg = decode(packet.data)
        except Malformed as exc:
            return f"malformed packet ({exc})"
        return self.peer.notation(ip, seg)

    # -- `<` and `>` -------------------------------------------------------------------------
    def inject(self, event: PacketEvent, data: bytes, due: float) -> None:
        now = self.target.now()
        self.target.inject(data)
        self.packets.append(PacketRecord(now, "in", data))
        self.step(now, event, "inject", "", due)

    def expect(self, event: PacketEvent, due: tuple[float, float] | None,
               tolerance: float) -> None:
        low, deadline = self.window(due, tolerance)
        packet = self.next_packet(event, deadline)
        if packet is None:
            self.fail(event, f"expected segment did not arrive by {deadline:.6f}",
                      expected=_script_part(event), timing=True)
        found = self.examine(event, packet, (low, deadline), due, tolerance)
        # packetdrill's --non_fatal=packet: a wrong field or time is a warning; a wrong
        # checksum or a missing segment stays fatal.
        lenient = "packet" in self.script.plan.non_fatal and not any(
            d.field.endswith("checksum") for d in found.diffs)

        def report(message: str, actual: str, diff: list[dict[str, str]] | None = None,
                   timing: bool = False) -> None:
            if lenient:
                self.warn(event, message, expected=_script_part(event), actual=actual, diff=diff)
            else:
                self.fail(event, message, expected=_script_part(event), actual=actual, diff=diff,
                          timing=timing)
        if found.diffs:
            # Data cut short at the deadline (its rest not sent in time) is a matter of time.
            cut = found.cut and all(d.field in ("length", "flags") for d in found.diffs)
            report("outbound segment does not match", f"{packet.time:.6f} {found.actual}",
                   found.diff_rows(), cut)
        if found.timing:
            report(found.timing, found.actual, timing=True)
        self.took(event, packet, found.actual, due)

    def window(self, due: tuple[float, float] | None, tolerance: float) -> tuple[float, float]:
        """The earliest and latest time an expected segment may come."""
        if due is None:
            return float("-inf"), self.target.now() + ANY_TIME_WAIT
        return due[0] - tolerance, due[1] + tolerance

    def examine(self, event: PacketEvent, packet: Captured, bounds: tuple[float, float],
                due: tuple[float, float] | None, tolerance: float, merge: bool = True) -> Examined:
        """How `packet` differs from the line `event` in its fields and its time."""
        ip, seg = self.decode(event, packet)
        self.peer.learn(event, seg)
        cut = False
        if merge and not self.script.plan.strict_segments:
            seg, cut = self.coalesce(event, seg, bounds[1])
        actual = self.peer.notation(ip, seg, with_ip=bool(event.ip))
        diffs = compare(event, ip, seg, self.peer, self.calls.sent_bytes(seg.sport, seg.dport),
                        free_psh=self.psh_is_free(seg, packet.time))
        timing = ""
        if not bounds[0] <= packet.time <= bounds[1]:
            when = "early" if packet.time < bounds[0] else "late"
            timing = (f"outbound segment {when}: at {packet.time:.6f}, expected "
                      f"{_window(due, tolerance)}")
        return Examined(actual, diffs, timing, cut)

    def took(self, event: Event, packet: Captured, actual: str,
             due: tuple[float, float] | None) -> None:
        """A line took `packet`: the next relative time counts from it."""
        self.mark(packet.time, packet.time)
        self.matched(packet, event)
        self.step(packet.time, event, "outbound", actual, due[0] if due else None)

    def psh_is_free(self, seg: TCPSegment, sent_at: float) -> bool:
        """With the case option `loose_psh`: RFC 1122 4.2.2.2 / RFC 9293 3.9.1.2 require PSH
        only on the segment that empties the send queue; on a data segment with bytes
        queued after it the sender may set it or not."""
        if not (self.script.plan.loose_psh and seg.payload):
            return False
        end = (self.peer.relative_seq(seg) - 1 + len(seg.payload)) % MOD
        return self.calls.queued_after(seg.sport, seg.dport, end, sent_at)

    def next_packet(self, event: Event, deadline: float) -> Captured | None:
        """The first outbound TCP packet not yet matched, waiting for it until `deadline`."""
        while True:
            while not self.queue:
                self.check_pending()
                past = self.target.now() >= deadline
                self.capture(self.target.wait(deadline))   # at the deadline: one last look
                if past and not self.queue:
                    return None
            packet = self.queue.popleft()
            if not isinstance(event, PacketEvent) or self.under_test(event, packet):
                return packet

    def under_test(self, event: PacketEvent, packet: Captured) -> bool:
        """packetdrill compares a `>` line only with segments of its socket under test. While
        a new socket has not sent its SYN yet, a SYN sent before the socket was made is an
        earlier socket's (a retransmission from SYN-SENT), as packetdrill sees it too."""
        try:
            _, seg = decode(packet.data)
        except Malformed:
            return True          # reported by the caller
        if self.peer.fresh and packet.time < self.socket_made:
            return False
        return self.peer.under_test(seg, event)

    def decode(self, event: Event, packet: Captured) -> tuple[IP, TCPSegment]:
        try:
            return decode(packet.data)
        except Malformed as exc:
            self.fail(event, f"malformed outbound packet: {exc}", expected=_script_part(event))
            raise     # not reached: fail() raises

    def coalesce(self, event: PacketEvent, seg: TCPSegment,
                 deadline: float) -> tuple[TCPSegment, bool]:
        """packetdrill without --strict_segments: consecutive outbound segments that
        continue one another (same flags but PSH, FIN and CWR, same ack, window and header
        length) count as one expected one. As packetdrill aggregates them, the whole has the
        last one's header (its PSH and FIN, its options) with the first one's seq and CWR.
        Also says whether the line's length was cut short at the deadline."""
        while len(seg.payload) < event.length:
            packet = self.next_packet(event, deadline)
            if packet is None:
                return seg, True
            _, more = self.decode(event, packet)
            loose = ~(PSH | FIN | CWR)
            if ((more.seq - seg.seq) % MOD != len(seg.payload) or more.ack != seg.ack
                    or more.flags & loose != seg.flags & loose or more.window != seg.window
                    or more.data_offset != seg.data_offset):
                self.queue.appendleft(packet)
                return seg, False
            seg = replace(more, seq=seg.seq, payload=seg.payload + more.payload,
                          flags=(more.flags & ~CWR) | (seg.flags & CWR),
                          checksum_ok=seg.checksum_ok and more.checksum_ok)
            self.matched(packet, event)
        return seg, False

    # -- calls -----------------------------------------------------------------------------
    def syscall(self, event: SyscallEvent, due: float, tolerance: float, base: float) -> None:
        run = self.calls.prepare(event)
        if event.end_time is not None:
            began = self.target.now()
            handle = self.target.start_call(run)
            going = self.target.now()
            end = event.end_time
            relative = end.kind == "rel" or (end.kind == "range" and end.end_relative)

            def at(value: float) -> float:
                # packetdrill: in `+a...b call()` both a and b count from the previous
                # event; `...+b` (our addition) counts from the call's own start.
                if relative:
                    return due + value
                return base + value if event.time.kind == "rel" else value
            returns = at(end.start)
            latest = at(end.end) if end.kind == "range" and end.end is not None else returns
            self.pending.append(Pending(event, handle, began, going, returns - due,
                                        self.script.tolerance.allowed(returns - due, self.scale),
                                        spread=latest - returns))
            self.step(going, event, "call", "started (blocking)")
            return
        if self.target.virtual_time:
            # Time stands still during a call: one that is not done at once has blocked.
            handle = self.target.start_call(run)
            if not handle.done:
                self.fail(event, BLOCKED)
            self.finish_call(event, self.returned(event, handle), self.target.now())
            return
        try:
            with alarm(max(tolerance, CALL_SLACK)):
                result = run()
        except CallTimeout:
            self.fail(event, BLOCKED, timing=True)
        self.finish_call(event, result, self.target.now())

    def _connected(self, event: SyscallEvent, result: CallResult) -> None:
        """packetdrill: connect(fd, AF_UNSPEC, ...) leaves the socket as if new, so its next
        connect starts a connection that becomes the socket under test (its SYN the next
        the lines speak of); segments in between (the RST) are still the old connection's."""
        fd = event.args[0].value
        if len(event.args) > 1 and event.args[1].kind == "name" and event.args[1].value == "AF_UNSPEC":
            if result.ret == 0:
                self.dissolved.add(fd)
        elif fd in self.dissolved:
            self.dissolved.discard(fd)
            self.peer.new_socket()

    def returned(self, event: SyscallEvent, handle: CallHandle) -> CallResult:
        """What a call that ran through `start_call` returned; an exception it raised is
        the case's error (CaseError) or reported at its line."""
        if handle.error is not None:
            if isinstance(handle.error, CaseError):
                raise handle.error
            self.fail(event, f"the call raised {type(handle.error).__name__}: {handle.error}")
        return handle.result

    def finish_call(self, event: SyscallEvent, result: CallResult, finished: float) -> None:
        problems = self.calls.check(event, result)
        if problems:     # packetdrill's --non_fatal=syscall makes them warnings
            (self.warn if "syscall" in self.script.plan.non_fatal else self.fail)(
                event, "; ".join(problems), expected=event.text.split(None, 1)[1],
                actual=f"= {result.describe()}")
        if event.name == "socket" and result.ret >= 0:
            self.peer.new_socket()
            self.socket_made = finished
        if event.name == "connect" and event.args and event.args[0].kind == "int":
            self._connected(event, result)
        if event.name in ("socket", "accept") and result.ret >= 0:
            self.last_fd = result.ret          # Python blocks read TCP_INFO of this socket
        elif event.args and event.args[0].kind == "int" and self.calls.is_socket(event.args[0].value):
            self.last_fd = event.args[0].value
        self.step(finished, event, "call", f"= {result.describe()}")

    def await_returns(self, due: float) -> None:
        """A call due when a blocking call in progress is due to have returned waits for
        that return (up to the blocking call's deadline) and has it judged first. packetdrill
        runs every call on one syscall thread, so a call never overtakes the blocking call
        before it; here, without the wait, a close() could overtake the return of the poll()
        before it, already under way, and that poll() would see POLLNVAL. A blocking call
        due to return later than this call does not hold it up."""
        if self.target.virtual_time:
            return       # time stands still during a call: nothing is under way meanwhile
        for pending in self.pending:
            handle = pending.handle
            if handle.started_at is not None and not handle.done and pending.window[0] <= due:
                handle.event.wait(max(0.0, pending.deadline - self.target.now()))
        self.check_pending(due)

    def check_pending(self, performing: float = float("inf")) -> None:
        """Judge the blocking calls that returned; fail one that is past its deadline,
        unless the runner has yet to perform an event due before that deadline (at
        `performing`), which may be what releases it."""
        for pending in list(self.pending):
            handle = pending.handle
            threaded = handle.started_at is not None
            overdue = self.target.now() > pending.deadline and pending.deadline < performing
            if not handle.done and threaded and overdue:
                # Its thread may have returned and not yet run to say so: the time it
                # returned is judged below, not the time the runner noticed.
                handle.event.wait(REPORT_GRACE)
            if handle.done:
                self.pending.remove(pending)
                finished = self.judge_return(pending)
                self.finish_call(pending.event, self.returned(pending.event, handle), finished)
            elif overdue:
                self.fail(pending.event, f"blocking call has not returned by "
                          f"{pending.deadline:.6f}", timing=True)

    def judge_return(self, pending: Pending) -> float:
        """When the call returned; a return outside its window fails the case."""
        problem = pending.problem()
        if problem:
            self.fail(pending.event, problem, timing=True)
        return pending.handle.finished_at if pending.handle.finished_at is not None \
            else self.target.now()

    # -- assertions, Python and shell ---------------------------------------------------------
    def assertion(self, event: AssertEvent) -> None:
        problem = self.assertion_problem(event)
        if problem is not None:
            self.fail(event, problem)
        self.step(self.target.now(), event, "assert", "holds")

    def assertion_problem(self, event: AssertEvent) -> str | None:
        """Why the assertion does not hold now, or None when it does."""
        if event.fd not in self.calls.fds:
            raise CaseError(event.loc, f"fd {event.fd} is not open in this script")
        info = self.calls.tcp_info(event.fd)
        for name, op, want in event.checks:
            if name == "state":
                got = STATE_NAMES.get(info["tcpi_state"], str(info["tcpi_state"]))
                if got != want:
                    return f"fd {event.fd} is in state {got}, expected {want}"
                continue
            if name not in info:
                raise CaseError(event.loc, f"unknown TCP_INFO field {name!r}")
            value = CONSTANTS.get(want, want) if isinstance(want, str) else want
            if not _OPS[op](info[name], value):
                return f"{name} is {info[name]}, expected {op} {want}"
        return None

    def python(self, event: PythonEvent) -> None:
        """packetdrill's meaning of `%{ }%`: when the line is reached, TCP_INFO (and, where the
        target has it, SO_MEMINFO) of the socket the script used last is taken; the blocks run after the last line, in order, in one
        namespace (a name one block sets, a later one sees), each with its own snapshot."""
        fd = self.last_fd if self.last_fd in self.calls.fds else max(self.calls.fds, default=None)
        snapshot: dict[str, object] = {}
        if fd is not None:
            snapshot.update(self.calls.snapshot(fd))
        snapshot["outbound"] = tuple(self.outbound)     # every segment so far, `matched` or not
        self.code_blocks.append((event, snapshot))
        self.step(self.target.now(), event, "python", f"TCP_INFO of fd {fd} taken" if fd is not None
                  else "no socket yet")

    def run_code(self) -> None:
        names: dict[str, object] = {f"TCP_{k}": v for k, v in TCP_STATES.items()}
        names.update(CODE_NAMES)
        for event, snapshot in self.code_blocks:
            names.update(snapshot)
            printed = io.StringIO()          # what the block prints is its step's note
            try:
                with redirect_stdout(printed):
                    exec(compile(_dedent(event.code), f"{event.loc.file}:{event.loc.line}", "exec"),
                         names)
            except AssertionError as exc:
                self.fail(event, f"Python assertion failed{': ' + str(exc) if str(exc) else ''}",
                          actual=printed.getvalue().strip())
            except Exception as exc:       # the block is the script's code; report, do not crash
                self.fail(event, f"Python block raised {type(exc).__name__}: {exc}",
                          actual=printed.getvalue().strip())
            self.step(self.target.now(), event, "python", printed.getvalue().strip() or "ok")

    def shell(self, event: ShellEvent) -> None:
        """As packetdrill's runners run it: from the script's folder (so `../common/x.sh`
        resolves), with PACKETDRILL_PID naming this run (packetdrill sets it to its pid;
        helpers such as set_sysctls.py key files by it)."""
        workdir = self.script.workdir or os.path.dirname(os.path.abspath(self.script.path))
        done = subprocess.run(event.command, shell=True, capture_output=True, text=True,
                              cwd=workdir, env={**os.environ, **self.script.defines,
                                                "PACKETDRILL_PID": str(os.getpid())})
        self.target.after_shell()
        if done.returncode != 0:
            self.fail(event, f"shell command exited with {done.returncode}: "
                      f"{(done.stderr or done.stdout).strip()[-300:]}")
        self.step(self.target.now(), event, "shell", "exit 0")

    def cleanup(self) -> None:
        """The script's cleanup command: run after the last event, also after a failure."""
        if self.script.cleanup_command is not None:
            self.shell(self.script.cleanup_command)

    # -- the end -----------------------------------------------------------------------------
    def finish(self) -> None:
        while self.pending:
            latest = max(p.deadline for p in self.pending)
            self.capture(self.target.wait(latest))
            self.check_pending()
        if self.queue and self.script.plan.fail_on_unexpected:
            packet = self.queue[0]
            self.fail(self.script.events[-1] if self.script.events else None,
                      f"unexpected outbound segment at {packet.time:.6f} after the last line",
                      actual=self.describe(packet), timing=True)   # a retransmission, if we were late

    # -- records ------------------------------------------------------------------------------
    def step(self, time: float, event: Event, kind: str, note: str,
             due: float | None = None) -> None:
        self.on_step(Step(time, event.loc.line, kind, event.text, note, due))

    def warn(self, event: Event, message: str, expected: str = "", actual: str = "",
             diff: list[dict[str, str]] | None = None) -> None:
        """A mismatch the script's --non_fatal lets pass: recorded, and the timeline goes on."""
        details = [f"expected {expected}" if expected else "", f"got {actual}" if actual else "",
                   "; ".join(diff_text(d) for d in diff or [])]
        self.step(self.target.now(), event, "warning",
                  message + "".join(f" ({d})" for d in details if d))

    def fail(self, event: Event | None, message: str, expected: str = "", actual: str = "",
             diff: list[dict[str, str]] | None = None, timing: bool = False) -> None:
        """End the case with a failure; `timing`: it is about when, not what (a slow
        machine or VM can cause it: harness.kernels.fidelity)."""
        raise RunFailure(Failure(message, event.loc.line if event else 0,
                                 event.loc.col if event else 0, event.text if event else "",
                                 expected, actual, diff or [], timing))


_OPS: dict[str, Callable[[int, int], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


def _script_part(event: Event) -> str:
    """A packet line without its time: what the script expects."""
    return event.text.split(None, 2)[2] if event.text.count(" ") >= 2 else event.text


@dataclass
class Examined:
    """An outbound segment held against a line: how it reads, and what differs."""

    actual: str
    diffs: list[Difference]
    timing: str         # why it is early or late; empty when on time
    cut: bool = False   # its data ended at the deadline, short of the line's length

    def diff_rows(self) -> list[dict[str, str]]:
        return [{"field": d.field, "expected": d.expected, "actual": d.actual} for d in self.diffs]


def _window(due: tuple[float, float], tolerance: float) -> str:
    if due[1] - due[0] > 1e-4:
        return f"between {due[0]:.6f} and {due[1]:.6f} (±{tolerance * 1000:.1f} ms)"
    return f"at {due[0]:.6f} (±{tolerance * 1000:.1f} ms)"


def _dedent(code: str) -> str:
    """A block's code as Python reads it: common indentation removed, and a `\\` that ends
    its last line dropped (packetdrill's scripts continue every line with one, the last too)."""
    lines = code.strip("\n").splitlines()
    indent = min((len(l) - len(l.lstrip()) for l in lines if l.strip()), default=0)
    text = "\n".join(l[indent:] for l in lines).strip()
    while text.endswith("\\"):
        text = text[:-1].rstrip()
    return text
