"""The verdicts that pass and say more (follows-later-rfc, choice) from the expectations file
to every report: results.json, JUnit, index.html and summary.md."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from harness import expectations
from harness.report import html, junit, markdown
from harness.result import FAIL, FOLLOWS, PASS, XPASS, Result
from tests.report import synthetic


def _result(path, raw: str) -> Result:
    return Result("rfc793-x", str(path), "kernel", raw, raw_verdict=raw)


def test_a_follows_entry_turns_a_failure_into_follows_later_rfc(tmp_path) -> None:
    (tmp_path / "expectations").mkdir()
    (tmp_path / "expectations" / "kernel.yaml").write_text(
        "rfc793-x:\n  follows: RFC 5961 3.2\n  reason: challenge ACK instead of an abort\n")
    case = tmp_path / "x.yaml"
    failed = expectations.apply(_result(case, FAIL))
    assert (failed.verdict, failed.follows) == (FOLLOWS, "RFC 5961 3.2")
    assert failed.expectation == "challenge ACK instead of an abort"
    assert expectations.apply(_result(case, PASS)).verdict == XPASS
    expectations.load_file.cache_clear()


def test_junit_names_the_branch_and_the_later_rfc() -> None:
    suite = ET.fromstring(junit.render(synthetic.results()))
    case = next(c for c in suite.iter("testcase") if c.get("name") == "challenge-ack[kernel]")
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["verdict"] == FOLLOWS and props["follows"] == "RFC 5961 3.2"
    assert props["branch:16"] == "RFC 5961 3.2"
    assert case.find("failure") is None and case.find("skipped") is None


def test_the_page_and_the_summary_show_which_branch_and_which_rfc() -> None:
    page = html.render(synthetic.META, synthetic.results())
    assert 'data-branch="RFC 5961 3.2" data-kind="follows"' in page
    assert "Follows RFC 5961 3.2 on stack: the stack follows RFC 5961" in page
    assert 'data-branch="MAY not taken: no limit" data-kind="choice"' in page
    summary = markdown.render(synthetic.META, synthetic.results())
    assert "Choices of options the RFCs leave open: 1 (MAY not taken: no limit ×1)." in summary
