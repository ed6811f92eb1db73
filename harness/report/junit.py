"""JUnit XML, with each case's requirement ids and levels as properties (CI systems show them)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from harness.catalog import catalogue
from harness.result import ERROR, FAIL, INTERRUPTED, NOT_APPLICABLE, SKIPPED, XFAIL, XPASS, Result


def render(results: list[Result]) -> bytes:
    suite = ET.Element("testsuite", name="rfcdrill", tests=str(len(results)),
                       failures=str(sum(r.verdict in (FAIL, XPASS) for r in results)),
                       errors=str(sum(r.verdict == ERROR for r in results)),
                       skipped=str(sum(r.verdict in (SKIPPED, XFAIL, INTERRUPTED, NOT_APPLICABLE)
                                       for r in results)),
                       time=f"{sum(r.duration for r in results):.3f}")
    known = catalogue()
    for result in results:
        case = ET.SubElement(suite, "testcase", classname=f"rfcdrill.{result.target}",
                             name=f"{result.case_id}[{result.target}]", file=result.path,
                             time=f"{result.duration:.3f}")
        props = ET.SubElement(case, "properties")
        for req in result.requirements:
            ET.SubElement(props, "property", name="requirement", value=req)
            if req in known:
                ET.SubElement(props, "property", name=f"level:{req}", value=known[req].level)
        ET.SubElement(props, "property", name="verdict", value=result.verdict)
        for taken in result.branches:
            ET.SubElement(props, "property", name=f"branch:{taken.line}", value=taken.label)
        if result.follows:
            ET.SubElement(props, "property", name="follows", value=result.follows)
        if result.timing:
            ET.SubElement(props, "property", name="timing", value=result.timing)
        message = result.failure.render(result.path) if result.failure else ""
        if result.verdict in (FAIL, XPASS):
            text = message or f"expected to fail ({result.expectation}) but passed"
            ET.SubElement(case, "failure", message=text.splitlines()[0]).text = text
        elif result.verdict == ERROR:
            ET.SubElement(case, "error", message=message.splitlines()[0] if message else "error").text = message
        elif result.verdict in (SKIPPED, XFAIL, NOT_APPLICABLE):
            ET.SubElement(case, "skipped", message=f"{result.verdict}: {result.expectation}")
        elif result.verdict == INTERRUPTED:      # no verdict: neither passed nor failed
            ET.SubElement(case, "skipped", message=message.splitlines()[0])
    return ET.tostring(suite, encoding="utf-8", xml_declaration=True)


def write(path: str | Path, results: list[Result]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(render(results))
