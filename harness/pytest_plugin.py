"""pytest collects case files as items: one per case and target, `<case-id>[<target>]`.

Markers: the target (`-m kernel`, `-m stack`), each RFC a case's requirements come from
(`-m rfc793`) and each level (`-m must`, `-m should`, `-m must_not`...). Case metadata goes
into `user_properties`, so `--junitxml` carries it. Works under pytest-xdist: each item
runs in a process of its own, forked by the worker that holds it.

The plugin is installed with rfcdrill (a `pytest11` entry point), so `pytest DIR` collects
cases in any folder. `.pkt` files are collected anywhere. A YAML file is collected when it
is named on the command line, or when it looks like a case: `id:` and `script:` or `steps:`
at the start of lines (top-level keys), and it is not under an `expectations` directory.
Other YAML files (CI configs and the like) are left alone.
"""

from __future__ import annotations

import os
import re
import signal
import stat
import threading
from pathlib import Path
from typing import Iterator

import pytest

from harness import expectations, limits
from harness.catalog import catalogue, level_marker
from harness.execute import Job, run_jobs
from harness.interrupt import EXIT_STATUS, StopSignals
from harness.netns import have_privileges
from harness.result import ERROR, FAIL, NOT_APPLICABLE, SKIPPED, XFAIL, XPASS, Result
from harness.suite import jobs_for, skipped_result
from harness.targets import available, known_names, resolve

_RFCS = ("rfc793", "rfc1122", "rfc2873", "rfc5681", "rfc9293")
_LEVELS = ("must", "must_not", "should", "should_not", "may")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rfcdrill")
    group.addoption("--target", action="append", dest="rfcdrill_targets", metavar="NAME",
                    help="rfcdrill targets to collect cases for: a name (kernel, stack, "
                         "stack-linux, stack-alt, lwip, gvisor, kernel-exec, or one registered) or "
                         "exec:COMMAND (default: every available one of kernel, the three stack "
                         "targets, lwip and gvisor)")
    group.addoption("--tolerance-scale", type=limits.tolerance_scale, default=1.0, dest="rfcdrill_scale",
                    help="multiply every timing tolerance of the cases")


def pytest_configure(config: pytest.Config) -> None:
    for name in known_names():
        config.addinivalue_line("markers", f"{name}: an rfcdrill case run against the {name} target")
    for rfc in _RFCS:
        config.addinivalue_line("markers", f"{rfc}: a case checking a requirement of {rfc.upper()}")
    for level in _LEVELS:
        config.addinivalue_line("markers", f"{level}: a case checking a {level.upper()} requirement")


_CASE_ID = re.compile(r"^id[ \t]*:", re.M)
_CASE_TIMELINE = re.compile(r"^(script|steps)[ \t]*:", re.M)


def _is_case(path: Path, config: pytest.Config) -> bool:
    if path.suffix == ".pkt":
        return True
    if path.suffix not in (".yaml", ".yml"):
        return False
    if any(Path(arg.split("::")[0]).resolve() == path.resolve() for arg in config.args):
        return True               # named: collected, and an error if it is no case
    return "expectations" not in path.parts and _looks_like_case(path)


def _looks_like_case(path: Path) -> bool:
    """Top-level `id:` and `script:` or `steps:`; only a regular file is read (a FIFO
    would block), and only as much as a case may hold."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with open(path, "rb") as f:
            text = f.read(limits.MAX_FILE_BYTES).decode("utf-8", "replace")
    except OSError:
        return False
    return bool(_CASE_ID.search(text) and _CASE_TIMELINE.search(text))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if _is_case(file_path, parent.config):
        return CaseFile.from_parent(parent, path=file_path)
    return None


class CaseFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        targets = self.config.getoption("rfcdrill_targets") or available()
        for job in jobs_for(str(self.path), targets):
            yield CaseItem.from_parent(self, name=f"{job.case_id}[{job.target}]", job=job)


class Terminated(KeyboardInterrupt):
    """SIGTERM between items: pytest's interrupted path, which still writes its reports."""


_TERMINATED = pytest.StashKey[bool]()
_OWN_HANDLER = pytest.StashKey[object]()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Between case items SIGTERM (what `timeout` and CI runners send) ends the session the
    way Ctrl-C does, so JUnit and the terminal summary are written for the items that ran;
    the exit status is still 143. A case in flight handles the signal itself (StopSignals).
    Only sessions that hold cases are touched, and only a default SIGTERM disposition."""
    if not any(isinstance(item, CaseItem) for item in session.items):
        return
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def terminate(signum: int, frame: object) -> None:
        session.config.stash[_TERMINATED] = True
        raise Terminated("SIGTERM")

    signal.signal(signal.SIGTERM, terminate)
    session.config.stash[_OWN_HANDLER] = terminate


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    own = session.config.stash.get(_OWN_HANDLER, None)
    if own is not None and signal.getsignal(signal.SIGTERM) is own:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if session.config.stash.get(_TERMINATED, False):
        session.exitstatus = EXIT_STATUS[signal.SIGTERM]


class CaseFailed(Exception):
    """A case's verdict, shown by pytest with the case's own failure report."""


class CaseItem(pytest.Item):
    def __init__(self, *, job: Job, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.job = job
        if job.target in known_names():
            self.add_marker(job.target)
        known = catalogue()
        for req in job.requirements:
            entry = known.get(req)
            if entry is not None:
                self.add_marker(f"rfc{entry.rfc}")
                self.add_marker(level_marker(entry.level))
        self.user_properties.extend([("case_id", job.case_id), ("target", job.target),
                                     ("file", job.path)])
        self.user_properties.extend(("requirement", r) for r in job.requirements)
        self.user_properties.extend(("level", known[r].level) for r in job.requirements if r in known)

    def runtest(self) -> None:
        job = self.job
        if job.script is not None:
            skipped = skipped_result(job)
            if skipped is not None and skipped.verdict == NOT_APPLICABLE:
                pytest.skip(f"not-applicable on {job.target}: {skipped.expectation}")
            if skipped is not None and resolve(job.target).unavailable:
                pytest.skip(skipped.expectation)
            if skipped is not None:
                pytest.skip(f"{job.target} expectations: {skipped.expectation}")
            if not have_privileges():
                pytest.skip("rfcdrill needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN) for each case's "
                            "private namespaces")
        scale = self.config.getoption("rfcdrill_scale")
        with StopSignals() as stop:     # SIGINT/SIGTERM: the case's processes end, then pytest
            result = expectations.apply(next(run_jobs([job], 1, scale, stop)),
                                        resolve(job.target).expectations_name)
        if stop.stopping:
            pytest.exit(f"rfcdrill: {result.failure.message if result.failure else stop.name}",
                        returncode=stop.exit_status)
        self.user_properties.append(("verdict", result.verdict))
        self._report(result)

    def _report(self, result: Result) -> None:
        if result.verdict == XFAIL:
            pytest.xfail(f"expected on {result.target}: {result.expectation}")
        if result.verdict == SKIPPED:
            pytest.skip(result.expectation)
        if result.verdict == XPASS:
            raise CaseFailed(f"unexpected pass: {result.case_id} is listed as failing on "
                             f"{result.target} ({result.expectation}) but passed")
        if result.verdict in (FAIL, ERROR):
            raise CaseFailed(result.failure.render(result.path) if result.failure else result.verdict)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: str | None = None) -> str:
        if isinstance(excinfo.value, CaseFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"case {self.name}"
