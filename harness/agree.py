"""`rfcdrill agree`: a packetdrill corpus run by rfcdrill and by packetdrill, side by side.

Theory of operation: the corpus's runner (harness.corpus) says which scripts run, in which
IP versions, with which command line and from which folder. rfcdrill runs each of them on
the kernel target as `rfcdrill run` does (a forked process and a private namespace per run,
`--jobs` at a time), reading the runner's packetdrill command line (harness.pdargs). Given
a packetdrill binary, each run is then repeated with it: forked into a private network
namespace of its own (the host's never sees its TUN device), in the script's folder, with
exactly the runner's arguments, serially by default as `run_all.py -S` does. packetdrill
passes a run when it exits 0. The figures printed: both verdicts per run, how many agree,
how many of packetdrill's passes rfcdrill passes too, and both wall times.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Iterator

from harness import corpus, netns, pdargs
from harness.corpus import Run
from harness.errors import CaseError
from harness.execute import Job, nominal_duration, run_jobs
from harness.loader import load
from harness.result import PASS

PACKETDRILL_LIMIT = 180.0    # run_all.py's limit for one run, seconds


@dataclass
class Verdict:
    passed: bool
    seconds: float
    detail: str = ""         # why it did not pass, one line

    @property
    def label(self) -> str:
        return "pass" if self.passed else "FAIL"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("corpus", help="the corpus folder (gtests/net/tcp, or the kernel's "
                        "tools/testing/selftests/net/packetdrill)")
    parser.add_argument("--runner", choices=corpus.RUNNERS,
                        help="whose conventions to follow (default: ksft when the folder has "
                             "ksft_runner.sh, else run_all)")
    parser.add_argument("--packetdrill", metavar="PATH", help="a packetdrill binary to compare with")
    parser.add_argument("--packetdrill-results", metavar="JSON",
                        help="take packetdrill's verdicts from an earlier --json instead of running it")
    parser.add_argument("--packetdrill-jobs", type=int, default=1, metavar="N",
                        help="packetdrill runs at a time (default 1, as run_all.py -S)")
    parser.add_argument("--ip-version", action="append", dest="variants",
                        choices=sorted(corpus.VARIANT_VERSION),
                        help="only this variant of the runner's (repeatable)")
    parser.add_argument("--jobs", "-j", type=int, default=1, help="rfcdrill runs at a time")
    parser.add_argument("--tolerance-scale", type=float, default=1.0)
    parser.add_argument("-k", dest="keyword", help="only runs whose id contains this text")
    parser.add_argument("--json", help="write every verdict and figure here")
    parser.add_argument("--all", action="store_true", help="list every run, not only disagreements")
    parser.add_argument("--rerun", type=int, default=0, metavar="N",
                        help="run rfcdrill again, serially, up to N times on each run whose verdict "
                             "differs from packetdrill's (timing verdicts flake on a loaded machine); "
                             "a run that agrees on a rerun is reported as flaky")


def main(args: argparse.Namespace) -> int:
    if args.packetdrill and not os.access(args.packetdrill, os.X_OK):
        print(f"rfcdrill agree: --packetdrill {args.packetdrill}: not an executable file",
              file=sys.stderr)
        return 2
    if not os.path.isdir(args.corpus):
        print(f"rfcdrill agree: {args.corpus}: not a folder", file=sys.stderr)
        return 2
    runner = args.runner or corpus.detect(args.corpus)
    runs = [r for r in corpus.runs(args.corpus, runner)
            if (not args.variants or r.variant in args.variants)
            and (not args.keyword or args.keyword in r.id)]
    if not runs:
        print(f"rfcdrill agree: no scripts to run in {args.corpus}", file=sys.stderr)
        return 2
    print(f"{len(runs)} runs of {len({r.script for r in runs})} scripts ({runner}'s conventions)",
          flush=True)
    t0 = time.monotonic()
    ours = dict(rfcdrill_side(runs, args.jobs, args.tolerance_scale))
    our_wall = time.monotonic() - t0
    theirs: dict[str, Verdict] = {}
    their_wall = None
    if args.packetdrill_results:
        theirs, their_wall = _earlier(args.packetdrill_results)
    elif args.packetdrill:
        t0 = time.monotonic()
        theirs = dict(packetdrill_side(runs, os.path.abspath(args.packetdrill), args.packetdrill_jobs))
        their_wall = time.monotonic() - t0
    flaky = _rerun(runs, ours, theirs, args.rerun, args.tolerance_scale)
    _table(runs, ours, theirs, args.all)
    if flaky:
        print(f"\nflaky (differed, then agreed on a serial rerun): {len(flaky)}")
        for run_id, first in flaky.items():
            print(f"    {run_id}: first {first.label}: {first.detail}")
    agree = _summary(runs, ours, theirs, our_wall, their_wall, args, len(flaky))
    if args.json:
        _write(args.json, runner, runs, ours, theirs, our_wall, their_wall, args)
    return 0 if agree else 1


# -- rfcdrill's side ---------------------------------------------------------------------------
def rfcdrill_side(runs: list[Run], jobs: int, scale: float) -> Iterator[tuple[str, Verdict]]:
    """Each run on the kernel target, with the runner's command line read as packetdrill would."""
    todo: list[Job] = []
    for run in runs:
        inv = pdargs.parse(list(run.argv))
        try:
            script = load(run.script, inv.defines, inv.options, case_id=run.id)
        except CaseError as exc:
            yield run.id, Verdict(False, 0.0, str(exc))
            continue
        todo.append(Job(run.script, "kernel", script, case_id=run.id))
    if jobs > 1:
        # Longest first: a long timeline started last would run on alone at the end
        # (cubic-bulk-166k's 20 s); each verdict is reported by id, so order is free.
        todo.sort(key=lambda job: nominal_duration(job.script), reverse=True)
    for result in run_jobs(todo, jobs, scale):
        detail = _one_line(result.failure.render(result.path)) if result.failure else ""
        yield result.case_id, Verdict(result.verdict == PASS, result.duration, detail)


