"""`rfcdrill report results.json --out DIR` writes the same folder as the run did."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from harness.report.write import write_report
from tests.report import synthetic


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.mark.parametrize("pcap", ["failures", "all"])
def test_rendering_again_from_results_json_is_identical(tmp_path: Path, pcap: str) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    write_report(first, synthetic.META, synthetic.results(), pcap_all=pcap == "all")
    assert main(["report", str(first / "results.json"), "--out", str(second),
                 "--pcap", pcap]) == 0
    before, after = _files(first), _files(second)
    assert {"index.html", "summary.md", "results.json", "junit.xml",
            "pcaps/fin-ack.kernel.pcap"} <= set(before)
    assert ("pcaps/passive-open.kernel.pcap" in before) == (pcap == "all")
    assert before == after
