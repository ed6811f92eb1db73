"""packetdrill's own files run as they are: options, device, grammar, calls, shell
commands, Python blocks, defines; and each way such a script can be broken or fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import CaseError
from harness.execute import run_one
from harness.loader import load
from harness.result import ERROR, FAIL, PASS, Result

from tests.conftest import HANDSHAKE, needs_root

PKT = Path(__file__).resolve().parent.parent / "pkt"
HEAD = ("`sysctl -q -w net.ipv4.tcp_timestamps=0 net.ipv4.tcp_sack=0 "
        "net.ipv4.tcp_window_scaling=0`\n" + HANDSHAKE)


def run_pkt(tmp_path: Path, text: str, defines: dict[str, str] | None = None) -> Result:
    path = tmp_path / "script.pkt"
    path.write_text(text)
    return run_one(load(path, defines), "kernel")


@needs_root
@pytest.mark.parametrize("name", ["offload-tso", "syscalls-io", "syscalls-fds", "ts-tick",
                                  "fastopen-client", "errqueue-zerocopy", "python-names",
                                  "socket-under-test", "raw-arguments", "target-isn-fd-reuse",
                                  "accecn-flags-option", "gso-mss", "connect-unspec",
                                  "zerocopy-iovec-frags", "syn-resent-by-earlier-socket"])
def test_shipped_scripts_pass_on_the_kernel(name):
    result = run_one(load(PKT / f"{name}.pkt"), "kernel")
    assert result.verdict == PASS, result.failure


@needs_root
def test_shell_python_and_defines_and_the_cleanup_command(tmp_path):
    marker = tmp_path / "cleaned"
    script = load(PKT / "shell-python-defines.pkt", {"SIZE": "500", "MARKER": str(marker)})
    result = run_one(script, "kernel")
    assert result.verdict == PASS, result.failure
    assert marker.read_text() == "cleaned\n"


@needs_root
def test_the_cleanup_command_runs_after_a_failure(tmp_path):
    marker = tmp_path / "cleaned"
    result = run_pkt(tmp_path, HEAD + "+0 > P. 1:11(10) ack 1\n`touch $MARKER`\n",
                     {"MARKER": str(marker)})
    assert result.verdict == FAIL and marker.exists()


@needs_root
def test_a_failing_python_block_names_its_line(tmp_path):
    result = run_pkt(tmp_path, HEAD + "+0 %{\nassert tcpi_snd_mss == 9, 'mss was %d' % tcpi_snd_mss\n}%\n")
    assert result.verdict == FAIL and result.failure.line == 10
    assert result.failure.message == "Python assertion failed: mss was 1460"


@needs_root
def test_python_blocks_run_at_the_end_with_the_tcp_info_of_their_moment(tmp_path):
    """packetdrill's meaning: each block sees TCP_INFO as it was when its line was reached,
    the blocks share one namespace, and they run after the last line."""
    passing = run_pkt(tmp_path, HEAD + "+0 write(4, ..., 10) = 10\n+0 > P. 1:11(10) ack 1\n"
                      "+0 %{ unacked_then = tcpi_unacked }%\n+.01 < . 1:1(0) ack 11 win 65535\n"
                      "+0 %{\nassert unacked_then == 1 and tcpi_unacked == 0\n}%\n")
    assert passing.verdict == PASS, passing.failure
    later = run_pkt(tmp_path, HEAD + "+0 %{ assert False, 'the block' }%\n"
                    "+0 write(4, ..., 10) = 10\n+0 > P. 1:99(98) ack 1\n")
    assert later.verdict == FAIL and later.failure.line == 12, later.failure


@needs_root
def test_tcp_ts_tick_usecs_checks_the_outbound_ts_val(tmp_path):
    text = (PKT / "ts-tick.pkt").read_text()
    assert run_pkt(tmp_path, text).verdict == PASS
    early = run_pkt(tmp_path, text.replace("TS val 600 ecr 200", "TS val 560 ecr 200"))
    assert early.verdict == FAIL
    assert "bad outbound TCP timestamp value: 4" in early.failure.diff[0]["actual"]
    unchecked = run_pkt(tmp_path, text.replace("TS val 600 ecr 200", "TS val 560 ecr 200")
                        .replace("--tcp_ts_tick_usecs=1000", ""))
    assert unchecked.verdict == PASS


@needs_root
def test_non_fatal_makes_packet_and_syscall_mismatches_warnings(tmp_path):
    wrong = HEAD + "+0 write(4, ..., 10) = 11\n+0 > P. 1:11(10) ack 1 win 9\n+0 close(4) = 0\n+0 > F. 11:11(0) ack 1\n"
    assert run_pkt(tmp_path, wrong).verdict == FAIL
    both = run_pkt(tmp_path, "--non_fatal=packet,syscall\n" + wrong)
    assert both.verdict == PASS, both.failure
    assert [w.split(": warning: ")[1].split(" (")[0] for w in both.warnings] == \
        ["returned 10, expected 11", "outbound segment does not match"]
    packet_only = run_pkt(tmp_path, "--non_fatal=packet\n" + wrong)
    assert packet_only.verdict == FAIL and packet_only.failure.line == 11   # the write
    missing = run_pkt(tmp_path, "--non_fatal=packet\n" + HEAD + "+0 > P. 1:11(10) ack 1\n")
    assert missing.verdict == FAIL and "did not arrive" in missing.failure.message


@needs_root
def test_a_segment_no_line_expects_is_seen_only_by_the_next_expected_line(tmp_path):
    """packetdrill's rule: the data segment nobody expects is not a failure by itself."""
    text = HEAD + "+0 write(4, ..., 10) = 10\n+.05 < . 1:1(0) ack 11 win 65535\n+.01 close(4) = 0\n"
    assert run_pkt(tmp_path, text).verdict == PASS
    taken = run_pkt(tmp_path, text + "+0 > F. 11:11(0) ack 1\n")
    assert taken.verdict == FAIL and taken.failure.line == 13     # it meets the data segment
    strict = run_pkt(tmp_path, "--fail_on_unexpected\n" + text)
    assert strict.verdict == FAIL and "unexpected outbound segment" in strict.failure.message


