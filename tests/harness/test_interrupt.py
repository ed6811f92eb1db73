"""Interrupts: SIGINT, SIGTERM and SIGKILL stop a real run within 5 s, leave no process,
namespace or TUN device of it behind, and (all but SIGKILL) write the partial report.

Each test starts `rfcdrill run` (or pytest) in a session of its own, waits until its case
processes are up, notes their pids, process groups and network namespaces, signals the
main process and then looks at the whole process table.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path

import pytest

from tests.conftest import needs_root

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 5.0        # seconds within which everything of the run must be gone

QUICK = """\
// done in a few milliseconds
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 close(3) = 0
"""
LISTENS = """\
// a listener for 30 s
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0 bind(3, ..., ...) = 0
+0 listen(3, 1) = 0
+30 close(3) = 0
"""
SHELL = """\
// a shell command of 30 s, in the case's process group
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 `sleep 30`
+0 close(3) = 0
"""


def _processes() -> dict[int, tuple[int, int]]:
    """Every process on the machine: pid -> (parent pid, process group)."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z":
            table[int(entry)] = (int(fields[1]), int(fields[2]))
    return table


def _netns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def _listens(pid: int) -> bool:
    """Whether the network namespace of `pid` holds a TCP socket in LISTEN (state 0A)."""
    try:
        lines = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return False
    return any(line.split()[3] == "0A" for line in lines)