def _rerun(runs: list[Run], ours: dict[str, Verdict], theirs: dict[str, Verdict],
           times: int, scale: float) -> dict[str, Verdict]:
    """Run again, one at a time, each run whose verdict differs from packetdrill's, until it
    agrees or `times` reruns are spent; return the first verdicts of those that came to agree
    (the table then shows the later verdict)."""
    flaky: dict[str, Verdict] = {}
    for _ in range(times):
        again = [r for r in runs if r.id in theirs and r.id in ours
                 and ours[r.id].passed != theirs[r.id].passed]
        for run_id, verdict in rfcdrill_side(again, 1, scale):
            if verdict.passed == theirs[run_id].passed:
                flaky.setdefault(run_id, ours[run_id])
            ours[run_id] = verdict
    return flaky


def _one_line(report: str) -> str:
    """A failure report's first line and its field differences, on one line."""
    lines = report.splitlines()
    diffs = [line.strip() for line in lines[1:] if line.startswith("    ")]
    return "; ".join([lines[0], *diffs])


# -- packetdrill's side ------------------------------------------------------------------------
def _start(run: Run, binary: str, log: int) -> int:
    """Fork packetdrill for one run into a private namespace; return its pid."""
    pid = os.fork()
    if pid:
        return pid
    try:
        os.setpgid(0, 0)
        netns.enter_private_netns()
        if run.loopback_up:
            netns.loopback_up()
        os.chdir(run.folder)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.execv(binary, [binary, *run.argv])
    finally:
        os._exit(127)


