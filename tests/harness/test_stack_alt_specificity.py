"""Specificity where it is cheap to prove: every case with an `either` block that sets RFC
793's reset and SYN processing against RFC 5961's passes on stack-alt (stack.config's
rfc5961=False) through the RFC 793 branch, and on `stack` (RFC 5961) through the RFC 5961 one,
so the branch recorded is the target's doing. A case whose RFC 793 branch an RFC 793 stack
cannot take fails here. (The precedence blocks, RFC 793 against RFC 2873, are not among them:
every profile follows RFC 2873.)"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from harness.execute import Job, run_jobs
from harness.loader import load
from harness.model import EitherEvent, Event
from harness.result import PASS
from harness.suite import case_files

from tests.conftest import needs_root

ROOT = Path(__file__).resolve().parents[2]


def eithers(events: list[Event]) -> Iterator[EitherEvent]:
    for event in events:
        if isinstance(event, EitherEvent):
            yield event
            for branch in event.branches:
                yield from eithers(branch.events)


def rfc793(label: str, kind: str) -> bool:
    return label.startswith("RFC 793") and kind == ""


def rfc5961(label: str, kind: str) -> bool:
    """RFC 5961's reset (section 3) and SYN (section 4) processing; its section 5 (the ACK
    range check, RFC 9293 MAY-12) is a separate choice that no profile switch sets alone."""
    return kind == "follows" and ("RFC 5961 3" in label or "RFC 5961 4" in label)


def rfc793_blocks() -> dict[str, set[int]]:
    """Case path -> lines of its `either` blocks with an RFC 793 branch and an RFC 5961 one."""
    found: dict[str, set[int]] = {}
    for path in case_files([str(ROOT / "cases")]):
        lines = {block.loc.line for block in eithers(load(path).events)
                 if any(rfc793(b.label, b.kind) for b in block.branches)
                 and any(rfc5961(b.label, b.kind) for b in block.branches)}
        if lines:
            found[path] = lines
    return found


@needs_root
def test_the_rfc793_branches_are_taken_by_stack_alt_and_only_by_it() -> None:
    blocks = rfc793_blocks()
    assert blocks, "no case has an `either` block setting RFC 793 against RFC 5961"
    jobs = [Job(path, target, script, case_id=script.id) for path in blocks
            for script in [load(path)] for target in ("stack-alt", "stack")]
    for result in run_jobs(jobs, 2):
        taken = {b.line: b for b in result.branches if b.line in blocks[result.path]}
        assert set(taken) == blocks[result.path], (result.case_id, result.target, result.failure)
        took = rfc793 if result.target == "stack-alt" else rfc5961
        for branch in taken.values():
            assert took(branch.label, branch.kind), (result.case_id, result.target, branch)
        if result.target == "stack-alt":
            assert result.verdict == PASS, (result.case_id, result.failure)