class Run:
    """A run in a subprocess, and what belongs to it once its cases are under way."""

    def __init__(self, command: list[str]) -> None:
        self.proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.groups: set[int] = set()
        self.namespaces: set[str] = set()
        self.host_ns = _netns(os.getpid())

    def wait_for_cases(self, count: int, shell: bool, listening: bool = False) -> None:
        """Until `count` case processes (children of the run in groups of their own) are up,
        each in a namespace of its own, with `shell` a `sleep` of one of them too, and with
        `listening` one of them past its listen() (so a quicker case before it is done)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            table = _processes()
            cases = [pid for pid, (ppid, pgid) in table.items()
                     if ppid == self.proc.pid and pgid == pid]
            namespaces = {_netns(pid) for pid in cases} - {None, self.host_ns}
            sleeping = any(pgid in cases and pid not in cases for pid, (_, pgid) in table.items())
            listens = any(_listens(pid) for pid in cases)
            if (len(cases) >= count and len(namespaces) >= count and (sleeping or not shell)
                    and (listens or not listening)):
                self.groups, self.namespaces = set(cases), namespaces
                return
            time.sleep(0.05)
        self.proc.kill()
        raise AssertionError(f"the run's case processes did not start: {self.proc.communicate()}")

    def signal_and_wait(self, signum: int) -> tuple[float, int]:
        """Send `signum` to the main process; seconds until it exited, and its status."""
        start = time.monotonic()
        os.kill(self.proc.pid, signum)
        try:
            self.proc.wait(timeout=30)
        finally:
            if self.proc.returncode is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
        return time.monotonic() - start, self.proc.returncode

    def left(self) -> tuple[list[int], set[str]]:
        """Processes of the run's case groups, and namespaces of the run some process
        still holds (a TUN device lives exactly as long as its namespace)."""
        table = _processes()
        processes = [pid for pid, (_, pgid) in table.items() if pgid in self.groups]
        held = {_netns(pid) for pid in table} & self.namespaces
        return processes, held

    def gone_within(self, seconds: float) -> tuple[list[int], set[str]]:
        deadline = time.monotonic() + seconds
        while True:
            processes, held = self.left()
            if not (processes or held) or time.monotonic() > deadline:
                return processes, held
            time.sleep(0.05)


@pytest.fixture
def cases(tmp_path: Path) -> Path:
    folder = tmp_path / "cases"
    folder.mkdir()
    for name, text in (("a-quick.pkt", QUICK), ("b-listens.pkt", LISTENS),
                       ("c-shell.pkt", SHELL), ("d-listens-too.pkt", LISTENS)):
        (folder / name).write_text(text)
    return folder


def _rfcdrill(cases: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "harness", "run", str(cases), "--target", "kernel",
            "--ip-version", "ipv4", "--jobs", "2", "--report", str(out / "report"),
            "--json", str(out / "results.json"), "--junit", str(out / "junit.xml")]


@needs_root
@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_run_writes_what_finished_and_leaves_nothing(
        cases: Path, tmp_path: Path, signum: int, status: int) -> None:
    run = Run(_rfcdrill(cases, tmp_path))
    run.wait_for_cases(2, shell=True)          # b-listens and c-shell, a-quick already done
    elapsed, code = run.signal_and_wait(signum)
    processes, held = run.gone_within(LIMIT - elapsed)
    out, err = run.proc.communicate()
    print(f"{signal.Signals(signum).name}: exit after {elapsed:.2f} s, status {code}, "
          f"{len(processes)} processes and {len(held)} namespaces left")
    assert elapsed < LIMIT and code == status, (out, err)
    assert processes == [] and held == set()
    assert f"interrupted by {signal.Signals(signum).name}" in err
    verdicts = {r["case_id"].removesuffix("@ipv4"): (r["verdict"], r["failure"]["message"] if r["failure"] else "")
                for r in json.loads((tmp_path / "results.json").read_text())["results"]}
    assert verdicts["a-quick"] == ("pass", "")
    for running in ("b-listens", "c-shell"):
        assert verdicts[running][0] == "interrupted"
        assert verdicts[running][1].startswith(f"interrupted by {signal.Signals(signum).name} after")
    assert verdicts["d-listens-too"] == ("interrupted", "not run: the run was interrupted by "
                                         + signal.Signals(signum).name)
    report = (tmp_path / "report" / "results.json").read_text()
    assert json.loads(report)["run"]["interrupted"] == signal.Signals(signum).name
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "3 interrupted" in summary and f"interrupted by {signal.Signals(signum).name}**" in summary
    html = (tmp_path / "report" / "index.html").read_text()
    assert "v-interrupted" in html and f"<dd>{signal.Signals(signum).name}</dd>" in html
    junit = ET.parse(tmp_path / "junit.xml").getroot()
    assert junit.get("skipped") == "3" and junit.get("failures") == "0"


@needs_root
def test_sigkill_of_the_main_process_ends_its_case_processes(cases: Path, tmp_path: Path) -> None:
    run = Run(_rfcdrill(cases, tmp_path))
    run.wait_for_cases(2, shell=True)
    start = time.monotonic()
    os.kill(run.proc.pid, signal.SIGKILL)
    run.proc.wait(timeout=10)
    processes, held = run.gone_within(LIMIT)
    elapsed = time.monotonic() - start
    print(f"SIGKILL: all gone after {elapsed:.2f} s, {len(processes)} processes and "
          f"{len(held)} namespaces left")
    assert processes == [] and held == set()
    assert elapsed < LIMIT


def _pytest_plugin_args() -> list[str]:
    """The plugin comes from its entry point once installed as one; otherwise by name."""
    installed = any(ep.value.startswith("harness.pytest_plugin")
                    for ep in metadata.entry_points(group="pytest11"))
    return [] if installed else ["-p", "harness.pytest_plugin"]


@needs_root
@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_pytest_and_leaves_nothing(cases: Path, tmp_path: Path, signum: int,
                                                  status: int) -> None:
    (cases / "c-shell.pkt").unlink()
    junit = tmp_path / "pytest.xml"
    run = Run([sys.executable, "-m", "pytest", *_pytest_plugin_args(), "-p", "no:cacheprovider",
               "--target", "kernel", "-k", "ipv4 and not mapped", f"--junitxml={junit}",
               str(cases)])
    run.wait_for_cases(1, shell=False, listening=True)    # b-listens, so a-quick is done
    elapsed, code = run.signal_and_wait(signum)
    processes, held = run.gone_within(LIMIT - elapsed)
    out, err = run.proc.communicate()
    print(f"pytest {signal.Signals(signum).name}: exit after {elapsed:.2f} s, status {code}")
    assert elapsed < LIMIT and code == status, (out, err)
    assert processes == [] and held == set()
    cases_run = ET.parse(junit).getroot().iter("testcase")
    assert [c.get("name") for c in cases_run][0] == "a-quick@ipv4[kernel]"


WAITS = '''
import pathlib, time

def test_waits():
    pathlib.Path(__file__).with_name("waiting").touch()
    time.sleep(60)
'''


@needs_root
def test_sigterm_between_case_items_still_writes_junit(cases: Path, tmp_path: Path) -> None:
    """A plain test after the first case holds pytest between case items, where no case's
    own signal handling runs: SIGTERM there must still leave the JUnit of what ran."""
    for name in ("b-listens.pkt", "c-shell.pkt", "d-listens-too.pkt"):
        (cases / name).unlink()
    (cases / "test_waits.py").write_text(WAITS)
    junit = tmp_path / "pytest.xml"
    run = Run([sys.executable, "-m", "pytest", *_pytest_plugin_args(), "-p", "no:cacheprovider",
               "--target", "kernel", "-k", "ipv4 and not mapped or waits", f"--junitxml={junit}",
               str(cases / "a-quick.pkt"), str(cases / "test_waits.py")])
    deadline = time.monotonic() + 60
    while not (cases / "waiting").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (cases / "waiting").exists(), "the waiting test never started"
    elapsed, code = run.signal_and_wait(signal.SIGTERM)
    out, err = run.proc.communicate()
    print(f"pytest SIGTERM between items: exit after {elapsed:.2f} s, status {code}")
    assert elapsed < LIMIT and code == 143, (out, err)
    ran = {c.get("name"): [child.tag for child in c] for c in ET.parse(junit).getroot().iter("testcase")}
    assert "a-quick@ipv4[kernel]" in ran, ran
    assert not {"failure", "error", "skipped"} & set(ran["a-quick@ipv4[kernel]"]), ran
