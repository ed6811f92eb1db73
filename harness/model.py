"""The one Script model every door loads into: YAML `script:`, YAML `steps:` and `.pkt` files.

A `Script` is a list of events on a timeline. Each event keeps its source location and text,
so a failure can name the line that failed and quote it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from harness.errors import Loc
from harness.options import Plan

ANY = object()          # a wildcard value written as `*` in a script


@dataclass
class TimeSpec:
    """When an event happens. `kind`: "abs", "rel", "any" or "range".

    For "range", `start`/`end` are the window; `end_relative` says whether the upper bound
    was written with `+`. For "rel", `start` is the offset from the previous event.
    """

    kind: str
    start: float = 0.0
    end: float | None = None
    end_relative: bool = False

    def __str__(self) -> str:
        if self.kind == "any":
            return "*"
        sign = "+" if self.kind == "rel" or (self.kind == "range" and self.end_relative) else ""
        text = f"{sign}{self.start:g}"
        if self.kind == "range":
            text += f"~{sign}{self.end:g}"
        return text


@dataclass
class Expr:
    """A syscall argument or return value as written.

    kind: "int", "name" (a symbolic constant), "or" (a|b), "ellipsis", "array", "struct",
    "string", "call" (e.g. htons(8080)), "any" (`*`)."""

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
    seq: int = 0
    end: int = 0
    length: int = 0
    ack: int | None = None
    win: int | None = None
    urg: int | None = None
    options: list | None = field(default_factory=list)   # None: `<...>`, do not check
    ip: dict[str, Any] = field(default_factory=dict)     # tos, ttl, id, ecn, src, dst, bad_*
    ports: tuple[int, int] | None = None                 # `40001>8080`: source>destination
    icmp: dict[str, Any] | None = None                   # for `< icmp ...` injections
    payload: bytes | None = None                         # explicit injected bytes


@dataclass
class SyscallEvent(Event):
    name: str = ""
    args: list[Expr] = field(default_factory=list)
    ret: Expr = field(default_factory=lambda: Expr("int", 0))
    errno: str | None = None
    end_time: TimeSpec | None = None     # `...T`: a blocking call that returns at T


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


AnyEvent = Union[PacketEvent, SyscallEvent, AssertEvent, PythonEvent, ShellEvent]


@dataclass
class Tolerance:
    """packetdrill's timing tolerance: max(usecs, percent x gap since the previous event)."""

    usecs: float = 4000.0
    percent: float = 12.5

    def allowed(self, gap: float, scale: float = 1.0) -> float:
        """The allowed error in seconds for an event `gap` seconds after its predecessor."""
        return scale * max(self.usecs / 1e6, self.percent / 100.0 * max(gap, 0.0))


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
