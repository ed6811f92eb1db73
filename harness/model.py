"""The one Script model every door loads into: YAML `script:`, YAML `steps:` and `.pkt` files.

A `Script` is a list of events on a timeline. Each event keeps its source location and text,
so a failure can name the line that failed and quote it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Union

from harness.errors import Loc
from harness.options import Plan
from harness.values import ValueSet

ANY = object()          # a wildcard value written as `*` in a script
ACKED = object()        # `acked` on an injected segment: where the target's last ACK points
Field = Union[int, ValueSet]


@dataclass
class TimeSpec:
    """When an event happens. `kind`: "abs", "rel", "any", "range" or "ratio".

    For "range", `start`/`end` are the window; `end_relative` says whether the upper bound
    was written with `+`. For "rel", `start` is the offset from the previous event. For
    "ratio" (`x2`, `x1.5~x3`), `start`/`end` are multiples of the interval between the two
    events before this one, counted from the previous event.
    """

    kind: str
    start: float = 0.0
    end: float | None = None
    end_relative: bool = False

    def __str__(self) -> str:
        if self.kind == "any":
            return "*"
        if self.kind == "ratio":
            return f"x{self.start:g}" + ("" if self.end == self.start else f"~x{self.end:g}")
        sign = "+" if self.kind == "rel" or (self.kind == "range" and self.end_relative) else ""
        text = f"{sign}{self.start:g}"
        if self.kind == "range":
            text += f"~{sign}{self.end:g}"
        return text


@dataclass
class Expr:
    """A syscall argument or return value as written.

    kind: "int", "name" (a symbolic constant), "or" (a|b), "ellipsis", "array", "struct",
    "string", "call" (e.g. htons(8080)), "any" (`*`), "set" (a return value range, a
    `ValueSet`)."""

    kind: str
    value: Any = None
    loc: Loc | None = None

    def __str__(self) -> str:
        if self.kind == "ellipsis":
            return "..."
        if self.kind == "array":
            return "[" + ", ".join(map(str, self.value)) + "]"
        if self.kind == "struct":
            return "{" + ", ".join(f"{k}={v}" if k else str(v) for k, v in self.value) + "}"
        if self.kind == "or":
            return "|".join(map(str, self.value))
        if self.kind == "string":
            return '"' + self.value + '"'
        if self.kind == "call":
            name, args = self.value
            return f"{name}(" + ", ".join(map(str, args)) + ")"
        if self.kind == "any":
            return "*"
        if self.kind == "ratio":
            return f"x{self.start:g}" + ("" if self.end == self.start else f"~x{self.end:g}")
        if self.kind == "int" and abs(self.value) > 255:
            return str(self.value)
        return str(self.value)


@dataclass
class Event:
    time: TimeSpec
    loc: Loc
    text: str


@dataclass
class PacketEvent(Event):
    """`<` injected into the target, `>` expected from it (RFC 9293 3.1 header fields)."""

    direction: str = "<"
    flags: int = 0
    seq: Field = 0          # on an expected segment any of these may be a ValueSet (or
    end: Field = 0          # ANY for seq, end and length): the values the RFC allows
    length: Field = 0
    ack: Field | None = None
    win: Field | None = None
    urg: Field | None = None
    options: list | None = field(default_factory=list)   # None: `<...>`, do not check
    ip: dict[str, Any] = field(default_factory=dict)     # tos, ttl, id, ecn, src, dst, bad_*
    ports: tuple[int, int] | None = None                 # `40001>8080`: source>destination
    icmp: dict[str, Any] | None = None                   # for `< icmp ...` injections
    payload: bytes | None = None                         # explicit injected bytes
    optional: bool = False                               # `>?`: may be sent or not
    any_layout: bool = False                             # `<{...}>`: options in any order and padding
    may_lack: frozenset[int] = frozenset()               # `<{mss? ...}>`: indices of options that may be absent
    flag_alternatives: tuple[int, ...] = ()              # `R|R.`: other flags an expected segment may carry


@dataclass
class FlightEvent(Event):
    """`> flight 1:4381 segments 1..3 mss 1460`: new data from `start` to `end` in any
    number of segments (RFC 5681 3.1's bounds on a window, not one sender's split)."""

    start: int = 0
    end: Field = 0
    segments: Field | None = None       # how many segments; None: any number
    mss: int | None = None              # each segment's payload at most this
    ack: Field | None = None
    win: Field | None = None


@dataclass
class Branch:
    """One sub-timeline of an `either` block and the RFC text that allows it. `kind`: ""
    (allowed by the case's own RFC), "follows" (what a later RFC requires instead) or
    "choice" (one option of a MAY)."""

    label: str
    kind: str
    events: list["Event"]
    loc: Loc

    @property
    def guard(self) -> "PacketEvent | None":
        """The expected segment the branch starts with, by which the runner tells it from
        the others (None: it starts with anything else)."""
        first = self.events[0] if self.events else None
        if isinstance(first, PacketEvent) and first.direction == ">" and not first.optional:
            return first
        return None


@dataclass
class EitherEvent(Event):
    """`either "RFC 793 3.9" { ... } or follows "RFC 5961 3.2" { ... }`: the target may
    take any one of the branches; the runner records which."""

    branches: list[Branch] = field(default_factory=list)


@dataclass
class SyscallEvent(Event):
    name: str = ""
    args: list[Expr] = field(default_factory=list)
    ret: Expr = field(default_factory=lambda: Expr("int", 0))
    errno: str | None = None             # one name, or several as `ECONNREFUSED|ECONNRESET`
    end_time: TimeSpec | None = None     # `...T`: a blocking call that returns at T (or a~b)


@dataclass
class AssertEvent(Event):
    """`assert FD state NAME` or `assert FD tcpi_x OP value, ...`."""

    fd: int = 0
    checks: list[tuple[str, str, Any]] = field(default_factory=list)


@dataclass
class PythonEvent(Event):
    code: str = ""


@dataclass
class ShellEvent(Event):
    command: str = ""


AnyEvent = Union[PacketEvent, FlightEvent, EitherEvent, SyscallEvent, AssertEvent, PythonEvent,
                 ShellEvent]


def walk(events: list[Event]) -> Iterator[Event]:
    """Every event, the ones inside `either` branches included, in script order."""
    for event in events:
        yield event
        if isinstance(event, EitherEvent):
            for branch in event.branches:
                yield from walk(branch.events)


@dataclass
class Tolerance:
    """packetdrill's timing tolerance: max(usecs, percent x gap since the previous event), and
    rfcdrill's `floor` (seconds) under it: an untrusted VM guest raises the floor to hold its
    measured injection lateness, which is a few milliseconds whatever the gap, and leaves the
    part proportional to the gap as asked (scaling that too would let a 2 s backoff interval
    pass as 1 s: harness.kernels.fidelity)."""

    usecs: float = 4000.0
    percent: float = 12.5
    floor: float = 0.0

    def allowed(self, gap: float, scale: float = 1.0) -> float:
        """The allowed error in seconds for an event `gap` seconds after its predecessor."""
        return max(self.floor, scale * max(self.usecs / 1e6, self.percent / 100.0 * max(gap, 0.0)))


@dataclass
class Script:
    """A loaded case: metadata plus its timeline."""

    id: str
    path: str
    events: list[Event]
    title: str = ""
    requirements: list[str] = field(default_factory=list)
    sysctl: dict[str, Any] = field(default_factory=dict)
    tolerance: Tolerance = field(default_factory=Tolerance)
    targets: list[str] | None = None
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)   # .pkt --options and case options
    plan: Plan = field(default_factory=Plan)                # what the options mean
    init_command: ShellEvent | None = None       # runs before the first event
    cleanup_command: ShellEvent | None = None    # runs after the last, also after a failure
    timeout: float | None = None
    defines: dict[str, str] = field(default_factory=dict)   # -D NAME=value, also in shell env
    workdir: str | None = None   # where shell commands run (None: the script's own folder)
