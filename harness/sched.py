"""How late the scheduler runs the harness: the figures that tell a late target from a
busy machine (cases/CASE_FORMAT.md, "Timing on a busy machine").

Two measures. `run_delay()` is the kernel's own count of the time the calling thread spent
runnable but waiting for a CPU (/proc/thread-self/schedstat, second field, in ns; 0 where
the kernel does not keep it, which only makes judgments stricter). `Lateness` collects how
late the runner woke for what it had to do on time (an injection, a deadline), which is
what the run reports as the machine's scheduling lateness (per case and per run).
"""

from __future__ import annotations

import os
import statistics

_SCHEDSTAT = "/proc/thread-self/schedstat"


def run_delay() -> float:
    """Seconds this thread has waited on a run queue since it started."""
    try:
        with open(_SCHEDSTAT, "rb") as stat:
            return int(stat.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


CASE_KEY = "scheduling lateness, max (ms)"
RUN_KEY = "scheduling lateness, max over the run's cases (ms)"
RUN_MEDIAN_KEY = "scheduling lateness, median of the cases' maxima (ms)"


class Lateness:
    """How late the runner woke for its timed waits in one case, in seconds."""

    def __init__(self) -> None:
        self.worst = 0.0

    def note(self, due: float, now: float) -> None:
        self.worst = max(self.worst, now - due)

    def figures(self) -> dict[str, str]:
        """For the case's environment."""
        return {CASE_KEY: f"{self.worst * 1000:.2f}"}


def run_figures(environments: list[dict[str, str]]) -> dict[str, str]:
    """For the run's environment of one target: the worst lateness of any of its cases, and
    the median of the cases' worst (a busy machine raises the median, a hiccup only the max)."""
    worst = [float(env[CASE_KEY]) for env in environments if CASE_KEY in env]
    if not worst:
        return {}
    return {RUN_KEY: f"{max(worst):.2f}", RUN_MEDIAN_KEY: f"{statistics.median(worst):.2f}"}


PRIORITY = 1       # the lowest real-time priority: above every normal process, below the kernel's


def punctual() -> str:
    """Put the calling thread ahead of normal processes, so that a busy machine does not
    make the remote peer late: the kernel target's TCP measures its RTT, hence its timers,
    by when the peer answers. The kernel target's case process sleeps between events, so
    it takes little CPU, and the kernel keeps 5 % of every second for normal processes
    anyway (sched_rt_runtime_us). What it forks or starts (shell commands, and threads,
    which call this again) begins as a normal process (SCHED_RESET_ON_FORK). Says what it
    got, for the report."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK,
                              os.sched_param(PRIORITY))
    except OSError as exc:
        return f"normal (real-time priority refused: {exc.strerror})"
    return f"SCHED_FIFO {PRIORITY}"
