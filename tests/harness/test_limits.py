"""Every bound of harness/limits.py, met by a file that crosses it: a CaseError at the exact
`file:line:column`, never a traceback and never a value changed in silence."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness import limits
from harness.errors import CaseError
from harness.loader import load
from harness.model import PacketEvent

from tests.conftest import case_yaml

SOCKET = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"
SCRIPT_LINE = 9        # case_yaml: the script's first line is line 8, SOCKET; the next is 9
INDENT = 2             # case_yaml indents the script by two spaces


def error_of(path: Path) -> str:
    with pytest.raises(CaseError) as info:
        load(path)
    assert info.value.loc is not None and info.value.loc.file == str(path)
    return str(info.value)


def line_error(write_case, line: str) -> tuple[str, Path]:
    path = write_case("bad.yaml", case_yaml("bad", SOCKET + line + "\n"))
    return error_of(path), path


# (the line, the text where the error points, what the message says)
WIRE_FIELDS = [
    ("+0 < S 0:0(0) win 70000", "70000", "win 70000 does not fit its 16-bit field (0..65535)"),
    ("+0 < S 0:0(0) win 1000 <mss 99999999>", "99999999", "mss 99999999 does not fit its 16-bit field"),
    ("+0 < (tos 0x1ff) S 0:0(0) win 1000", "0x1ff", "tos 511 does not fit its 8-bit field (0..255)"),
    ("+0 < [ttl 256] S 0:0(0) win 1", "256", "ttl 256 does not fit its 8-bit field"),
    ("+0 < [id 65536] S 0:0(0) win 1", "65536", "id 65536 does not fit its 16-bit field"),
    ("+0 < S 4294967296:4294967296(0) win 1", "4294967296", "seq 4294967296 does not fit its 32-bit field"),
    ("+0 < S 0:0(0) ack 4294967296 win 1", "4294967296", "ack 4294967296 does not fit its 32-bit"),
    ("+0 < S 0:0(0) win 1 urg 65536", "65536", "urg 65536 does not fit its 16-bit field"),
    ("+0 < S -1:0(1) win 1", "-1", "seq -1 does not fit its 32-bit field"),
    ("+0 < 70000>8080 S 0:0(0) win 1", "70000", "port 70000 does not fit its 16-bit field"),
    ("+0 < 40000>65536 S 0:0(0) win 1", "65536", "port 65536 does not fit its 16-bit field"),
    ("+0 < S 0:0(0) win 1 <sack 1:4294967296>", "4294967296", "sack 4294967296 does not fit"),
    ("+0 < S 0:0(0) win 1 <TS val 4294967296 ecr 0>", "4294967296", "TS val 4294967296 does not fit"),
    ("+0 < S 0:0(0) win 1 <TS val 1 ecr 4294967296>", "4294967296", "TS ecr 4294967296 does not fit"),
    ("+0 < S 0:0(0) win 1 <wscale 256>", "256", "wscale 256 does not fit its 8-bit field"),
    ("+0 < S 0:0(0) win 1 <opt 256>", "256", "option kind 256 does not fit its 8-bit field"),
    ("+0 < S 0:0(0) win 1 <opt 2 len 256>", "256", "option length 256 does not fit"),
    ("+0 < icmp unreachable frag_needed mtu 65536 [0:0(0)]", "65536", "mtu 65536 does not fit"),
    ("+0 < S 0:0(0) win 1 <" + ",".join(["TS val 1 ecr 0"] * 5) + ">", "<TS",
     "the TCP options take 50 octets; a TCP header holds at most 40"),
    ("+0 > S. 0:0(0) ack 1 <" + ",".join(["nop"] * 41) + ">", "<nop", "take 41 octets"),
    ("+0 < [ipopt 0x" + "01" * 44 + "] S 0:0(0) win 1", "0x01", "44 octets of IP options"),
    ("+0 < P. 1:65497(65496) ack 1 win 1", "+0", "an injected segment of 65496 data octets "
     "does not fit one IP packet (at most 65495"),
    ("+0 write(3, ..., 18446744073709551616) = 1", "18446744073709551616",
     "does not fit a 64-bit system call argument"),
]


@pytest.mark.parametrize("line, at, message", WIRE_FIELDS, ids=[w[2][:30] for w in WIRE_FIELDS])
def test_a_value_that_does_not_fit_its_field_is_an_error_at_it(write_case, line, at, message):
    error, path = line_error(write_case, line)
    assert error.startswith(f"{path}:{SCRIPT_LINE}:{INDENT + line.index(at) + 1}: ")
    assert message in error


def test_values_legal_on_the_wire_but_unusual_stay_allowed(write_case):
    line = "+0 < [ttl 0] S 4294967295:4294967295(0) win 65535 urg 65535 <mss 0,wscale 15,opt 2 len 9>"
    path = write_case("odd.yaml", case_yaml("odd", SOCKET + line + "\n"))
    event = load(path).events[1]
    assert isinstance(event, PacketEvent)
    assert (event.seq, event.win, event.urg, event.ip["ttl"]) == (4294967295, 65535, 65535, 0)
    assert event.options == [("mss", 0), ("wscale", 15), ("bytes", bytes((2, 9)))]


@pytest.mark.parametrize("written, value", [("065535", 65535), ("02", 2), ("08", 8), ("0x10", 16)])
def test_numbers_read_as_packetdrills_lexer_reads_them(write_case, written, value):
    # packetdrill's lexer.l reads [0-9]+ with atoll: decimal, leading zeros ignored (not octal).
    path = write_case("num.yaml", case_yaml("num", SOCKET + f"+0 < S 0:0(0) win {written}\n"))
    assert load(path).events[1].win == value


def test_a_number_too_long_is_an_error_not_a_valueerror(write_case):
    error, path = line_error(write_case, "+0 < S 0:0(0) win " + "9" * 5000)
    assert error == f"{path}:{SCRIPT_LINE}:{INDENT + 19}: a number of 5000 characters (at most 64)"


@pytest.mark.parametrize("line, at, message", [
    ("+99999999999999999999 close(3) = 0", "99", "a time of 1e+20 s is past the limit of 86400 s"),
    ("+86400.5 close(3) = 0", "86400.5", "a time of 86400.5 s is past the limit"),
    ("+0...99999 read(3, ..., 1) = 1", "99999", "a time of 99999 s is past the limit"),
    ("+" + "9" * 100 + " close(3) = 0", "99", "a number of 100 characters (at most 64)"),
])
def test_times_are_finite_and_within_a_day(write_case, line, at, message):
    error, path = line_error(write_case, line)
    assert error.startswith(f"{path}:{SCRIPT_LINE}:{INDENT + line.index(at) + 1}: {message}")


def test_the_whole_timeline_is_within_a_day(write_case):
    error, path = line_error(write_case, "+50000 close(3) = 0\n+50000 close(3) = 0")
    assert error.startswith(f"{path}:{SCRIPT_LINE + 1}:{INDENT + 1}: the timeline of 100000 s")


def test_brackets_nest_at_most_32_deep(write_case):
    line = "+0 setsockopt(3, SOL_SOCKET, SO_LINGER, " + "[" * 5000 + "1" + "]" * 5000 + ", 4) = 0"
    error, path = line_error(write_case, line)
    col = INDENT + line.index("[") + 31 + 1     # the 32nd bracket: the call's ( is the first
    assert error == f"{path}:{SCRIPT_LINE}:{col}: brackets nested more than 32 deep"
    assert load(write_case("ok.yaml", case_yaml("ok", SOCKET + line.replace(
        "[" * 5000 + "1" + "]" * 5000, "[" * 31 + "1" + "]" * 31) + "\n"))) is not None


@pytest.mark.parametrize("escape, message", [
    ("\\x", "incomplete escape '\\x': it needs 2 hex digits"),
    ("\\q", "unknown escape '\\q' in a string of bytes"),
    ("\\u12", "unknown escape '\\u' in a string of bytes"),
    ("\\777", "'\\777' names no byte (octal escapes go up to \\377)"),
])
def test_a_bad_string_escape_is_an_error_at_it(write_case, escape, message):
    line = f'+0 write(3, "ab{escape}", 4) = 4'
    error, path = line_error(write_case, line)
    assert error.startswith(f"{path}:{SCRIPT_LINE}:{INDENT + line.index(escape) + 1}: {message}")


def test_a_string_is_bytes_its_text_in_utf8_and_escapes_one_byte_each():
    assert limits.unescape(r"a\x41\n\t\101\0\377\\\"é") == 'aA\n\tA\0\xff\\"\xc3\xa9'
    with pytest.raises(ValueError):
        limits.byte_text("\ud800")


def test_a_timeline_with_no_events_is_an_error(write_case, tmp_path):
    path = write_case("empty.yaml", "id: empty\nrequirements: [rfc793:transition:LISTEN:syn]\n"
                                    "script: |\n  // nothing here\n")
    assert error_of(path) == f"{path}:3:9: the timeline has no events: a case must check something"
    pkt = tmp_path / "empty.pkt"
    pkt.write_text("--tolerance_usecs=1000\n`true`\n")
    assert error_of(pkt).startswith(f"{pkt}:2:1: the timeline has no events")


# -- YAML ---------------------------------------------------------------------------------------------
def yaml_error(write_case, extra: str) -> tuple[str, Path]:
    path = write_case("bad.yaml", case_yaml("bad", SOCKET, extra=extra))
    return error_of(path), path


@pytest.mark.parametrize("extra, at, message", [
    ("tolerance: {usecs: .nan}\n", "3:12", "tolerance usecs must be a finite number"),
    ("tolerance: {percent: 101}\n", "3:12", "tolerance percent must be a finite number in 0..100"),
    ("timeout: .inf\n", "3:10", "timeout must be a finite number of seconds"),
    ("timeout: 100000\n", "3:10", "timeout of 100000 s is past the limit"),
    ("timeout: " + "9" * 5000 + "\n", "3:10", "cannot read this value"),
    ("timeout: 2001-99-99\n", "3:10", "cannot read this value: month must be in 1..12"),
    ("x: " + "[" * 40 + "]" * 40 + "\n", "3:35", "YAML collections nested more than 32 deep"),
])
def test_yaml_values_are_bounded(write_case, extra, at, message):
    error, path = yaml_error(write_case, extra)
    assert error.startswith(f"{path}:{at}: ") and message in error


@pytest.mark.parametrize("name", ["net/../../x", "kernel.hostname", "net.", "net..ipv4"])
def test_sysctl_names_are_dotted_net_names(write_case, name):
    path = write_case("bad.yaml", case_yaml("bad", SOCKET).replace(
        "  net.ipv4.tcp_sack: 0", f"  {name}: 0"))
    assert error_of(path).startswith(f"{path}:5:3: sysctl name {name!r}: a case sets only")


def test_an_alias_of_an_alias_is_refused_quickly_and_briefly(write_case):
    bomb = ["bomb0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    bomb += [f"bomb{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    path = write_case("bomb.yaml", "id: bomb\n" + "\n".join(bomb) + "\nrequirements: *a9\n"
                                   "script: '0 close(3) = 0'\n")
    started = time.monotonic()
    error = error_of(path)
    assert time.monotonic() - started < 2
    assert error.startswith(f"{path}:7:") and "expands to more than 100000 values" in error
    assert len(error) < 300


def test_a_yaml_error_at_the_end_is_on_the_last_line(write_case):
    path = write_case("cut.yaml", "id: cut\nrequirements: [x]\nscript")
    assert error_of(path).startswith(f"{path}:3:7: YAML syntax")


# -- files --------------------------------------------------------------------------------------------
def test_bytes_that_are_not_utf8_are_an_error_at_them(write_case):
    path = write_case("bytes.yaml", "")
    path.write_bytes(b"id: x\nrequirements: [a\xff]\n")
    assert error_of(path) == f"{path}:2:17: not UTF-8 text (byte 0xff)"


def test_a_nul_is_an_error_at_it(write_case):
    path = write_case("nul.yaml", "id: x\nreq\0uirements: []\n")
    assert error_of(path) == f"{path}:2:4: a NUL character in the file"


def test_a_file_over_the_size_limit_is_refused(write_case):
    path = write_case("big.yaml", "# " + "x" * limits.MAX_FILE_BYTES + "\n")
    assert error_of(path).startswith(f"{path}:1:1: the file has {limits.MAX_FILE_BYTES + 3} bytes")


# -- .pkt options ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("option, message", [
    ("--tolerance_usecs=nan", "--tolerance_usecs: tolerance usecs must be a finite number"),
    ("--tolerance_percent=1e9", "--tolerance_percent: tolerance percent must be a finite number"),
    ("--tolerance_usecs=abc", "--tolerance_usecs needs a number, not 'abc'"),
    ("--mtu=99999999", "--mtu=99999999: an MTU is 68..65535"),
    ("--bind_port=0x10000", "a port is 1..65535"),
    ("--tcp_ts_tick_usecs=-1", "a tick is 0.."),
    ("--init_scripts=/nonexistent/helper.sh", "'/nonexistent/helper.sh' is not a file here nor a program on PATH"),
])
def test_pkt_options_are_bounded(tmp_path, option, message):
    path = tmp_path / "opt.pkt"
    path.write_text(f"// a comment\n{option}\n{SOCKET}")
    assert error_of(path).startswith(f"{path}:2:1: ") and message in error_of(path)


def test_a_long_option_line_is_read_in_linear_time(tmp_path):
    path = tmp_path / "options.pkt"
    path.write_text("--a=" * 40 + " !\n" + SOCKET)      # was exponential in the option count
    started = time.monotonic()
    assert error_of(path).startswith(f"{path}:1:1: ")
    assert time.monotonic() - started < 1


def test_an_error_never_carries_a_huge_value(write_case):
    error, path = line_error(write_case, "+0 " + "a" * 100_000 + "(1) = 0")
    assert error.startswith(f"{path}:{SCRIPT_LINE}:{INDENT + 4}: not supported: aaa")
    assert len(error) - len(str(path)) < 1100 and error.endswith("(100311 characters)")
