"""Running cases: each case and target in a process of its own, several at once.

Theory of operation: for every (case, target) the runner forks. The child sets the target
up (for the kernel: a new network namespace, a TUN device, the case's sysctls), plays the
timeline and streams what happens (steps, packets, the verdict) back through a pipe. The
parent waits with a time limit; a child that runs over it is killed, and because its
namespace dies with it nothing is left behind. The records streamed so far tell what
happened up to the hang. The CLI and the pytest plugin both come through `run_cases`.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import struct
import time
import traceback
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Iterator

from harness.errors import CaseError
from harness.interrupt import StopSignals, watch_parent
from harness.model import EitherEvent, Event, Script, SyscallEvent
from harness.result import (ERROR, FAIL, INTERRUPTED, PASS, Failure, PacketRecord, Result, Step,
                            Taken, passing_verdict)
from harness.runner import ANY_TIME_WAIT, RunFailure, Runner
from harness import netns
from harness.targets import resolve
from harness.targets.base import Target

SLACK = 10.0     # seconds a case may run past its own timeline before it counts as hung


@dataclass
class Job:
    """One case on one target; `error` holds a load error (the case could not be parsed)."""

    path: str
    target: str
    script: Script | None = None
    error: CaseError | None = None
    case_id: str = ""
    requirements: list[str] = field(default_factory=list)
    # Run first in the case's own process: `rfcdrill mutate` installs a stack mutant there.
    prepare: Callable[[], object] | None = None


def with_floor(job: Job, floor_ms: float | None) -> Job:
    """The job with no timing tolerance below `floor_ms` (rfcdrill run --tolerance-floor-ms)."""
    if floor_ms is None or job.script is None:
        return job
    tolerance = job.script.tolerance
    return replace(job, script=replace(job.script, tolerance=replace(
        tolerance, floor=max(tolerance.floor, floor_ms / 1000))))


def nominal_duration(script: Script) -> float:
    """How long the timeline lasts if every event is on time (for the hang limit)."""
    return _span(script.events, 0.0, 0.0)[1]


def _span(events: list[Event], now: float, gap: float) -> tuple[float, float, float]:
    """(when the events end, the latest any of them may end, the last gap) from `now`; an
    `either` lasts as long as its longest branch, `x2` twice the gap before it."""
    longest = now
    for event in events:
        if isinstance(event, EitherEvent):
            ends = [_span(b.events, now, gap) for b in event.branches]
            now, branch_longest, gap = max(ends)
            longest = max(longest, branch_longest)
            continue
        t = event.time
        before = now
        if t.kind == "rel":
            now += t.start
        elif t.kind == "abs":
            now = t.start
        elif t.kind == "range":
            now = (now if t.end_relative else 0.0) + (t.end or t.start)
        elif t.kind == "ratio":
            now += gap * (t.end or t.start)
        else:
            now += ANY_TIME_WAIT
        gap = now - before
        end = event.end_time if isinstance(event, SyscallEvent) else None
        longest = max(longest, now + ((end.end or end.start) if end else 0.0))
    return now, max(now, longest), gap


def _send(fd: int, kind: str, payload: object) -> None:
    data = pickle.dumps((kind, payload), protocol=pickle.HIGHEST_PROTOCOL)
    os.write(fd, struct.pack("!I", len(data)) + data)


def _verdict(step: Callable[[], object]) -> tuple[str, Failure | None]:
    """Run part of a case; a mismatch is a failure, a broken case or a crash an error."""
    try:
        step()
    except RunFailure as exc:
        return FAIL, exc.failure
    except CaseError as exc:
        loc = exc.loc
        return ERROR, Failure(exc.message, loc.line if loc else 0, loc.col if loc else 0)
    except Exception as exc:         # a bug in the runner or target: report it with the case
        return ERROR, Failure(f"internal error: {type(exc).__name__}: {exc}",
                              actual="".join(traceback.format_exc(limit=6)))
    return PASS, None


def _child(job: Job, scale: float, fd: int) -> None:
    """The case's own process: never returns."""
    code = 0
    targets: list[Target] = []
    env: dict[str, str] = {}

    def start() -> None:
        # Isolation, the same for every target: the case's own network namespace and a
        # read-only /proc/sys (netns.enter_private_netns), before the target starts anything.
        netns.enter_private_netns()
        if job.prepare is not None:
            job.prepare()
        targets.append(resolve(job.target).make())
        targets[0].setup(job.script)
        env.update(targets[0].environment())
        _send(fd, "env", env)
    try:
        verdict, failure = _verdict(start)
        if verdict == PASS:
            runner = Runner(job.script, targets[0], scale, on_step=lambda s: _send(fd, "step", s),
                            on_branch=lambda b: _send(fd, "branch", b))
            verdict, failure = _verdict(runner.run)
            env.update(runner.lateness.figures())
            _send(fd, "env", env)
            after, cleanup_failure = _verdict(runner.cleanup)
            if verdict == PASS and after != PASS:
                verdict, failure = after, cleanup_failure
            for record in runner.packets:
                _send(fd, "packet", record)
        for target in targets:
            target.teardown()
            env.update(target.environment())       # an adapter's stderr is known only now
            _send(fd, "env", env)
        _send(fd, "verdict", (verdict, failure))
    except BaseException:
        code = 1          # the parent reports a process that died without a verdict
    finally:
        os._exit(code)


