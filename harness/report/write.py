"""The report folder: results.json, junit.xml, pcaps/ (and the HTML and Markdown views)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from harness.record import write_results
from harness.report import junit, pcap
from harness.result import PASS, Result


def pcap_name(result: Result) -> str:
    return "pcaps/" + re.sub(r"[^A-Za-z0-9._-]", "_", f"{result.case_id}.{result.target}") + ".pcap"


def write_report(out: str | Path, meta: dict[str, Any], results: list[Result],
                 pcap_all: bool = False) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_results(out / "results.json", meta, results)
    junit.write(out / "junit.xml", results)
    for result in results:
        if result.packets and (pcap_all or result.verdict != PASS):
            pcap.write(out / pcap_name(result), result.packets)
