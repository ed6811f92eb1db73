"""One case against lwIP gives the same failure report as against the kernel: the diff of the
segment that did not match, the timeline, the ladder and the pcap of the connection."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from scapy.layers.inet import TCP
from scapy.utils import rdpcap

from harness.targets.registry import resolve
from tests.conftest import HANDSHAKE, case_yaml, needs_root

pytestmark = needs_root
CASE = "lwip-report-window"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    if reason := resolve("lwip").unavailable:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("lwip-report")
    # lwIP's SYN-ACK offers a window of 65535: the script expects 1000, so the case fails
    # at its second outbound line with a field-by-field diff.
    script = HANDSHAKE.replace("> S. 0:0(0) ack 1 <mss 1460>", "> S. 0:0(0) ack 1 win 1000 <mss 1460>")
    (folder / "case.yaml").write_text(case_yaml(CASE, script))
    done = subprocess.run([sys.executable, "-m", "harness", "run", str(folder / "case.yaml"),
                           "--target", "lwip", "--report", str(folder / "out")],
                          capture_output=True, text=True, timeout=120)
    return done, folder / "out"


def test_the_failure_names_the_line_and_the_field(report) -> None:
    done, out = report
    assert done.returncode == 1, done.stdout + done.stderr
    [result] = json.loads((out / "results.json").read_text())["results"]
    assert (result["target"], result["verdict"]) == ("lwip", "fail")
    failure = result["failure"]
    assert "outbound segment does not match" in failure["message"]
    assert "win 1000" in failure["expected"] and "win 65535" in failure["actual"]
    assert failure["diff"] == [{"field": "win", "expected": "1000", "actual": "65535"}]
    # every step up to the failing line, each with its line: four calls, then the SYN
    steps = result["timeline"]
    assert [step["line"] for step in steps] == list(range(failure["line"] - 5, failure["line"]))
    assert [step["kind"] for step in steps] == ["call"] * 4 + ["inject"]


def test_the_pcap_holds_the_connection_as_the_wire_carried_it(report) -> None:
    _, out = report
    packets = rdpcap(str(out / "pcaps" / f"{CASE}.lwip.pcap"))
    flags = [str(p[TCP].flags) for p in packets]
    assert flags[:2] == ["S", "SA"]
    assert packets[1][TCP].window == 65535 and packets[1][TCP].sport == 8080


def test_the_html_report_has_the_ladder_and_links_the_pcap(report) -> None:
    _, out = report
    page = (out / "index.html").read_text()
    panel = page[page.index(f'id="case-{CASE}"'):]
    assert '<svg class="ladder"' in panel and ">lwip</text>" in panel
    assert f'href="pcaps/{CASE}.lwip.pcap"' in panel
