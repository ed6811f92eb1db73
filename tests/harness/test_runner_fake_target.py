"""The runner against an in-process fake target (fake_target.py): blocking calls, timing,
missing and unexpected segments, alternatives and virtual time, with no root, kernel or
adapter. Each test runs the real Runner and holds it to the script line it blames."""

from __future__ import annotations

import time

import pytest

from harness.loader import load
from harness.result import Failure, Step
from harness.runner import RunFailure, Runner

from tests.conftest import case_yaml
from tests.harness.fake_target import FakeTarget, RealTimeTarget

LISTEN = """\
0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0    bind(3, ..., ...) = 0
+0    listen(3, 1) = 0
"""
HANDSHAKE = LISTEN + """\
+0    < S 0:0(0) win 65535 <mss 1460>
+0    > S. 0:0(0) ack 1 <mss 1460>
"""


def line(n: int) -> int:
    """The file line of the script's line n (case_yaml puts seven lines before the script)."""
    return n + 7


def play(write_case, script: str, target: FakeTarget) -> tuple[list[Step], Failure | None]:
    """Run `script` on `target`: the steps, and the failure (None when it passes)."""
    loaded = load(str(write_case("case.yaml", case_yaml("fake", script))))
    target.setup(loaded)
    steps: list[Step] = []
    runner = Runner(loaded, target, on_step=steps.append)
    try:
        runner.run()
    except RunFailure as exc:
        return steps, exc.failure
    return steps, None


def step_at(steps: list[Step], line: int, kind: str) -> Step:
    return next(s for s in steps if s.line == line and s.kind == kind and not
                s.note.startswith("started"))


# accept(), blocking, returns when the handshake's last ACK comes, at 0.5
BLOCKING_ACCEPT = LISTEN + """\
+0...{end} accept(3, ..., ...) = 4
+.1   < S 0:0(0) win 65535 <mss 1460>
+0    > S. 0:0(0) ack 1 <mss 1460>
+.4   < . 1:1(0) ack 1 win 65535
"""


def test_a_blocking_call_returns_when_the_timeline_releases_it(write_case):
    steps, failure = play(write_case, BLOCKING_ACCEPT.format(end="0.5"), FakeTarget())
    assert failure is None
    # line 4 started at 0, the handshake went on meanwhile, and the accept returned at 0.5
    assert [(s.line, s.kind) for s in steps[3:]] == [
        (line(4), "call"), (line(5), "inject"), (line(6), "outbound"), (line(7), "inject"),
        (line(4), "call")]
    assert [s.time for s in steps[3:]] == pytest.approx([0.0, 0.1, 0.1, 0.5, 0.5])
    assert steps[-1].note == "= 4"


@pytest.mark.parametrize("end, problem", [
    ("0.2", "blocking call has not returned by 0.2"),
    ("1", "blocking call returned at 0.500000, expected at 1.000000")])
def test_a_blocking_call_returning_outside_its_time_fails_at_its_line(write_case, end, problem):
    script = BLOCKING_ACCEPT.format(end=end) + "+1    < . 1:1(0) ack 1 win 65535\n"
    _, failure = play(write_case, script, FakeTarget())
    assert failure is not None and failure.line == line(4)
    assert failure.message.startswith(problem)


def test_in_virtual_time_a_call_not_marked_blocking_that_blocks_fails_at_once(write_case):
    started = time.monotonic()
    _, failure = play(write_case, LISTEN + "+0 accept(3, ..., ...) = 4\n", FakeTarget())
    assert failure is not None and failure.line == line(4)
    assert failure.message.startswith("the call blocked")
    assert time.monotonic() - started < 0.2      # no real-time alarm: it cannot end


def test_an_expected_segment_that_never_comes_fails_at_its_deadline(write_case):
    _, failure = play(write_case, HANDSHAKE, FakeTarget(syn_ack_delay=None))
    assert failure is not None and failure.line == line(5)
    assert failure.message.startswith("expected segment did not arrive by 0.0")


def test_a_segment_that_comes_early_fails_on_its_timing(write_case):
    script = HANDSHAKE.replace("+0    > S.", "+.5   > S.")
    _, failure = play(write_case, script, FakeTarget())
    assert failure is not None and failure.line == line(5)
    assert failure.message.startswith("outbound segment early: at 0.000000, expected at 0.500000")


