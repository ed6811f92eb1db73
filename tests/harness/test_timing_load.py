"""Timing on a busy machine: what the scheduler does to the harness is measured and not
held against the target, and what the target does late still fails.

The stack target runs in virtual time, so a stretched retransmission timer there is late
by exactly 25 % whatever the machine is doing: the verdict shows that no tolerance on what
a target sends was widened. The blocking-call judgment is shown with a fake call handle.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.execute import run_one
from harness.loader import load
from harness.result import FAIL, PASS
from harness.runner import Pending
from harness.targets.base import CallHandle
from stack.rtt import RttEstimator

from tests.conftest import needs_root

ROOT = Path(__file__).resolve().parents[2]
BACKOFF = ROOT / "cases/rfc793/retransmission/data-rto-backoff.yaml"
CONNECT_TIMES_OUT = """\
id: connect-times-out
requirements: [rfc793:transition:ANY:retransmission-timeout]
sysctl:
  net.ipv4.tcp_syn_retries: 1
options: {fail_on_unexpected: false}
script: |
  0      socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
  +0...3 connect(3, ..., ...) = -1 ETIMEDOUT (Connection timed out)
"""


@pytest.fixture
def late_rto(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stack's retransmission timer 25 % late (the case process is forked from here,
    so it inherits the change)."""
    on_time = RttEstimator.rto.fget
    monkeypatch.setattr(RttEstimator, "rto", property(lambda self: on_time(self) * 1.25))


@needs_root
def test_the_backoff_case_passes_on_the_stack_as_it_is() -> None:
    result = run_one(load(str(BACKOFF)), "stack")
    assert result.verdict == PASS, result.failure


@needs_root
def test_a_retransmission_timer_25_percent_late_fails(late_rto: None) -> None:
    result = run_one(load(str(BACKOFF)), "stack")
    assert result.verdict == FAIL
    # due 1.5 s after the first transmission at 0.5, with 12.5 %; it would come at 2.375
    assert result.failure.message == "expected segment did not arrive by 2.187500"


@needs_root
@pytest.mark.parametrize("late, verdict", [(False, PASS), (True, FAIL)])
def test_a_blocking_call_released_by_a_late_timer_fails(write_case, request, late: bool,
                                                        verdict: str) -> None:
    if late:
        request.getfixturevalue("late_rto")
    result = run_one(load(str(write_case("connect.yaml", CONNECT_TIMES_OUT))), "stack")
    assert result.verdict == verdict, result.failure
    if late:
        # due at 3 with 12.5 %; it would return at 3.75
        assert result.failure.message == "blocking call has not returned by 3.375000"


def _pending(started_at: float | None, finished_at: float, cpu_wait: float = 0.0,
             held_up: float = 0.0) -> Pending:
    handle = CallHandle()
    handle.started_at, handle.finished_at, handle.cpu_wait = started_at, finished_at, cpu_wait
    return Pending(event=None, handle=handle, began=1.0, going=1.001, duration=0.05,
                   tolerance=0.004, held_up=held_up)


def test_the_return_is_due_from_when_the_call_really_began() -> None:
    # started by the runner at 1.0, under way in its thread at 1.010: due 1.05 to 1.06
    assert _pending(1.010, 1.0).window == pytest.approx((1.05, 1.06))
    assert _pending(None, 1.0).window == pytest.approx((1.05, 1.051))


def test_the_runner_performing_the_releasing_event_late_moves_the_return() -> None:
    assert _pending(1.001, 1.0, held_up=0.02).window == pytest.approx((1.05, 1.071))


@pytest.mark.parametrize("finished, cpu_wait, held_up, judged_late", [
    (1.060, 0.0, 0.0, True),       # 4 ms past 1.051 + 4 ms: late
    (1.060, 0.006, 0.0, False),    # ... but its thread waited 6 ms for a CPU
    (1.060, 0.0, 0.010, False),    # ... or the event releasing it was performed 10 ms late
    (1.100, 0.006, 0.010, True),   # late beyond what was measured
    (1.040, 0.0, 0.0, True),       # early: measured delays never excuse that
])
def test_a_return_is_judged_less_what_the_scheduler_is_measured_to_have_cost(
        finished: float, cpu_wait: float, held_up: float, judged_late: bool) -> None:
    problem = _pending(1.001, finished, cpu_wait, held_up).problem()
    assert bool(problem) == judged_late
    if judged_late:
        assert problem.startswith(f"blocking call returned at {finished:.6f}, expected between 1.0")


PRIORITIES = """\
id: priorities
requirements: [rfc793:transition:ANY:retransmission-timeout]
script: |
  0  socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
  +0 `test "$(cut -d' ' -f41 /proc/$$/stat)" = 0`
  +0 %{
  import os
  assert os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK == os.SCHED_FIFO
  }%
"""


@needs_root
def test_the_kernel_targets_peer_is_real_time_and_its_shell_commands_are_not(write_case) -> None:
    result = run_one(load(str(write_case("priorities.yaml", PRIORITIES))), "kernel")
    assert result.verdict == PASS, result.failure
    assert result.environment["scheduling of the peer"] == "SCHED_FIFO 1"


@needs_root
def test_a_case_reports_the_runners_scheduling_lateness() -> None:
    """The figure the run's environment is made of reaches the result (harness.sched)."""
    from harness.sched import CASE_KEY
    result = run_one(load(str(BACKOFF)), "kernel")
    assert CASE_KEY in result.environment and float(result.environment[CASE_KEY]) >= 0
