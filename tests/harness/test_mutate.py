"""`rfcdrill mutate`: the registry is sound, the scoring counts kills against the baseline,
and a short real run kills its mutants."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness import cli
from harness.catalog import catalogue
from harness.execute import Job
from harness.mutate import command
from harness.mutate.registry import MUTANTS, problems
from harness.mutate.score import BROKEN, judge, tied
from harness.result import ERROR, FAIL, FOLLOWS, PASS, Failure, Result
from tests.conftest import needs_root

ROOT = Path(__file__).resolve().parents[2]


def test_registry_is_sound() -> None:
    assert problems() == []
    assert len(MUTANTS) >= 150


def test_every_mutant_breaks_a_must_or_should() -> None:
    levels = {catalogue()[rid].level for m in MUTANTS.values() for rid in m.requirements}
    assert levels <= {"MUST", "MUST NOT", "SHOULD", "SHOULD NOT"}


def test_a_case_is_tied_to_a_mutant_by_a_shared_requirement() -> None:
    m = MUTANTS["checksum-not-verified"]
    cases = {"a": ["rfc9293:MUST-3"], "b": ["rfc9293:MUST-2"], "c": ["rfc1122:4.2.2.7-b", "x"]}
    assert tied(m, cases) == ["a", "c"]


def test_a_kill_needs_a_tied_case_that_passed_unmutated() -> None:
    m = MUTANTS["checksum-not-verified"]
    baseline = {"a": PASS, "b": FAIL, "c": FOLLOWS}
    assert judge(m, ["a", "b", "c"], baseline, {"a": PASS, "b": FAIL, "c": PASS}).killed_by == []
    # a case failing already kills nothing, whatever it does with the mutant
    assert judge(m, ["b"], baseline, {"b": ERROR}).killed_by == []
    assert judge(m, ["a", "c"], baseline, {"a": ERROR, "c": FAIL}).killed_by == ["a", "c"]
    assert not judge(m, [], baseline, {}).killed
    # a crash in the mutant's own code is its bug, not a kill
    assert judge(m, ["a"], baseline, {"a": BROKEN}).killed_by == []


def test_a_programming_error_in_a_mutant_is_not_a_kill() -> None:
    def result(message: str) -> Result:
        return Result("m :: a", "a.yaml", "stack", ERROR, raw_verdict=ERROR, failure=Failure(message))
    assert command._verdict(result("internal error: TypeError: f() got an unexpected keyword")) == BROKEN
    assert command._verdict(result("internal error: RuntimeError: option parser crashed")) == ERROR


def _fake_cases(*ids_by_case: tuple[str, list[str]]) -> dict[str, Job]:
    return {case: Job(f"{case}.yaml", "stack", script=object(), case_id=case, requirements=ids)
            for case, ids in ids_by_case}


def _fake_runner(broken_by: dict[str, set[str]], failing: set[str]):
    """Runs nothing: a case fails if it fails unmutated or the job's mutant breaks it."""
    def run_jobs(jobs, parallel=1, scale=1.0, stop=None):
        for job in jobs:
            name, _, case = job.case_id.rpartition(command._SEP)
            mutant = job.prepare.args[0].name if job.prepare else None
            assert (mutant or "") == name
            bad = case in failing or case in broken_by.get(mutant, set())
            yield Result(job.case_id, job.path, job.target, FAIL if bad else PASS, 0.01,
                         raw_verdict=FAIL if bad else PASS)
    return run_jobs


@pytest.fixture
def fake_run(monkeypatch, capsys):
    cases = _fake_cases(("rst-case", ["rfc793:transition:ESTABLISHED:rst-in-window"]),
                        ("csum-case", ["rfc9293:MUST-3"]),
                        ("ttl-case", ["rfc9293:MUST-49"]))
    monkeypatch.setattr(command, "_case_jobs", lambda paths: (cases, 0))
    monkeypatch.setattr(command, "require_privileges", lambda text: None)

    def run(broken_by: dict[str, set[str]], failing: set[str], *argv: str) -> tuple[int, str]:
        monkeypatch.setattr(command, "run_jobs", _fake_runner(broken_by, failing))
        status = cli.main(["mutate", "-m", "rst-ignored-in-established", "-m", "checksum-not-verified",
                           "-m", "ttl-not-applied", *argv])
        return status, capsys.readouterr().out
    return run


def test_scoring_on_a_fake_runner(fake_run) -> None:
    status, out = fake_run({"rst-ignored-in-established": {"rst-case"},
                            "checksum-not-verified": {"csum-case"},
                            "ttl-not-applied": {"ttl-case"}}, {"ttl-case"})
    assert status == 0
    assert out.rstrip().splitlines()[-1] == "mutation score: 2/3"
    assert "SURVIVED ttl-not-applied [rfc9293:MUST-49, rfc1122:4.2.2.19-a]" in out
    assert "ttl-case: fail unmutated, fail mutated" in out
    assert "not passing (they kill no mutant): ttl-case" in out


def test_min_score_sets_the_exit_status(fake_run) -> None:
    broken = {"rst-ignored-in-established": {"rst-case"}}
    assert fake_run(broken, set(), "--min-score", "0.3")[0] == 0
    status, out = fake_run(broken, set(), "--min-score", "0.5")
    assert status == 1 and out.rstrip().endswith("mutation score: 1/3")


def test_all_cases_still_needs_a_tied_case_to_kill(fake_run) -> None:
    status, out = fake_run({"ttl-not-applied": {"rst-case"}}, set(), "--all-cases")
    assert "failed without being tied to it: rst-case" in out
    assert out.rstrip().endswith("mutation score: 0/3")


def test_bad_arguments_are_one_line_errors(capsys) -> None:
    assert cli.main(["mutate", "-m", "no-such-mutant", "--list"]) == 2
    assert "unknown mutant no-such-mutant" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["mutate", "--min-score", "95"])
    assert "is not between 0 and 1" in capsys.readouterr().err


@needs_root
def test_a_short_real_run_kills_its_mutants(capsys, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    status = cli.main(["mutate", "--jobs", "2", "--min-score", "1", "-m", "rst-ignored-in-established",
                       "-m", "checksum-not-verified", "-m", "delayed-ack-600ms"])
    out = capsys.readouterr().out
    assert re.search(r"^3 mutants, \d+ mutant case runs", out, re.M)
    assert out.rstrip().splitlines()[-1] == "mutation score: 3/3"
    assert status == 0