ACTIVE_OPEN = """`sysctl -q -w net.ipv4.tcp_timestamps=0 net.ipv4.tcp_sack=0 net.ipv4.tcp_window_scaling=0`
0   socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0  fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0
+0  connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
+0  > S 0:0(0) <mss 1460>
+.01 < S. 0:0(0) ack 1 win 65535 <mss 1460>
+0  > . 1:1(0) ack 1
+0  write(3, ..., 500) = 500
+0  > P. 1:501(500) ack 1
+.01 < . 1:1(0) ack 501 win 65535
+0 %{ assert tcpi_bytes_acked == 501, tcpi_bytes_acked }%
"""


@needs_root
@pytest.mark.parametrize("target", ["kernel", "stack"])
def test_sysctls_a_shell_command_sets_reach_both_targets_and_tcp_info_counts_alike(tmp_path, target):
    """The stack honours the sysctls an init command sets in the namespace (no timestamps,
    SACK or window scaling in its SYN), and counts tcpi_bytes_acked as Linux does: with the
    SYN of an active open (the passive side's count is checked by shell-python-defines)."""
    path = tmp_path / "active.pkt"
    path.write_text("--ip_version=ipv4\n" + ACTIVE_OPEN)
    result = run_one(load(path), target)
    assert result.verdict == PASS, result.failure
    passive = run_one(load(PKT / "shell-python-defines.pkt", {"SIZE": "500", "MARKER": str(tmp_path / "m")}),
                      target)
    assert passive.verdict == PASS, passive.failure


@needs_root
def test_a_python_block_that_raises_is_reported(tmp_path):
    result = run_pkt(tmp_path, HEAD + "+0 %{ tcpi_nonexistent + 1 }%\n")
    assert result.verdict == FAIL and "NameError" in result.failure.message


@needs_root
def test_a_failing_shell_command_and_a_failing_init_command(tmp_path):
    failing = run_pkt(tmp_path, HEAD + "+0 `false`\n")
    assert failing.verdict == FAIL and failing.failure.line == 10
    init = run_pkt(tmp_path, "`exit 4`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    assert init.verdict == FAIL and "exited with 4" in init.failure.message


@needs_root
def test_a_script_that_hangs_is_stopped(tmp_path):
    path = tmp_path / "hang.pkt"
    path.write_text(HEAD + "+0 `sleep 60`\n")
    script = load(path)
    script.timeout = 1.0
    result = run_one(script, "kernel")
    assert result.verdict == ERROR and "the case hung" in result.failure.message


@pytest.mark.parametrize("text, where, message", [
    ("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < S 0:0(0 win 1\n", "2:14", "expected ')'"),
    ("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 fsync(3) = 0\n", "2:4", "not supported: fsync"),
    ("--tolerance_usecs=abc\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n", "1:1", "--tolerance_usecs needs a number"),
    ("--no_such_option=1\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n", "1:1", "unknown option --no_such_option"),
    ("--non_fatal=packets\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n", "1:1", "expected packet, syscall"),
    ("--ip_version=ipv5\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n", "1:1", "expected ipv4, ipv4-mapped-ipv6, ipv6"),
    ("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n`true`\n+0 close(3) = 0\n", "3:1", "after the cleanup command"),
])
def test_broken_scripts_are_errors_at_their_place(tmp_path, text, where, message):
    path = tmp_path / "broken.pkt"
    path.write_text(text)
    with pytest.raises(CaseError) as info:
        load(path)
    assert str(info.value).startswith(f"{path}:{where}: "), str(info.value)
    assert message in str(info.value)


def test_options_set_the_plan_and_defaults_follow_packetdrill(tmp_path):
    path = tmp_path / "opts.pkt"
    path.write_text("--tolerance_usecs=7000 --bind_port=9090\n--strict_segments\n"
                    "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    script = load(path)
    assert script.tolerance.usecs == 7000 and script.tolerance.percent == 12.5
    assert script.plan.bind_port == 9090 and script.plan.strict_segments and script.plan.offload
    assert script.events[0].loc.line == 3
    assert not script.plan.loose_psh          # packetdrill's exact flags unless asked
    path.write_text("--loose_psh\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    assert load(path).plan.loose_psh
