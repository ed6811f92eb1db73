"""The runner against the kernel: each way a case can pass or fail, with the report it gives."""

from __future__ import annotations

import os
import time

import pytest

from harness.execute import run_one
from harness.ip import decode
from harness.loader import load
from harness.result import ERROR, FAIL, PASS, Result
from harness.sched import CASE_KEY

from tests.conftest import HANDSHAKE, case_yaml, needs_root

pytestmark = needs_root


def run(write_case, script: str, extra: str = "") -> Result:
    return run_one(load(write_case("case.yaml", case_yaml("case", script, extra=extra))), "kernel")


def test_a_correct_case_passes_with_its_timeline_and_packets(write_case):
    result = run(write_case, HANDSHAKE + "+0 assert 4 state ESTABLISHED\n")
    assert result.verdict == PASS, result.failure
    kinds = [s.kind for s in result.timeline]
    assert kinds == ["call"] * 4 + ["inject", "outbound", "inject", "call", "assert"]
    assert [p.direction for p in result.packets] == ["in", "out", "in"]
    assert result.environment["kernel"]


def test_a_wrong_field_fails_with_a_field_by_field_diff(write_case):
    script = HANDSHAKE.replace("> S. 0:0(0) ack 1 <mss 1460>", "> S. 0:0(0) ack 2 win 100 <mss 1460>")
    result = run(write_case, script)
    assert result.verdict == FAIL
    assert result.failure.line == 13 and result.failure.message == "outbound segment does not match"
    fields = {d["field"]: (d["expected"], d["actual"]) for d in result.failure.diff}
    assert fields["ack"] == ("2", "1") and fields["win"][0] == "100"
    assert result.failure.actual.split(" ", 1)[1].startswith("S. 0:0(0) ack 1 win")


def test_a_segment_no_line_expects_fails_where_it_arrives(write_case):
    result = run(write_case, HANDSHAKE + "+0 write(4, ..., 10) = 10\n+.1 < . 1:1(0) ack 11 win 100\n")
    assert result.verdict == FAIL
    assert result.failure.message.startswith("unexpected outbound segment")
    assert result.failure.line == 17 and "P. 1:11(10) ack 1" in result.failure.actual


def test_a_segment_that_comes_too_early_fails_on_timing(write_case):
    result = run(write_case, HANDSHAKE + "+0 write(4, ..., 10) = 10\n+.2 > P. 1:11(10) ack 1\n")
    assert result.verdict == FAIL
    assert "early" in result.failure.message


def test_a_segment_that_never_comes_fails_at_its_deadline(write_case):
    result = run(write_case, HANDSHAKE + "+.1 > P. 1:11(10) ack 1\n")
    assert result.verdict == FAIL
    assert result.failure.message.startswith("expected segment did not arrive")


BLOCKING_ACCEPT = """\
0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0    setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0    bind(3, ..., ...) = 0
+0    listen(3, 1) = 0
+0...{end} accept(3, ..., ...) = 4
+.1   < S 0:0(0) win 65535 <mss 1460>
+0    > S. 0:0(0) ack 1 <mss 1460>
+.01  < . 1:1(0) ack 1 win 65535
"""


def test_blocking_calls_run_while_the_timeline_goes_on(write_case):
    result = run(write_case, BLOCKING_ACCEPT.format(end="0.11"))
    assert result.verdict == PASS, result.failure
    accept = next(s for s in result.timeline if s.kind == "call" and "accept" in s.text
                  and s.note.startswith("="))
    late = float(result.environment[CASE_KEY]) / 1000     # the scheduler's, not the target's
    assert abs(accept.time - 0.11) <= 0.125 * 0.11 + late    # within the tolerance for its gap


def test_a_blocking_call_returning_at_the_wrong_time_fails(write_case):
    result = run(write_case, BLOCKING_ACCEPT.format(end="0.3"))
    assert result.verdict == FAIL and "blocking call returned at" in result.failure.message
    assert result.failure.line == 12


def test_a_call_that_blocks_without_saying_so_fails(write_case):
    result = run(write_case, HANDSHAKE + "+0 read(4, ..., 10) = 10\n")
    assert result.verdict == FAIL and "the call blocked" in result.failure.message
    assert result.failure.line == 16


def test_return_values_and_errno_are_checked(write_case):
    result = run(write_case, HANDSHAKE + "+0 fcntl(4, F_SETFL, O_RDWR|O_NONBLOCK) = 0\n"
                 "+0 read(4, ..., 10) = -1 EAGAIN (Resource temporarily unavailable)\n"
                 "+0 read(4, ..., 10) = 10\n")
    assert result.verdict == FAIL and result.failure.line == 18
    assert "returned -1 EAGAIN" in result.failure.message


def test_state_and_tcp_info_assertions(write_case):
    good = run(write_case, HANDSHAKE + "+0 assert 4 tcpi_snd_mss == 1460, tcpi_rto >= 200000\n")
    assert good.verdict == PASS, good.failure
    bad = run(write_case, HANDSHAKE + "+0 assert 4 state FIN_WAIT1\n")
    assert bad.verdict == FAIL and "is in state ESTABLISHED, expected FIN_WAIT1" in bad.failure.message


