"""index.html: figures and matrix agree with the results, text is escaped, nothing is fetched."""

from __future__ import annotations

import re

import pytest

from harness.catalog import catalogue
from harness.report import html
from harness.report.coverage import coverage
from tests.report import synthetic
from tests.report.dom import having


@pytest.fixture(scope="module")
def page() -> str:
    return html.render(synthetic.META, synthetic.results())


def test_hostile_text_is_escaped_everywhere(page: str) -> None:
    assert "<script>alert" not in page
    assert page.count("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;") >= 8
    assert page.count("<script>") == 1          # the page's own


def test_the_page_needs_no_network(page: str) -> None:
    assert not re.search(r"<link|@import|url\(|src=", page)
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) == {"http://www.w3.org/2000/svg"}


def test_figures_on_the_page_are_the_coverage_figures(page: str) -> None:
    cov = coverage(synthetic.results(), synthetic.TARGETS)
    cells = having(page, "data-fig")
    assert cells
    for cell in cells:
        row = cell.up("tr")
        rfc, level = row.attrs["data-rfc"] or None, row.attrs["data-level"] or None
        figures = cov.figures(cell.attrs.get("data-target"), rfc, level)
        values = {"total": figures.total, "wire_testable": figures.wire_testable,
                  "covered": figures.covered, **figures.by_status}
        assert int(cell.text) == values[cell.attrs["data-fig"]], (cell.attrs, rfc, level)


def test_the_matrix_has_a_cell_per_requirement_and_target_with_its_status(page: str) -> None:
    cov = coverage(synthetic.results(), synthetic.TARGETS)
    cells = [e for e in having(page, "data-status") if e.tag == "td"]
    assert len(cells) == len(catalogue()) * len(synthetic.TARGETS)
    for cell in cells:
        req_id = cell.up("tr").attrs["id"].removeprefix("req-")
        assert cell.attrs["data-status"] == cov.status(req_id, cell.attrs["data-target"])
    deviating = next(c for c in cells if c.attrs["data-status"] == "deviating")
    assert "Linux acks later than the RFC asks" in deviating.text


def test_verdict_totals_per_target(page: str) -> None:
    shown = {(e.attrs["data-target"], e.attrs["data-verdict-count"]): int(e.text.split()[0])
             for e in having(page, "data-verdict-count")}
    for (target, verdict), count in shown.items():
        assert count == sum(r.target == target and r.verdict == verdict
                            for r in synthetic.results())
    assert shown[("kernel", "fail")] == 4 and shown[("stack", "unexpected pass")] == 1


def test_one_collapsed_panel_per_case_with_its_failure_and_ladder(page: str) -> None:
    panels = [e for e in having(page, "data-verdicts") if e.tag == "details"]
    assert len(panels) == len({r.case_id for r in synthetic.results()})
    assert not any("open" in p.attrs for p in panels)
    fin_ack = next(p for p in panels if p.attrs["id"] == "case-fin-ack")
    assert fin_ack.attrs["data-verdicts"] == "fail pass"
    for text in ("line 14: outbound segment does not match", "ack1211", "win10064230",
                 "expected: F. 1:1(0) ack 12 win 100", "Requirements: rfc9293:MUST-2"):
        assert text in fin_ack.text


def test_pcaps_are_linked_where_the_report_keeps_them(page: str) -> None:
    assert 'href="pcaps/fin-ack.kernel.pcap"' in page
    assert "pcaps/passive-open.kernel.pcap" not in page
    assert "pcaps/broken-setup.kernel.pcap" not in page        # an error with no packets
    everything = html.render(synthetic.META, synthetic.results(), keep_all_pcaps=True)
    assert 'href="pcaps/passive-open.kernel.pcap"' in everything


def test_the_run_is_described_in_the_header(page: str) -> None:
    header = page[:page.index("</header>")]
    for text in ("9.9.9", "6.1.0-test", "2025-01-02T03:04:05+00:00", "kernel, stack",
                 "net.ipv4.tcp_sack", "4096\t131072\t6291456"):
        assert text in header
