"""Judging a mutation run: which cases a mutant is tested by, and whether it was killed.

A case is tied to a mutant when it cites one of the mutant's requirement ids. The mutant is
killed when a tied case that passes on the unmutated stack (its raw verdict, before the
target's expectations: pass, follows-later-rfc or choice) does not pass with the mutant. A
case that already fails on the unmutated stack kills nothing, whatever it does, and neither
does a case that ended in a programming error (`BROKEN`): that is a bug in the mutant, not
the suite noticing the stack's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from harness.mutate.patching import Mutant
from harness.result import PASSING

BROKEN = "mutant-broken"     # the verdict of a case the mutant's own code crashed


@dataclass
class Outcome:
    mutant: Mutant
    cases: list[str]                        # the tied cases that ran
    killed_by: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def killed(self) -> bool:
        return bool(self.killed_by)


def tied(mutant: Mutant, case_requirements: dict[str, Iterable[str]]) -> list[str]:
    """The cases (id -> requirement ids they cite) that test one of `mutant`'s requirements."""
    wanted = set(mutant.requirements)
    return sorted(case for case, ids in case_requirements.items() if wanted & set(ids))


def judge(mutant: Mutant, cases: list[str], baseline: dict[str, str],
          verdicts: dict[str, str], seconds: float = 0.0) -> Outcome:
    """`baseline` and `verdicts`: raw verdict per case id, unmutated and with the mutant."""
    killers = [case for case in cases if baseline.get(case) in PASSING
               and verdicts.get(case) not in (*PASSING, BROKEN)]
    return Outcome(mutant, cases, killers, seconds)


def summary_line(outcomes: list[Outcome]) -> str:
    return f"mutation score: {sum(o.killed for o in outcomes)}/{len(outcomes)}"
