"""Coverage: how verdicts combine into a requirement's status, and the figures."""

from __future__ import annotations

import itertools

import pytest

from harness.catalog import Requirement, catalogue
from harness.report.coverage import (CHOSEN, DEVIATING, ERRORED, FAILING, LATER, LEVELS, PASSED,
                                     STATUSES, UNEXPECTED, UNTESTED, combine, coverage,
                                     natural_key)
from harness.result import (CHOICE, ERROR, FAIL, FOLLOWS, PASS, SKIPPED, VERDICTS, XFAIL, XPASS,
                            Result)
from tests.report import synthetic

RANK = [FAIL, ERROR, XPASS, XFAIL, FOLLOWS, CHOICE, PASS]   # worst first, as in coverage.py


@pytest.mark.parametrize("verdicts, status", [
    ([], UNTESTED), ([SKIPPED], UNTESTED), ([PASS], PASSED), ([PASS, PASS], PASSED),
    ([PASS, FAIL], FAILING), ([ERROR, FAIL], FAILING), ([PASS, ERROR], ERRORED),
    ([XPASS, XFAIL], UNEXPECTED), ([PASS, XFAIL], DEVIATING), ([SKIPPED, PASS], PASSED),
    ([PASS, FOLLOWS], LATER), ([FOLLOWS, XFAIL], DEVIATING), ([CHOICE, PASS], CHOSEN),
    ([CHOICE, FOLLOWS], LATER),
])
def test_a_requirement_is_as_bad_as_its_worst_case(verdicts: list[str], status: str) -> None:
    assert combine(verdicts) == status


def test_the_rule_is_the_same_for_every_pair_of_verdicts() -> None:
    expected = {FAIL: FAILING, ERROR: ERRORED, XPASS: UNEXPECTED, XFAIL: DEVIATING,
                FOLLOWS: LATER, CHOICE: CHOSEN, PASS: PASSED}
    for a, b in itertools.product(VERDICTS, repeat=2):
        ranked = [v for v in RANK if v in (a, b)]
        assert combine([a, b]) == (expected[ranked[0]] if ranked else UNTESTED), (a, b)


def _req(ident: str, rfc: str, level: str, wire: bool = True) -> Requirement:
    return Requirement(ident, rfc, "1.2", level, f"summary of {ident}", wire)


def _run(case: str, verdict: str, *reqs: str, target: str = "k") -> Result:
    return Result(case, f"{case}.yaml", target, verdict, requirements=list(reqs))


CATALOGUE = {r.id: r for r in [
    _req("a", "1", "MUST"), _req("b", "1", "MUST NOT"), _req("c", "1", "SHOULD"),
    _req("d", "2", "SHOULD NOT"), _req("e", "2", "MAY"), _req("f", "2", "MUST"),
    _req("g", "2", "MUST", wire=False), _req("h", "2", "MUST")]}

RESULTS = [_run("c1", PASS, "a", "b", "c"), _run("c2", FAIL, "b"), _run("c3", XFAIL, "c"),
           _run("c4", XPASS, "d"), _run("c5", ERROR, "e", "h"), _run("c6", XFAIL, "e"),
           _run("c7", SKIPPED, "f"), _run("c8", FAIL, "h"), _run("c9", PASS, "nowhere"),
           _run("c1", FAIL, "a", target="s")]


def test_each_requirement_gets_its_status_per_target() -> None:
    cov = coverage(RESULTS, ["k", "s"], CATALOGUE)
    assert {r: cov.status(r, "k") for r in CATALOGUE} == {
        "a": PASSED, "b": FAILING, "c": DEVIATING, "d": UNEXPECTED, "e": ERRORED,
        "f": UNTESTED, "g": UNTESTED, "h": FAILING}
    assert {r: cov.status(r, "s") for r in CATALOGUE} == {
        r: FAILING if r == "a" else UNTESTED for r in CATALOGUE}
    assert cov.covered("f", "k") and not cov.covered("g", "k")


def test_figures_per_rfc_and_level_count_every_status() -> None:
    cov = coverage(RESULTS, ["k", "s"], CATALOGUE)
    whole = cov.figures("k")
    assert (whole.total, whole.wire_testable, whole.covered) == (8, 7, 7)
    assert whole.by_status == {PASSED: 1, LATER: 0, CHOSEN: 0, DEVIATING: 1, UNEXPECTED: 1,
                               FAILING: 2, ERRORED: 1, UNTESTED: 2}
    must_2 = cov.figures("k", "2", "MUST")
    assert (must_2.total, must_2.wire_testable, must_2.covered) == (3, 2, 2)
    assert must_2.by_status[FAILING] == 1 and must_2.by_status[UNTESTED] == 2
    assert cov.figures("k", "1", "MUST NOT").by_status[FAILING] == 1
    assert cov.figures("k", "2", "SHOULD NOT").by_status[UNEXPECTED] == 1
    assert cov.figures("k", "2", "MAY").by_status[ERRORED] == 1
    assert cov.figures("s").by_status == {**dict.fromkeys(STATUSES, 0), FAILING: 1, UNTESTED: 7}
    assert cov.figures(None).by_status[UNTESTED] == 8


def test_figures_partition_the_catalogue_for_every_target_rfc_and_level() -> None:
    results = synthetic.results()
    cov = coverage(results, synthetic.TARGETS)
    assert {r.level for r in catalogue().values()} == set(LEVELS)
    for target in synthetic.TARGETS:
        assert cov.figures(target).total == len(catalogue())
        for rfc in cov.rfcs():
            per_level = [cov.figures(target, rfc, level) for level in LEVELS]
            assert sum(f.total for f in per_level) == cov.figures(target, rfc).total
            for figures in per_level:
                assert sum(figures.by_status.values()) == figures.total
                assert figures.covered <= figures.total


def test_the_synthetic_run_has_every_status_and_every_level() -> None:
    cov = coverage(synthetic.results(), synthetic.TARGETS)
    seen = {(cov.requirements[r].level, cov.status(r, t)) for (r, t) in cov.results}
    assert {status for _, status in seen} == set(STATUSES)
    assert {level for level, _ in seen} == set(LEVELS)


def test_sections_read_in_numeric_order() -> None:
    assert sorted(["3.10", "3.9", "3.10.7.4", "3.1"], key=natural_key) == [
        "3.1", "3.9", "3.10", "3.10.7.4"]