def test_python_blocks_see_tcp_info_and_fail_with_their_line(write_case):
    good = run(write_case, HANDSHAKE + "+0 %{ assert tcpi_state == TCP_ESTABLISHED }%\n")
    assert good.verdict == PASS, good.failure
    bad = run(write_case, HANDSHAKE + "+0 %{ assert tcpi_snd_mss == 1, 'mss' }%\n")
    assert bad.verdict == FAIL and bad.failure.line == 16 and "mss" in bad.failure.message


def test_python_blocks_see_the_segments_lines_matched_and_print_into_the_report(write_case):
    good = run(write_case, HANDSHAKE
               + "+0 %{ print(len(outbound), outbound[0].flags, outbound[0].seq) }%\n")
    assert good.verdict == PASS, good.failure
    syn_ack = decode(next(p.data for p in good.packets if p.direction == "out"))
    assert good.timeline[-1].note == f"1 S. {syn_ack[1].seq}"      # the ISN as on the wire
    bad = run(write_case, HANDSHAKE + "+0 %{ print(outbound[0].ip_id); assert False, 'seen' }%\n")
    ip, _ = decode(next(p.data for p in bad.packets if p.direction == "out"))
    assert bad.verdict == FAIL and bad.failure.actual == str(ip.ident)    # shown on failure


def test_a_failing_shell_command_fails_the_case(write_case):
    result = run(write_case, HANDSHAKE + "+0 `echo broken >&2; exit 3`\n")
    assert result.verdict == FAIL and "exited with 3: broken" in result.failure.message


def test_a_bad_sysctl_is_an_error_of_the_case(write_case):
    result = run(write_case, HANDSHAKE, extra="")
    assert result.verdict == PASS
    script = load(write_case("s.yaml", case_yaml("s", HANDSHAKE)))
    script.sysctl["net.ipv4.tcp_no_such_knob"] = 1
    errored = run_one(script, "kernel")
    assert errored.verdict == ERROR and "tcp_no_such_knob does not exist" in errored.failure.message


def test_a_hanging_case_is_stopped_and_leaves_nothing_behind(write_case):
    start = time.monotonic()
    # An odd duration, so that no one else's `sleep` on the machine counts as a leftover.
    result = run(write_case, HANDSHAKE + "+0 `sleep 30.0417`\n", extra="timeout: 1\n")
    assert result.verdict == ERROR and "the case hung" in result.failure.message
    assert "line 16: +0 accept" in result.failure.message    # the last event that completed
    assert time.monotonic() - start < 5
    leftovers = [p for p in os.listdir("/proc") if p.isdigit()
                 and _cmdline(p).startswith("sleep 30.0417")]
    assert leftovers == []


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_a_shell_command_cannot_change_a_sysctl_of_the_host(write_case):
    before = open("/proc/sys/vm/swappiness").read()
    result = run(write_case, HANDSHAKE + "+0 `sysctl -q -w net.ipv4.tcp_sack=1`\n"
                 "+0 `echo 7 > /proc/sys/vm/swappiness`\n")
    assert result.verdict == FAIL and result.failure.line == 17
    assert open("/proc/sys/vm/swappiness").read() == before


def test_an_address_plan_the_device_cannot_take_is_an_error_of_the_case(write_case):
    result = run(write_case, "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n",
                 extra="options: {remote_ip: 224.0.0.1}\n")
    assert result.verdict == ERROR and "remote_ip 224.0.0.1" in result.failure.message


# 2500 bytes at the peer's MSS 1000 leave Linux as `. 1:1001`, `P. 1001:2001`, `P. 2001:2501`.
MSS_1000_WRITE = HANDSHAKE.replace("<mss 1460>\n+0    > S.", "<mss 1000>\n+0    > S.") + \
    "+0 write(4, ..., 2500) = 2500\n+0 > . 1:1001(1000) ack 1\n+0 > {mid} 1001:2001(1000) ack 1\n" \
    "+0 > {last} 2001:2501(500) ack 1\n"


# (The options line of a case with loose_psh moves its script down one line.)
@pytest.mark.parametrize("mid, last, option, verdict, line", [
    ("P.", "P.", "", PASS, 0),                     # Linux's own PSH placement, exact
    (".", "P.", "", FAIL, 18),                      # exact: the mid-write PSH is pinned
    (".", "P.", "options: {loose_psh: true}\n", PASS, 0),   # inside the write: free
    ("P.", ".", "options: {loose_psh: true}\n", FAIL, 20),  # the end of the write: exact
])
def test_loose_psh_frees_psh_only_on_segments_that_end_inside_a_write(
        write_case, mid: str, last: str, option: str, verdict: str, line: int):
    result = run(write_case, MSS_1000_WRITE.format(mid=mid, last=last), extra=option)
    assert result.verdict == verdict, result.failure
    if verdict == FAIL:
        assert result.failure.line == line
        assert [d["field"] for d in result.failure.diff] == ["flags"]
