"""summary.md: the run in a few dozen lines, for $GITHUB_STEP_SUMMARY and pull requests.

Order: verdict totals, requirement figures per target, RFC and level, then the failing
MUST / MUST NOT requirements (id, case, one-line reason), then every other problem (fail,
error, unexpected pass). Expected deviations are counted, not listed; so are the results that
follow a later RFC (with which RFCs) and the choices of MAYs (with which options). Lists are cut so that
the whole summary stays within MAX_LINES; index.html has the rest.
"""

from __future__ import annotations

import re
from typing import Any

from collections import Counter

from harness.report.merge import merged_from
from harness.report.coverage import (CHOSEN, DEVIATING, ERRORED, FAILING, LATER, LEVELS, PASSED,
                                     STRICT, UNEXPECTED, UNTESTED, Coverage, Figures, coverage,
                                     run_targets)
from harness.result import CHOICE, ERROR, FAIL, FOLLOWS, NOT_APPLICABLE, VERDICTS, XFAIL, XPASS, Result

MAX_LINES = 60
REASON_WIDTH = 120
BAD = (FAILING, ERRORED, UNEXPECTED)
PROBLEM_ORDER = (FAIL, ERROR, XPASS)    # which of a requirement's results explains it best


def render(meta: dict[str, Any], results: list[Result]) -> str:
    targets = run_targets(meta, results)
    cov = coverage(results, targets)
    head = _head(meta, results, targets) + _table(cov)
    musts = _failing_musts(cov)
    listed = {(case, target) for case, target, _ in musts}
    others = [(r.case_id, r.target, f"`{r.case_id}` on {r.target} ({r.verdict}): {reason(r)}")
              for r in results if r.verdict in PROBLEM_ORDER and (r.case_id, r.target) not in listed]
    deviations = sum(r.verdict == XFAIL for r in results)
    tail = ["", f"Expected deviations: {deviations} (known, listed in the expectations files; "
                "see index.html)."] if deviations else []
    tail += _tally("Follows a later RFC", [r.follows for r in results if r.verdict == FOLLOWS])
    tail += _tally("Choices of options the RFCs leave open",
                   [t.label for r in results if r.verdict == CHOICE for t in r.branches
                    if t.kind == "choice"])
    tail += _not_applicable(results, targets)
    tail += _untrusted(results, targets)
    room = MAX_LINES - len(head) - len(tail) - 2 * 3    # each section: blank, heading, "more"
    n_musts = min(len(musts), max(room - min(len(others), 5), 0))
    must_lines = _section("Failing MUST / MUST NOT requirements", [m[2] for m in musts], n_musts)
    other_lines = _section("Other failures", [o[2] for o in others], max(room - n_musts, 0))
    return "\n".join(head + must_lines + other_lines + tail) + "\n"


def _not_applicable(results: list[Result], targets: list[str]) -> list[str]:
    """One line: how many cases each target could not run for want of a capability."""
    counts = {t: sum(r.verdict == NOT_APPLICABLE and r.target == t for r in results) for t in targets}
    if not any(counts.values()):
        return []
    return ["", "Not applicable (the case needs a capability the target lacks; see index.html): "
            + ", ".join(f"{t} {n}" for t, n in counts.items() if n) + "."]


def _untrusted(results: list[Result], targets: list[str]) -> list[str]:
    """Per target whose timing could not be trusted (a slow VM): how many results, and why."""
    lines = []
    for target in targets:
        marked = [r for r in results if r.target == target and r.timing]
        if marked:
            errors = sum(r.verdict == ERROR for r in marked)
            lines += ["", f"**{_escape(target)}: {len(marked)} results with untrusted timing** "
                      f"({errors} timing failures among them, reported as errors, not "
                      f"deviations): {_escape(marked[0].timing)}."]
    return lines


def reason(result: Result) -> str:
    """Why a result is a problem, on one line."""
    if result.verdict == XPASS:
        text = f"passed, but expected to fail: {result.expectation}"
    elif result.failure is None:
        text = result.verdict
    else:
        f = result.failure
        text = (f"line {f.line}: " if f.line else "") + f.message
        if f.diff:
            text += " (" + "; ".join(f"{d['field']}: expected {d['expected']}, got {d['actual']}"
                                     for d in f.diff) + ")"
    text = " ".join(text.split())
    text = text if len(text) <= REASON_WIDTH else text[:REASON_WIDTH - 1] + "…"
    return _escape(text)