class _Running:
    def __init__(self, job: Job, scale: float) -> None:
        self.job = job
        self.start = time.monotonic()
        limit = job.script.timeout or nominal_duration(job.script) * scale + SLACK
        self.deadline = self.start + limit
        self.buffer = b""
        self.steps: list[Step] = []
        self.branches: list[Taken] = []
        self.packets: list[PacketRecord] = []
        self.env: dict[str, str] = {}
        self.verdict: tuple[str, Failure | None] | None = None
        rfd, wfd = os.pipe()
        parent = os.getpid()
        self.pid = os.fork()
        if self.pid == 0:
            os.setpgid(0, 0)          # its own group: a kill reaches any shell command it started
            watch_parent(parent)
            os.close(rfd)
            _child(job, scale, wfd)
        try:
            os.setpgid(self.pid, self.pid)     # also here, so that no kill can come before it
        except ProcessLookupError:             # it is gone already; the pipe says how
            pass
        os.close(wfd)
        self.fd = rfd

    def feed(self) -> bool:
        """Read what the child sent; False at end of stream."""
        chunk = os.read(self.fd, 1 << 16)
        if not chunk:
            return False
        self.buffer += chunk
        while len(self.buffer) >= 4:
            size = struct.unpack("!I", self.buffer[:4])[0]
            if len(self.buffer) < 4 + size:
                break
            kind, payload = pickle.loads(self.buffer[4:4 + size])
            self.buffer = self.buffer[4 + size:]
            if kind == "step":
                self.steps.append(payload)
            elif kind == "packet":
                self.packets.append(payload)
            elif kind == "branch":
                self.branches.append(payload)
            elif kind == "env":
                self.env = payload
            else:
                self.verdict = payload
        return self.verdict is None

    def kill(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def result(self, timed_out: bool, interrupted_by: str = "") -> Result:
        if interrupted_by:        # killed and reaped: read what it sent up to the end
            while self.feed():
                pass
        os.close(self.fd)
        job = self.job
        last = self.steps[-1] if self.steps else None
        so_far = (f"; the last event that completed was line {last.line}: {last.text}"
                  if last else "")
        if self.verdict is not None:
            verdict, failure = self.verdict
        elif interrupted_by:
            verdict, failure = INTERRUPTED, Failure(
                f"interrupted by {interrupted_by} after {time.monotonic() - self.start:.1f} s"
                + so_far)
        elif timed_out:
            verdict, failure = ERROR, Failure(
                f"the case hung: stopped after {time.monotonic() - self.start:.1f} s" + so_far)
        else:
            verdict, failure = ERROR, Failure("the case's process died without a verdict")
        if verdict == PASS:
            verdict = passing_verdict(self.branches)
        return Result(job.case_id, job.path, job.target, verdict,
                      time.monotonic() - self.start, job.script.title, job.requirements,
                      failure, self.steps, self.packets, self.env, raw_verdict=verdict,
                      branches=self.branches, follows="; ".join(
                          b.label for b in self.branches if b.kind == "follows"))


def _not_run(job: Job, signal_name: str) -> Result:
    return Result(job.case_id, job.path, job.target, INTERRUPTED, 0.0,
                  job.script.title if job.script else "", job.requirements,
                  Failure(f"not run: the run was interrupted by {signal_name}"),
                  raw_verdict=INTERRUPTED)


def _load_error(job: Job) -> Result:
    err = job.error
    loc = err.loc if err else None
    return Result(job.case_id, job.path, job.target, ERROR, 0.0, "", job.requirements,
                  Failure(err.message if err else "cannot load", loc.line if loc else 0,
                          loc.col if loc else 0), raw_verdict=ERROR)


def _reap(pids: list[int], block: bool) -> None:
    """Collect exited case processes. Their exit (the kernel tearing down the TUN device
    and namespace, some 15-60 ms of RCU grace periods) overlaps the next case; the run
    ends only when every one of them is gone."""
    for pid in list(pids):
        done, _ = os.waitpid(pid, 0 if block else os.WNOHANG)
        if done:
            pids.remove(pid)


def run_jobs(jobs: Iterable[Job], parallel: int = 1, scale: float = 1.0,
             stop: StopSignals | None = None) -> Iterator[Result]:
    """Run jobs, `parallel` at a time; yield each Result as it completes. When `stop` notes
    a signal, the running cases are killed, and they and the jobs not started yet are
    yielded as `interrupted` once every case process is gone."""
    waiting = list(jobs)
    running: dict[int, _Running] = {}
    exiting: list[int] = []
    try:
        yield from _schedule(waiting, running, exiting, parallel, scale, stop)
    finally:
        for proc in running.values():
            proc.kill()
            exiting.append(proc.pid)
        _reap(exiting, block=True)
    if stop is not None and stop.stopping:
        for proc in running.values():
            yield proc.result(timed_out=False, interrupted_by=stop.name)
        for job in waiting:
            yield _not_run(job, stop.name) if job.script is not None else _load_error(job)


def _schedule(waiting: list[Job], running: dict[int, "_Running"], exiting: list[int],
              parallel: int, scale: float, stop: StopSignals | None) -> Iterator[Result]:
    watched = [stop.fileno()] if stop is not None else []
    while (waiting or running) and not (stop is not None and stop.stopping):
        _reap(exiting, block=False)
        while waiting and len(running) < max(parallel, 1):
            job = waiting.pop(0)
            if job.script is None:
                yield _load_error(job)
                continue
            proc = _Running(job, scale)
            running[proc.fd] = proc
        if not running:
            continue
        soonest = min(p.deadline for p in running.values())
        ready, _, _ = select.select(list(running) + watched, [], [],
                                    max(0.0, soonest - time.monotonic()))
        for fd in ready:
            if fd in running and not running[fd].feed():
                proc = running.pop(fd)
                exiting.append(proc.pid)
                yield proc.result(timed_out=False)
        now = time.monotonic()
        for fd, proc in list(running.items()):
            if now >= proc.deadline:
                proc.kill()
                exiting.append(proc.pid)
                yield running.pop(fd).result(timed_out=True)


def run_one(script: Script, target: str, scale: float = 1.0) -> Result:
    job = Job(script.path, target, script, case_id=script.id, requirements=script.requirements)
    return next(run_jobs([job], 1, scale))
