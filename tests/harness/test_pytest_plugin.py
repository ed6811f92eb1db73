"""pytest collects cases as `<case-id>[<target>]` items with markers, expectations and
JUnit properties, serially and under pytest-xdist alike."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tests.conftest import HANDSHAKE, case_yaml, needs_root

pytestmark = needs_root

WRONG = HANDSHAKE.replace("ack 1 <mss", "ack 7 <mss")


@pytest.fixture
def project(pytester: pytest.Pytester):
    cases = pytester.mkdir("cases")
    (cases / "good.yaml").write_text(case_yaml("good", HANDSHAKE))
    (cases / "deviates.yaml").write_text(case_yaml("deviates", WRONG,
                                                   requirements="rfc1122:4.2.2.13-a"))
    (cases / "wrong.yaml").write_text(case_yaml("wrong", WRONG))
    (cases / "broken.yaml").write_text("id: broken\nrequirements: [rfc793:transition:LISTEN:syn]\n"
                                       "script: '0 nonsense'\n")
    expectations = cases / "expectations"
    expectations.mkdir()
    (expectations / "kernel.yaml").write_text(
        "deviates:\n  outcome: fail\n  reason: the script expects a wrong ack on purpose\n")
    return pytester


def outcomes(result: pytest.RunResult) -> dict[str, int]:
    return {k: v for k, v in result.parseoutcomes().items() if k in
            ("passed", "failed", "xfailed", "error", "errors", "skipped")}


def test_items_verdicts_and_junit_properties(project: pytest.Pytester):
    junit = project.path / "junit.xml"
    result = project.runpytest_subprocess("cases", "--target", "kernel", "-v", f"--junitxml={junit}")
    result.stdout.fnmatch_lines(["*broken.yaml::broken?kernel? FAILED*",
                                 "*deviates.yaml::deviates?kernel? XFAIL*",
                                 "*good.yaml::good?kernel? PASSED*",
                                 "*wrong.yaml::wrong?kernel? FAILED*"])
    result.stdout.fnmatch_lines(["*broken.yaml:3:11: not supported: nonsense*", "*ack: expected 7, got 1*"])
    assert outcomes(result) == {"passed": 1, "failed": 2, "xfailed": 1}
    case = next(c for c in ET.parse(junit).getroot().iter("testcase") if c.get("name") == "good[kernel]")
    props = {(p.get("name"), p.get("value")) for p in case.iter("property")}
    assert {("case_id", "good"), ("target", "kernel"), ("level", "MUST"), ("verdict", "pass"),
            ("requirement", "rfc793:transition:LISTEN:syn")} <= props


def test_markers_and_keywords_select(project: pytest.Pytester):
    assert outcomes(project.runpytest_subprocess("cases", "--target", "kernel", "-m", "rfc1122")) == {"xfailed": 1}
    assert outcomes(project.runpytest_subprocess("cases", "-m", "kernel and must", "-k", "good")) == {"passed": 1}


def test_parallel_run_gives_the_same_verdicts(project: pytest.Pytester):
    result = project.runpytest_subprocess("cases", "--target", "kernel", "-n", "2")
    assert outcomes(result) == {"passed": 1, "failed": 2, "xfailed": 1}


def test_every_case_is_an_item_per_target(project: pytest.Pytester):
    result = project.runpytest_subprocess("cases", "--co", "-q")
    result.stdout.fnmatch_lines(["*good.yaml::good?kernel?", "*good.yaml::good?stack?"])
    assert outcomes(project.runpytest_subprocess("cases", "-m", "stack", "-k", "good")) == {"passed": 1}
