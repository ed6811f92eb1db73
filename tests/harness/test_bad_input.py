"""A broken file fails alone: in `rfcdrill check`, in `rfcdrill run` (an error result with its
line in every report), and under pytest (one failed item); `check` reads all that `run` will
read; a path that is not a regular file is an error at once; command-line values are checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.targets import available
from tests.conftest import HANDSHAKE, case_yaml, needs_root
from tests.harness.test_cli import rfcdrill

SOCKET = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"
# Inputs that ended in a traceback before (RecursionError, OverflowError in the scheduler,
# UnicodeDecodeError, ValueError), each with where its error is now reported.
BROKEN = {
    "nested.yaml": ("+0 setsockopt(3, SOL_SOCKET, SO_LINGER, " + "[" * 2000 + "]" * 2000 + ", 4) = 0",
                    "9:74: brackets nested more than 32 deep"),
    "late.yaml": ("+99999999999999999999 close(3) = 0", "9:4: a time of 1e+20 s is past the limit"),
    "escape.yaml": ('+0 write(3, "\\u12", 1) = 1', "9:16: unknown escape"),
    "digits.yaml": ("+0 < S 0:0(0) win " + "9" * 5000, "9:21: a number of 5000 characters"),
    "window.yaml": ("+0 < S 0:0(0) win 70000", "9:21: win 70000 does not fit its 16-bit field"),
}


@pytest.fixture
def broken_folder(write_case) -> Path:
    for name, (line, _) in BROKEN.items():
        write_case(name, case_yaml(name.removesuffix(".yaml"), SOCKET + line + "\n"))
    return write_case("good.yaml", case_yaml("good", HANDSHAKE)).parent


def test_check_goes_through_every_file_and_reports_each_error(broken_folder):
    done = rfcdrill("check", str(broken_folder))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    for name, (_, where) in BROKEN.items():
        assert f"{broken_folder / name}:{where}" in done.stderr
    assert f"{len(BROKEN) + 1} case files checked, {len(BROKEN)} with errors" in done.stdout


@needs_root
def test_run_reports_a_broken_file_as_an_error_with_its_line_and_runs_the_rest(broken_folder, tmp_path):
    out = tmp_path / "out"
    done = rfcdrill("run", str(broken_folder), "--target", "stack", "--report", str(out))
    assert done.returncode == 1 and "Traceback" not in done.stderr + done.stdout
    assert f"{len(BROKEN) + 1} results" in done.stdout and f"1 pass, {len(BROKEN)} error" in done.stdout
    results = {r["case_id"]: r for r in json.loads((out / "results.json").read_text())["results"]}
    assert results["good"]["verdict"] == "pass"
    junit = ET.parse(out / "junit.xml").getroot()
    html = (out / "index.html").read_text()
    for name, (_, where) in BROKEN.items():
        line, column, message = where.split(":", 2)
        result = results[name.removesuffix(".yaml")]
        assert result["verdict"] == "error"
        assert (result["failure"]["line"], result["failure"]["column"]) == (int(line), int(column))
        assert f"{broken_folder / name}:{where}" in done.stdout
        case = next(c for c in junit.iter("testcase") if c.get("name") == f"{name[:-5]}[stack]")
        assert f"{broken_folder / name}:{where}" in case.find("error").get("message")
        assert f"line {line}: {message.strip()}" in html


def test_a_fifo_is_an_error_at_once(tmp_path):
    fifo = tmp_path / "case.yaml"
    os.mkfifo(fifo)
    for args in (["check", str(fifo)], ["check", str(tmp_path)]):
        done = rfcdrill(*args)          # would block forever on open(); the helper's timeout is 120 s
        assert done.returncode == 1
        assert f"{fifo}:1:1: not a regular file" in done.stderr


EXPECTATIONS = "rfc793-case:\n  outcome: fail\n  reason: on purpose\nother-case:\n  outcome: maybe\n"


def test_check_reads_the_expectations_a_run_will_read(write_case):
    write_case("good.yaml", case_yaml("good", HANDSHAKE))
    broken = write_case("expectations/kernel.yaml", EXPECTATIONS)
    done = rfcdrill("check", str(broken.parent.parent))
    assert done.returncode == 1
    assert f"{broken}:4:1: other-case: needs outcome (fail, skip or pass) or follows (a later RFC), and a reason" in done.stderr
    assert "1 case files checked, 1 with errors" in done.stdout


@needs_root
def test_broken_expectations_make_only_their_target_an_error(write_case, tmp_path):
    write_case("good.yaml", case_yaml("good", HANDSHAKE))
    broken = write_case("expectations/stack.yaml", EXPECTATIONS)
    done = rfcdrill("run", str(broken.parent.parent), "--target", "kernel", "--target", "stack",
                    "--json", str(tmp_path / "r.json"))
    verdicts = {(r["target"], r["verdict"]) for r in json.loads((tmp_path / "r.json").read_text())["results"]}
    assert verdicts == {("kernel", "pass"), ("stack", "error")}
    assert f"{broken}:4:1: other-case: needs outcome" in done.stdout


@pytest.mark.parametrize("args, message", [
    (["run", "--jobs", "0", "x"], "argument --jobs/-j: must be from 1 to 256, not 0"),
    (["run", "--jobs", "many", "x"], "argument --jobs/-j: 'many' is not an integer"),
    (["run", "--repeat", "-1", "x"], "argument --repeat: must be from 1 to 10000, not -1"),
    (["run", "--tolerance-scale", "nan", "x"], "argument --tolerance-scale: must be a finite number"),
    (["run", "--tolerance-scale", "0", "x"], "argument --tolerance-scale: must be a finite number above 0"),
    (["check", "-D", "1X=2", "x"], "rfcdrill: -D 1X=2: expected NAME=VALUE"),
    (["check", "-D", "X", "x"], "rfcdrill: -D X: expected NAME=VALUE"),
    (["check", "-D", "X=" + "1" * 5000, "x"], "the value has 5000 characters (at most 4096)"),
])
def test_command_line_values_are_checked(args, message):
    done = rfcdrill(*args)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_report_on_a_file_that_is_not_results_json_says_so(tmp_path):
    bad = tmp_path / "results.json"
    bad.write_text("{\n  oops\n}")
    done = rfcdrill("report", str(bad), "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and f"{bad}:2:3: not JSON" in done.stderr


# -- pytest in a folder of its own, with no conftest -------------------------------------------------
CI_CONFIG = "name: ci\non: [push]\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - run: make\n"


@pytest.fixture
def own_folder(pytester: pytest.Pytester) -> pytest.Pytester:
    """A user's repository: cases beside CI configs and other YAML, no conftest.py."""
    cases = pytester.mkdir("my-cases")
    (cases / "good.yaml").write_text(case_yaml("good", HANDSHAKE))
    (cases / "broken.yaml").write_text(case_yaml("broken", SOCKET + "+0 < S 0:0(0) win 70000\n"))
    (cases / "settings.yaml").write_text("retries: 3\nnames: [a, b]\n")
    workflows = pytester.mkdir(".github") / "workflows"
    workflows.mkdir()
    (workflows / "ci.yml").write_text(CI_CONFIG)
    (pytester.path / "docker-compose.yml").write_text("services:\n  x: {image: y}\n")
    assert not list(pytester.path.rglob("conftest.py"))
    return pytester


def test_the_installed_plugin_collects_cases_anywhere_and_nothing_else(own_folder):
    result = own_folder.runpytest_subprocess(".", "--co", "-q")
    targets = available()          # naming no target: every available one
    result.stdout.fnmatch_lines([f"my-cases/{name}.yaml::{name}[[]{target}[]]"
                                 for name in ("broken", "good") for target in targets]
                                + [f"{2 * len(targets)} tests collected*"])
    assert "ci.yml" not in result.stdout.str() and "settings" not in result.stdout.str()
    assert result.ret == 0


@needs_root
def test_under_pytest_a_broken_case_is_one_failed_item_and_the_session_goes_on(own_folder):
    result = own_folder.runpytest_subprocess("my-cases", "--target", "stack")
    result.stdout.fnmatch_lines(["*broken.yaml:9:21: win 70000 does not fit its 16-bit field*"])
    assert result.parseoutcomes() == {"passed": 1, "failed": 1}
