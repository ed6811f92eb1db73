"""The report folder: results.json, index.html, summary.md, junit.xml and pcaps/.

Everything but results.json is rendered from the same (metadata, results) that results.json
holds, so `rfcdrill report results.json --out DIR` writes the same folder again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.record import write_results
from harness.report import html, junit, markdown, pcap
from harness.result import Result


def write_report(out: str | Path, meta: dict[str, Any], results: list[Result],
                 pcap_all: bool = False) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_results(out / "results.json", meta, results)
    junit.write(out / "junit.xml", results)
    (out / "index.html").write_text(html.render(meta, results, pcap_all), encoding="utf-8")
    (out / "summary.md").write_text(markdown.render(meta, results), encoding="utf-8")
    for result in results:
        if pcap.kept(result, pcap_all):
            pcap.write(out / pcap.name(result), result.packets)
