"""What a run produces: one Result per case and target, and the records inside it.

Results are plain data (dataclasses of str/int/float/bytes) so that they cross the pipe from
a case's process to the runner's, go into results.json, and come back out for reports.
"""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass, field
from typing import Any

PASS, FAIL, ERROR, SKIPPED = "pass", "fail", "error", "skipped"
XFAIL, XPASS = "expected failure", "unexpected pass"
INTERRUPTED = "interrupted"      # a SIGINT/SIGTERM stopped the run before this case finished
NOT_APPLICABLE = "not-applicable"   # the case needs what the target lacks (harness.capabilities)
# Passing verdicts that say more: the target did what a later RFC requires in place of the
# case's (counted apart from deviations), or took one option of a MAY (never a failure).
FOLLOWS, CHOICE = "follows-later-rfc", "choice"
VERDICTS = (PASS, FOLLOWS, CHOICE, FAIL, XFAIL, XPASS, ERROR, SKIPPED, NOT_APPLICABLE, INTERRUPTED)
PASSING = (PASS, FOLLOWS, CHOICE)


@dataclass
class Step:
    """One event as it happened: `kind` is inject, outbound, call, assert, python, shell, or
    warning (a mismatch that --non_fatal let pass)."""

    time: float
    line: int
    kind: str
    text: str
    note: str = ""
    due: float | None = None      # when the script scheduled it (injections and `>` lines)


@dataclass
class Taken:
    """The branch of an `either` block that the target took (line: the block's)."""

    line: int
    label: str          # the RFC text that allows the branch, as the case names it
    kind: str = ""      # "", "follows" (a later RFC's requirement) or "choice" (a MAY's option)
    index: int = 1      # which branch, from 1
    count: int = 2      # of how many

    def describe(self) -> str:
        what = {"follows": " (what a later RFC requires)", "choice": " (an option the RFC leaves "
                "to the implementation)"}.get(self.kind, "")
        return f'line {self.line}: took branch {self.index} of {self.count}, "{self.label}"{what}'


def passing_verdict(branches: list[Taken]) -> str:
    """A passing run's verdict from the branches it took: a later RFC's before a choice."""
    kinds = {b.kind for b in branches}
    return FOLLOWS if "follows" in kinds else CHOICE if "choice" in kinds else PASS


@dataclass
class PacketRecord:
    time: float
    direction: str          # "in": injected into the target, "out": sent by the target
    data: bytes


@dataclass
class Failure:
    """Where and why a case failed, in the script's own terms."""

    message: str
    line: int = 0
    column: int = 0
    script_line: str = ""
    expected: str = ""
    actual: str = ""
    diff: list[dict[str, str]] = field(default_factory=list)
    timing: bool = False    # failed on when, not what: a segment early, late or missing, a call's return

    def render(self, path: str) -> str:
        head = f"{path}:{self.line}:{self.column}: {self.message}" if self.line else self.message
        lines = [head]
        if self.script_line:
            lines.append(f"  script line: {self.script_line}")
        if self.expected:
            lines.append(f"  expected:    {self.expected}")
        if self.actual:
            lines.append(f"  actual:      {self.actual}")
        lines.extend("    " + diff_text(d) for d in self.diff)
        return "\n".join(lines)


def diff_text(diff: dict[str, str]) -> str:
    """One field's difference as the reports print it."""
    return f"{diff['field']}: expected {diff['expected']}, got {diff['actual']}"


@dataclass
class Result:
    case_id: str
    path: str
    target: str
    verdict: str
    duration: float = 0.0
    title: str = ""
    requirements: list[str] = field(default_factory=list)
    failure: Failure | None = None
    timeline: list[Step] = field(default_factory=list)
    packets: list[PacketRecord] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    expectation: str = ""          # the reason from the target's expectations file, if any
    raw_verdict: str = ""          # the verdict before expectations were applied
    branches: list[Taken] = field(default_factory=list)    # `either` branches taken
    follows: str = ""              # the later RFC the target follows (follows-later-rfc)
    timing: str = ""               # why this result's timing cannot be trusted (a slow VM), if so

    @property
    def warnings(self) -> list[str]:
        """Mismatches the script's --non_fatal let pass, `file:line: message` each."""
        return [f"{self.path}:{s.line}: warning: {s.note}" for s in self.timeline if s.kind == "warning"]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["packets"] = [{"time": p.time, "direction": p.direction,
                            "data": base64.b64encode(p.data).decode()} for p in self.packets]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Result":
        data = dict(data)
        data["failure"] = Failure(**data["failure"]) if data.get("failure") else None
        data["timeline"] = [Step(**s) for s in data.get("timeline", [])]
        data["branches"] = [Taken(**b) for b in data.get("branches", [])]
        data["packets"] = [PacketRecord(p["time"], p["direction"], base64.b64decode(p["data"]))
                           for p in data.get("packets", [])]
        return cls(**data)
