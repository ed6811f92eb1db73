"""summary.md: short, failing MUSTs first, deviations counted, Markdown escaped."""

from __future__ import annotations

from harness.report import markdown
from harness.result import XFAIL
from tests.report import synthetic


def test_a_big_run_still_fits_the_line_budget() -> None:
    results = synthetic.big_run(300)
    text = markdown.render(synthetic.META, results)
    lines = text.splitlines()
    assert len(lines) <= markdown.MAX_LINES
    assert any(line.startswith("- … and ") and "more in index.html" in line for line in lines)
    assert f"Expected deviations: {sum(r.verdict == XFAIL for r in results)} " in text
    assert max(len(line) for line in lines if line.startswith("- ")) < 300


def test_failing_musts_come_before_other_failures() -> None:
    text = markdown.render(synthetic.META, synthetic.results())
    musts = text.index("### Failing MUST / MUST NOT requirements (4)")
    others = text.index("### Other failures (2)")
    assert musts < others
    must_part, other_part = text[musts:others], text[others:]
    for case in ("fin-ack", "broken-setup", "no-synack", "hostile"):
        assert f"case `{case}`" in must_part
    assert "`rfc9293:MUST-2` (MUST), `rfc9293:MUST-9` (MUST NOT) on kernel" in must_part
    assert "`nagle-hold` on kernel (fail): line 14: outbound segment does not match " \
           "(ack: expected 12, got 11; win: expected 100, got 64230)" in other_part
    assert "`stale-expectation` on stack (unexpected pass)" in other_part


def test_deviations_are_counted_not_listed() -> None:
    text = markdown.render(synthetic.META, synthetic.results())
    assert "Expected deviations: 1 " in text
    assert "known-deviation" not in text


def test_totals_per_rfc_and_level_per_target() -> None:
    text = markdown.render(synthetic.META, synthetic.results())
    assert "| kernel | 9293 | 0 ✓ **4 ✗** 1 ~ 1 ↗ / 63 | 0 ✓ **1 ✗** / 6 |" in text
    assert "| kernel | 9293 |" in text and "1 ✓ 1 ◇ / 18" in text
    assert "Follows a later RFC: 2 (RFC 5961 3.2 ×2)." in text
    assert "| stack | **all** | 4 ✓ 1 ↗ / 216 |" in text
    assert "| kernel | 793 | – / 77 |" in text


def test_reasons_are_one_escaped_line() -> None:
    text = markdown.render(synthetic.META, synthetic.results())
    hostile = next(line for line in text.splitlines() if "case `hostile`" in line)
    assert "\\<script\\>" in hostile and "\\|" in hostile and "\\`tick\\`" in hostile
    assert "<script>" not in text
    assert len(hostile) < 300 and hostile.endswith("…")
