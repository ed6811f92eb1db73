"""The rfcdrill command: exit codes, reports, a broken case failing alone, and no root."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from tests.conftest import HANDSHAKE, case_yaml, needs_root

RFCDRILL = [sys.executable, "-m", "harness"]


def rfcdrill(*args: str, drop: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI; `drop`: setpriv options that take capabilities away (as a normal user has)."""
    command = [*RFCDRILL, *args]
    if drop:
        command = ["setpriv", *drop, "--", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=120,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))


def test_check_reports_each_broken_file_and_counts_them(write_case):
    good = write_case("good.yaml", case_yaml("good", HANDSHAKE))
    bad = write_case("bad.yaml", case_yaml("bad", "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 frob() = 0\n"))
    done = rfcdrill("check", str(good.parent))
    assert done.returncode == 1
    assert f"{bad}:9:6: not supported: frob" in done.stderr
    assert "2 case files checked, 1 with errors" in done.stdout
    assert "Traceback" not in done.stderr


@needs_root
def test_a_broken_case_fails_alone_and_the_rest_is_reported(write_case, tmp_path):
    write_case("a-good.yaml", case_yaml("good", HANDSHAKE))
    write_case("b-bad.yaml", "id: bad\nrequirements: [nope]\nscript: '0 listen(3, 1) = 0'\n")
    write_case("c-good.yaml", case_yaml("good-too", HANDSHAKE + "+0 close(4) = 0\n+0 > F. 1:1(0) ack 1\n"))
    out = tmp_path / "out"
    done = rfcdrill("run", str(tmp_path / "cases"), "--target", "kernel", "--json",
                    str(out / "results.json"), "--junit", str(out / "junit.xml"), "--report", str(out / "r"))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "3 results" in done.stdout and "2 pass, 1 error" in done.stdout
    assert "unknown requirement id 'nope'" in done.stdout
    results = json.loads((out / "results.json").read_text())
    assert sorted(r["verdict"] for r in results["results"]) == ["error", "pass", "pass"]
    assert results["run"]["environments"]["kernel"]["kernel"]
    suite = ET.parse(out / "junit.xml").getroot()
    assert suite.get("tests") == "3" and suite.get("errors") == "1"
    good = next(c for c in suite if c.get("name") == "good[kernel]")
    props = {(p.get("name"), p.get("value")) for p in good.iter("property")}
    assert ("requirement", "rfc793:transition:LISTEN:syn") in props
    assert ("level:rfc793:transition:LISTEN:syn", "MUST") in props
    assert (out / "r" / "results.json").is_file() and (out / "r" / "junit.xml").is_file()


@needs_root
def test_a_clean_run_exits_zero_and_a_failure_non_zero(write_case, tmp_path):
    path = write_case("good.yaml", case_yaml("good", HANDSHAKE))
    assert rfcdrill("run", str(path), "--target", "kernel").returncode == 0
    wrong = write_case("wrong.yaml", case_yaml("wrong", HANDSHAKE.replace("ack 1 <mss", "ack 9 <mss")))
    done = rfcdrill("run", str(wrong), "--target", "kernel")
    assert done.returncode == 1 and "ack: expected 9, got 1" in done.stdout


@needs_root
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_without_the_capabilities_it_says_so_in_one_line(write_case):
    path = write_case("good.yaml", case_yaml("good", HANDSHAKE))
    done = rfcdrill("run", str(path), "--target", "kernel",
                    drop=["--bounding-set=-sys_admin,-net_admin", "--inh-caps=-sys_admin,-net_admin"])
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs root" in lines[0] and "sudo" in lines[0]


def test_repeated_runs_name_the_cases_whose_verdict_changed():
    from harness.cli import _unstable
    from harness.result import Result
    first = [Result("a", "a.yaml", "kernel", "pass"), Result("b", "b.yaml", "kernel", "pass")]
    second = [Result("a", "a.yaml", "kernel", "pass"), Result("b", "b.yaml", "kernel", "fail")]
    assert _unstable([first, second]) == ["FLAKY b[kernel]: pass, fail"]
    assert _unstable([first, first]) == []