def test_a_segment_no_line_expects_fails_where_it_arrives(write_case):
    # The SYN-ACK is sent again at 0.3; the script's next line is due at 1.
    script = HANDSHAKE + "+1    < . 1:1(0) ack 1 win 65535\n+0    accept(3, ..., ...) = 4\n"
    _, failure = play(write_case, script, FakeTarget(retransmit_at=(0.3,)))
    assert failure is not None and failure.line == line(6)
    assert failure.message == ("unexpected outbound segment at 0.300000: the script expects "
                               "none before this line (due at 1.000000)")
    assert "S. 0:0(0) ack 1 win 1000 <mss 1460>" in failure.actual


def test_a_segment_left_after_the_last_line_is_unexpected(write_case):
    # the SYN-ACK again at 0.5, as the last line is due: not before it, so after it
    script = HANDSHAKE + "+.5   < . 1:1(0) ack 1 win 65535\n"
    _, failure = play(write_case, script, FakeTarget(retransmit_at=(0.5,)))
    assert failure is not None and failure.line == line(6)
    assert failure.message == "unexpected outbound segment at 0.500000 after the last line"


@pytest.mark.parametrize("retransmit_at", [(), (0.3,)])
def test_an_optional_segment_may_come_or_not(write_case, retransmit_at):
    script = HANDSHAKE + """\
+0~+.5 >? S. 0:0(0) ack 1 <mss 1460>
+.6   < . 1:1(0) ack 1 win 65535
+0    accept(3, ..., ...) = 4
"""
    steps, failure = play(write_case, script, FakeTarget(retransmit_at=retransmit_at))
    assert failure is None
    taken = [s.time for s in steps if s.line == line(6) and s.kind == "outbound"]
    assert taken == ([0.3] if retransmit_at else [])
    # the next line counts from the segment taken, or from the line before the `>?`
    assert step_at(steps, line(7), "inject").time == pytest.approx(0.9 if retransmit_at else 0.6)


def test_a_segment_an_optional_line_does_not_match_is_left_for_the_next_line(write_case):
    script = HANDSHAKE + """\
+0~+.5 >? . 1:1(0) ack 1
+.3   > S. 0:0(0) ack 1 <mss 1460>
+.1   < . 1:1(0) ack 1 win 65535
"""
    steps, failure = play(write_case, script, FakeTarget(retransmit_at=(0.3,)))
    assert failure is None
    assert step_at(steps, line(6), "optional").note == "not sent (allowed)"
    assert step_at(steps, line(7), "outbound").time == pytest.approx(0.3)


EITHER = HANDSHAKE + """\
either "RFC 9293 3.8.1 (the SYN-ACK is retransmitted)" {
  +.2~+.4 > S. 0:0(0) ack 1 <mss 1460>
  +.1   < . 1:1(0) ack 1 win 65535
} or "RFC 9293 3.8.1 (not yet)" {
  +.5   < . 1:1(0) ack 1 win 65535
}
+0    accept(3, ..., ...) = 4
"""


@pytest.mark.parametrize("retransmit_at, branch, accepted", [((0.3,), 1, 0.4), ((), 2, 0.5)])
def test_either_takes_the_branch_the_first_segment_matches(write_case, retransmit_at, branch,
                                                           accepted):
    loaded = load(str(write_case("case.yaml", case_yaml("fake", EITHER))))
    target = FakeTarget(retransmit_at=retransmit_at)
    target.setup(loaded)
    steps: list[Step] = []
    taken = []
    Runner(loaded, target, on_step=steps.append, on_branch=taken.append).run()
    assert [t.index for t in taken] == [branch]
    assert step_at(steps, line(12), "call").time == pytest.approx(accepted)


def test_a_segment_matching_no_branch_fails_the_block(write_case):
    # the SYN-ACK comes again at 0.1, before either branch allows it
    _, failure = play(write_case, EITHER, FakeTarget(retransmit_at=(0.1,)))
    assert failure is not None and failure.line == line(6)
    assert "matches no branch" in failure.message


