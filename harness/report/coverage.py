"""Coverage: what the results say about each catalogue requirement, per target.

Theory of operation: a requirement is covered on a target by every result of that target
whose case lists it. Its status there combines their verdicts, worst first:

    any fail             -> failing
    else any error       -> error             (the harness could not judge a case)
    else any unexp. pass -> unexpected pass   (an expectations file is out of date)
    else any exp. fail   -> deviating         (a known, documented deviation)
    else any follows-later-rfc -> follows later RFC  (it meets a later RFC's rule instead)
    else any choice      -> choice            (it took one option of a MAY)
    else any pass        -> passed
    else                 -> untested          (no case, or every case skipped)

so one failing case is enough to call a requirement failing, and a requirement passes only
when every case that ran for it passed. Figures count requirements by status per target,
RFC and level; the statuses partition the catalogue, so they always add up to its total.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from harness.catalog import Requirement, catalogue
from harness.result import CHOICE, ERROR, FAIL, FOLLOWS, PASS, XFAIL, XPASS, Result

PASSED, DEVIATING, UNEXPECTED, FAILING, ERRORED, UNTESTED = (
    "passed", "deviating", "unexpected pass", "failing", "error", "untested")
LATER, CHOSEN = "follows later RFC", "choice"
STATUSES = (PASSED, LATER, CHOSEN, DEVIATING, UNEXPECTED, FAILING, ERRORED, UNTESTED)
LEVELS = ("MUST", "MUST NOT", "SHOULD", "SHOULD NOT", "MAY")
STRICT = ("MUST", "MUST NOT")

# verdict -> status, in the order the rule above consults them (worst first)
_PRECEDENCE = ((FAIL, FAILING), (ERROR, ERRORED), (XPASS, UNEXPECTED), (XFAIL, DEVIATING),
               (FOLLOWS, LATER), (CHOICE, CHOSEN), (PASS, PASSED))


def combine(verdicts: list[str]) -> str:
    """The status of a requirement on one target from the verdicts of its cases there."""
    return next((status for verdict, status in _PRECEDENCE if verdict in verdicts), UNTESTED)


@dataclass
class Figures:
    """Requirements of one (target, RFC, level) slice, counted."""

    total: int = 0
    wire_testable: int = 0
    covered: int = 0
    by_status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))

    def add(self, requirement: Requirement, covered: bool, status: str) -> None:
        self.total += 1
        self.wire_testable += requirement.wire_testable
        self.covered += covered
        self.by_status[status] += 1


@dataclass
class Coverage:
    """Requirement statuses per target, the results behind each, and the figures."""

    targets: list[str]
    requirements: dict[str, Requirement]
    results: dict[tuple[str, str | None], list[Result]]       # (requirement id, target) -> results

    def status(self, req_id: str, target: str | None) -> str:
        return combine([r.verdict for r in self.results.get((req_id, target), [])])

    def covered(self, req_id: str, target: str | None) -> bool:
        return bool(self.results.get((req_id, target)))

    def figures(self, target: str | None, rfc: str | None = None,
                level: str | None = None) -> Figures:
        """Counts for one target (None: the catalogue alone, all untested), optionally
        narrowed to one RFC and/or one level."""
        figures = Figures()
        for req in self.requirements.values():
            if rfc in (None, req.rfc) and level in (None, req.level):
                figures.add(req, self.covered(req.id, target), self.status(req.id, target))
        return figures

    def rfcs(self) -> list[str]:
        return sorted({r.rfc for r in self.requirements.values()}, key=natural_key)

    def sections(self, rfc: str) -> dict[str, list[Requirement]]:
        """An RFC's requirements by section, sections and ids in reading order."""
        grouped: dict[str, list[Requirement]] = defaultdict(list)
        for req in sorted(self.requirements.values(), key=lambda r: natural_key(r.id)):
            if req.rfc == rfc:
                grouped[req.section].append(req)
        return {s: grouped[s] for s in sorted(grouped, key=natural_key)}


def coverage(results: list[Result], targets: list[str],
             requirements: dict[str, Requirement] | None = None) -> Coverage:
    """Coverage of `requirements` (the catalogue by default) by `results` on `targets`.

    Requirement ids outside the catalogue are not counted (the loader rejects them anyway).
    """
    known = catalogue() if requirements is None else requirements
    by_key: dict[tuple[str, str], list[Result]] = defaultdict(list)
    for result in results:
        for req_id in dict.fromkeys(result.requirements):
            if req_id in known:
                by_key[(req_id, result.target)].append(result)
    return Coverage(targets, known, dict(by_key))


def run_targets(meta: dict, results: list[Result]) -> list[str]:
    """The run's targets in its own order, then any that only the results name."""
    return list(dict.fromkeys([*meta.get("targets", []), *(r.target for r in results)]))


def natural_key(text: str) -> list[tuple[int, int | str]]:
    """Sort key that puts 3.9 before 3.10 and MUST-2 before MUST-10."""
    return [(0, int(part)) if part.isdigit() else (1, part)
            for part in re.split(r"(\d+)", text) if part]