def _last_line(log: int) -> str:
    os.lseek(log, 0, os.SEEK_SET)
    text = os.read(log, 1 << 16).decode(errors="replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def packetdrill_side(runs: list[Run], binary: str, parallel: int) -> Iterator[tuple[str, Verdict]]:
    """Each run with the real packetdrill, `parallel` at a time, each in its own namespace."""
    waiting = list(runs)
    active: dict[int, tuple[Run, int, int, float]] = {}     # pidfd -> run, pid, log, start
    try:
        while waiting or active:
            while waiting and len(active) < max(parallel, 1):
                run = waiting.pop(0)
                log = tempfile.TemporaryFile()
                fd = os.dup(log.fileno())
                log.close()
                pid = _start(run, binary, fd)
                active[os.pidfd_open(pid)] = (run, pid, fd, time.monotonic())
            soonest = min(start for _, _, _, start in active.values()) + PACKETDRILL_LIMIT
            ready, _, _ = select.select(list(active), [], [], max(0.0, soonest - time.monotonic()))
            now = time.monotonic()
            for pidfd in list(active):
                run, pid, log, start = active[pidfd]
                if pidfd not in ready and now - start < PACKETDRILL_LIMIT:
                    continue
                if pidfd not in ready:
                    os.killpg(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
                del active[pidfd]
                os.close(pidfd)
                code = os.waitstatus_to_exitcode(status)
                detail = "" if code == 0 else (_last_line(log) or f"exit {code}")
                if pidfd not in ready:
                    detail = f"timed out after {PACKETDRILL_LIMIT:.0f} s"
                os.close(log)
                yield run.id, Verdict(code == 0, now - start, detail)
    finally:
        for pidfd, (_, pid, log, _) in active.items():
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(pidfd)
            os.close(log)


def _earlier(path: str) -> tuple[dict[str, Verdict], float | None]:
    with open(path) as f:
        data = json.load(f)
    verdicts = {r["id"]: Verdict(**r["packetdrill"]) for r in data["runs"] if r.get("packetdrill")}
    return verdicts, data.get("packetdrill_wall")


# -- what is printed ---------------------------------------------------------------------------
def _table(runs: list[Run], ours: dict[str, Verdict], theirs: dict[str, Verdict],
           every: bool) -> None:
    width = max(len(r.id) for r in runs)
    print(f"\n{'run':<{width}}  {'packetdrill':<13} rfcdrill")
    for run in runs:
        mine, other = ours.get(run.id), theirs.get(run.id)
        differs = other is not None and mine is not None and mine.passed != other.passed
        if not (every or differs):
            continue
        cell = f"{other.label} {other.seconds:6.2f} s" if other else "-"
        print(f"{run.id:<{width}}  {cell:<13} {mine.label} {mine.seconds:6.2f} s"
              + ("  DIFFERS" if differs else ""))
        if differs or other is None:
            for who, verdict in (("rfcdrill", mine), ("packetdrill", other)):
                if verdict is not None and verdict.detail:
                    print(f"    {who}: {verdict.detail}")


def _summary(runs: list[Run], ours: dict[str, Verdict], theirs: dict[str, Verdict],
             our_wall: float, their_wall: float | None, args: argparse.Namespace,
             flaky: int = 0) -> bool:
    passed = sum(v.passed for v in ours.values())
    print(f"\nrfcdrill: {passed} of {len(runs)} runs pass, wall {our_wall:.1f} s (--jobs {args.jobs})")
    compared = [r.id for r in runs if r.id in theirs]
    if not compared:
        return passed == len(runs)
    same = sum(ours[i].passed == theirs[i].passed for i in compared)
    their_passes = [i for i in compared if theirs[i].passed]
    both = sum(ours[i].passed for i in their_passes)
    print(f"packetdrill: {len(their_passes)} of {len(compared)} runs pass"
          + (f", wall {their_wall:.1f} s ({args.packetdrill_jobs} at a time)" if their_wall else ""))
    print(f"agreement: {same} of {len(compared)} runs ({100.0 * same / len(compared):.1f} %); "
          f"of packetdrill's {len(their_passes)} passes rfcdrill passes {both}"
          + (f" (before reruns: {same - flaky} agreed)" if args.rerun else ""))
    if their_wall:
        print(f"wall time: rfcdrill {our_wall:.1f} s = {our_wall / their_wall:.2f} x packetdrill's "
              f"{their_wall:.1f} s")
    return same == len(compared)


def _write(path: str, runner: str, runs: list[Run], ours: dict[str, Verdict],
           theirs: dict[str, Verdict], our_wall: float, their_wall: float | None,
           args: argparse.Namespace) -> None:
    data = {"corpus": os.path.abspath(args.corpus), "runner": runner, "jobs": args.jobs,
            "packetdrill_jobs": args.packetdrill_jobs, "kernel": os.uname().release,
            "rfcdrill_wall": our_wall, "packetdrill_wall": their_wall,
            "runs": [{"id": r.id, "script": r.script, "variant": r.variant, "argv": list(r.argv),
                      "rfcdrill": asdict(ours[r.id]) if r.id in ours else None,
                      "packetdrill": asdict(theirs[r.id]) if r.id in theirs else None}
                     for r in runs]}
    with open(path, "w") as f:
        json.dump(data, f, indent=1)