def test_virtual_time_jumps_to_each_timer_and_to_the_scripts_times(write_case):
    # SYN-ACK retransmissions at 3 and 9 s (RFC 6298 backoff), then a minute of silence.
    script = HANDSHAKE + """\
+3    > S. 0:0(0) ack 1 <mss 1460>
+6    > S. 0:0(0) ack 1 <mss 1460>
+60   < . 1:1(0) ack 1 win 65535
+0    accept(3, ..., ...) = 4
"""
    started = time.monotonic()
    steps, failure = play(write_case, script, FakeTarget(retransmit_at=(3.0, 9.0)))
    assert failure is None
    assert [s.time for s in steps if s.kind == "outbound"] == [0.0, 3.0, 9.0]   # exact
    assert step_at(steps, line(9), "call").time == pytest.approx(69.0)
    assert time.monotonic() - started < 2      # 69 s of the case's time


# accept() is due to return at 0.05; close() of its socket is due then too
LATE_RETURN = LISTEN + """\
+0...0.05 accept(3, ..., ...) = 4
+.05  close(3) = 0
"""


def test_a_call_waits_for_the_blocking_call_due_to_return_before_it(write_case):
    # accept()'s thread returns 2 ms late, within the tolerance: close() must not overtake it
    steps, failure = play(write_case, LATE_RETURN, RealTimeTarget(accept_at=0.05, late=0.002))
    assert failure is None, failure
    assert step_at(steps, line(4), "call").time <= step_at(steps, line(5), "call").time


def test_a_blocking_call_due_later_does_not_hold_up_a_call(write_case):
    script = LISTEN + """\
+0...0.3 accept(3, ..., ...) = 4
+.1   setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
"""
    steps, failure = play(write_case, script, RealTimeTarget(accept_at=0.3, late=0.0))
    assert failure is None, failure
    assert step_at(steps, line(5), "call").time == pytest.approx(0.1, abs=0.02)
    assert step_at(steps, line(4), "call").time == pytest.approx(0.3, abs=0.02)


ACCEPTED = HANDSHAKE + """\
+.1   < . 1:1(0) ack 1 win 65535
+0    accept(3, ..., ...) = 7
"""


def test_calls_reach_the_target_as_data_on_its_own_descriptors(write_case):
    target = FakeTarget()
    _, failure = play(write_case, ACCEPTED + "+0    close(7) = 0\n", target)
    assert failure is None
    made = [(c.op, c.fd) for c in target.calls.made if c.op not in ("getsockname", "getpeername")]
    # script fd 3 is the target's 3, script fd 7 (a name the script chose) the target's 4
    assert made == [("socket", None), ("bind", 3), ("listen", 3), ("accept", 3), ("close", 4)]
    bind = next(c for c in target.calls.made if c.op == "bind")
    assert bind.arg("addr") == ("192.168.0.1", 8080)


@pytest.mark.parametrize("check, problem", [
    ("assert 7 state ESTABLISHED", None),
    ("assert 3 state LISTEN", None),
    ("assert 7 tcpi_snd_cwnd == 10, tcpi_snd_mss == 1460", None),
    ("assert 7 state CLOSE_WAIT", "fd 7 is in state ESTABLISHED, expected CLOSE_WAIT"),
    ("assert 7 tcpi_snd_cwnd == 11", "tcpi_snd_cwnd is 10, expected == 11"),
    ("getsockopt(7, SOL_TCP, TCP_INFO, {tcpi_snd_cwnd=10, tcpi_state=1}, [...]) = 0", None),
    ("getsockopt(7, SOL_TCP, TCP_INFO, {tcpi_snd_mss=536}, [...]) = 0",
     "tcpi_snd_mss is 1460, expected 536")])
def test_tcpi_fields_are_read_through_the_rfc_named_state(write_case, check, problem):
    # The fake gives RFC 9293's names only: state, cwnd and SMSS become tcpi_* fields.
    _, failure = play(write_case, ACCEPTED + f"+0    {check}\n", FakeTarget())
    assert (failure and failure.message.split(";")[0]) == problem


def test_a_tcpi_field_the_state_cannot_give_is_an_error_of_the_case(write_case):
    from harness.errors import CaseError
    with pytest.raises(CaseError, match="unknown TCP_INFO field 'tcpi_rtt'"):
        play(write_case, ACCEPTED + "+0    assert 7 tcpi_rtt > 0\n", FakeTarget())