def _head(meta: dict[str, Any], results: list[Result], targets: list[str]) -> list[str]:
    counts = ", ".join(f"{n} {v}" for v in VERDICTS
                       if (n := sum(r.verdict == v for r in results)))
    kernel = meta.get("host", {}).get("kernel", "?")
    stopped = (f" · **interrupted by {meta['interrupted']}**: the run did not finish"
               if meta.get("interrupted") else "")
    return [f"## rfcdrill: {len(results)} results, {counts or 'none'}", "",
            f"rfcdrill {meta.get('version', '?')} · host kernel {kernel} · "
            f"{meta.get('started', '?')} · targets: {', '.join(targets)}{stopped}", "",
            *(f"- joined from {part}" for part in merged_from(meta)), *([""] if meta.get("inputs") else [])]


def _table(cov: Coverage) -> list[str]:
    lines = ["Requirements per RFC and level: ✓ passed, ✗ failing/error/unexpected pass, "
             "~ deviating, ↗ follows a later RFC, ◇ a MAY's choice, / catalogue total.", "",
             "| target | RFC | " + " | ".join(LEVELS) + " | all |",
             "|---|---|" + "---|" * (len(LEVELS) + 1)]
    for target in cov.targets:
        for rfc in [*cov.rfcs(), None]:
            cells = [_cell(cov.figures(target, rfc, level)) for level in LEVELS]
            cells.append(_cell(cov.figures(target, rfc)))
            lines.append(f"| {target} | {rfc or '**all**'} | " + " | ".join(cells) + " |")
    return lines


def _cell(figures: Figures) -> str:
    if not figures.total:
        return ""
    by = figures.by_status
    if by[UNTESTED] == figures.total:
        return f"– / {figures.total}"
    parts = [f"{by[PASSED]} ✓"]
    if bad := sum(by[s] for s in BAD):
        parts.append(f"**{bad} ✗**")
    if by[DEVIATING]:
        parts.append(f"{by[DEVIATING]} ~")
    if by[LATER]:
        parts.append(f"{by[LATER]} ↗")
    if by[CHOSEN]:
        parts.append(f"{by[CHOSEN]} ◇")
    return " ".join(parts) + f" / {figures.total}"


def _failing_musts(cov: Coverage) -> list[tuple[str, str, str]]:
    """(case id, target, line) for each case that makes MUST/MUST NOT requirements fail,
    its requirements named together."""
    found: dict[tuple[str, str], list[str]] = {}
    worst_of: dict[tuple[str, str], Result] = {}
    for target in cov.targets:
        for rfc in cov.rfcs():
            for reqs in cov.sections(rfc).values():
                for req in reqs:
                    if req.level not in STRICT or cov.status(req.id, target) not in BAD:
                        continue
                    worst = min((r for r in cov.results[(req.id, target)]
                                 if r.verdict in PROBLEM_ORDER),
                                key=lambda r: PROBLEM_ORDER.index(r.verdict))
                    key = (worst.case_id, target)
                    worst_of[key] = worst
                    found.setdefault(key, []).append(f"`{req.id}` ({req.level})")
    return [(case, target, f"{', '.join(reqs)} on {target}: case `{case}`: "
             f"{reason(worst_of[(case, target)])}") for (case, target), reqs in found.items()]


def _tally(title: str, names: list[str]) -> list[str]:
    """One line: how many results, and how often each RFC (or option) was named."""
    if not names:
        return []
    counts = Counter(names)
    return ["", f"{title}: {len(names)} (" + ", ".join(
        f"{_escape(name)} ×{n}" for name, n in counts.most_common()) + ")."]


def _section(title: str, items: list[str], room: int) -> list[str]:
    if not items:
        return []
    shown = items[:room]
    more = [f"- … and {len(items) - len(shown)} more in index.html"] if len(shown) < len(items) else []
    return ["", f"### {title} ({len(items)})", *(f"- {item}" for item in shown), *more]


def _escape(text: str) -> str:
    """Backslash-escape what Markdown (and GitHub's HTML filter) would interpret."""
    return re.sub(r"([\\`*_\[\]<>|#])", r"\\\1", text)
