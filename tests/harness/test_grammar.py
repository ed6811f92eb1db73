"""The line grammar: every form CASE_FORMAT.md names parses, and every mistake is reported
at file:line:column with what was expected."""

from __future__ import annotations

import pytest

from harness.errors import CaseError
from harness.grammar import parse_script
from harness.model import ANY, AssertEvent, PacketEvent, PythonEvent, ShellEvent, SyscallEvent
from harness.tcp import ACK, PSH, SYN


def one(text: str):
    events = parse_script(text, "t.pkt")
    assert len(events) == 1
    return events[0]


def error(text: str) -> CaseError:
    with pytest.raises(CaseError) as info:
        parse_script(text, "t.pkt")
    return info.value


def test_times_absolute_relative_any_and_ranges():
    kinds = [(e.time.kind, e.time.start, e.time.end) for e in parse_script(
        "0.100 < S 0:0(0) win 1\n+.1 < . 1:1(0) ack 1 win 1\n* > . 1:1(0)\n"
        "0.3~0.4 > . 1:1(0)\n+0.1~+0.3 > . 1:1(0)\n", "t.pkt")]
    assert kinds == [("abs", 0.1, None), ("rel", 0.1, None), ("any", 0.0, None),
                     ("range", 0.3, 0.4), ("range", 0.1, 0.3)]


def test_injected_segment_fields_and_options():
    event = one("+0 < [tos 0xe0, ttl 3] P. 1:101(100) ack 1 win 257 urg 5 "
                "<mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7,sack 1:2 3:4,eol>")
    assert isinstance(event, PacketEvent)
    assert (event.direction, event.flags, event.seq, event.end, event.length) == ("<", PSH | ACK, 1, 101, 100)
    assert (event.ack, event.win, event.urg) == (1, 257, 5)
    assert event.ip == {"tos": 0xE0, "ttl": 3}
    assert event.options == [("mss", 1460), ("sackOK",), ("TS", 100, 0), ("nop",), ("wscale", 7),
                             ("sack", [(1, 2), (3, 4)]), ("eol",)]


def test_expected_segment_wildcards_and_unchecked_options():
    event = one("+0 > (tos 0x0) S. 0:0(0) ack 1 win * <mss *,wscale *>")
    assert event.flags == SYN | ACK and event.win is None and event.ip == {"tos": 0}
    assert event.options == [("mss", ANY), ("wscale", ANY)]
    assert one("+0 > . 1:1(0) ack 1 <...>").options is None
    assert one("+0 > [ect0] . 1:1(0)").ip == {"ecn": 2}


def test_fast_open_options_and_ipv6_fields():
    event = parse_script("+0 < (flowlabel 0x12, src 2001:db8::7) S 0:0(0) win 1 "
                         "<FO abcd,FO,FOEXP TFO_COOKIE>\n", "t.pkt", defines={"TFO_COOKIE": "0102"})[0]
    assert event.options == [("raw", 34, b"\xab\xcd"), ("raw", 34, b""),
                             ("raw", 254, b"\xf9\x89\x01\x02")]
    assert event.ip == {"flowlabel": 0x12, "src": "2001:db8::7"}
    assert str(error("+0 < S 0:0(0) win 1 <FO xyz>\n")) == \
        "t.pkt:1:25: a Fast Open cookie in hex after FO, got 'xyz'"
    assert "an IPv4 or IPv6 address after 'dst'" in str(error("+0 > (dst 1.2.3) S 0:0(0)\n"))


def test_syscalls_with_every_argument_form():
    event = one("+0...0.2 setsockopt(4, SOL_SOCKET, SO_LINGER, {l_onoff=1, l_linger=0}, 8) = 0")
    assert isinstance(event, SyscallEvent) and event.end_time.start == 0.2
    assert [a.kind for a in event.args] == ["int", "name", "name", "struct", "int"]
    call = one('+0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)')
    assert call.ret.value == -1 and call.errno == "EINPROGRESS"
    flags = one("+0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0")
    assert flags.args[2].kind == "or"
    poll = one("+0 poll([{fd=4, events=POLLIN, revents=POLLIN}], 1, 0) = 1")
    assert poll.args[0].kind == "array" and poll.args[0].value[0].kind == "struct"
    assert one('+0 write(4, "hello", 5) = 5').args[1].value == "hello"


def test_assertions_python_and_shell():
    state = one("+0 assert 4 state ESTABLISHED")
    assert isinstance(state, AssertEvent) and state.checks == [("state", "==", "ESTABLISHED")]
    info = one("+0 assert 4 tcpi_snd_cwnd == 10, tcpi_rto >= 200000")
    assert info.checks == [("tcpi_snd_cwnd", "==", 10), ("tcpi_rto", ">=", 200000)]
    code = one("+0 %{\nassert tcpi_state == TCP_ESTABLISHED\n}%")
    assert isinstance(code, PythonEvent) and "tcpi_state" in code.code
    shell = one("+0 `sysctl -q net.ipv4.tcp_sack`")
    assert isinstance(shell, ShellEvent) and shell.command == "sysctl -q net.ipv4.tcp_sack"


def test_comments_of_every_kind_and_multiline_events():
    events = parse_script("// a\n# b\n/* c\n d */ 0 socket(..., SOCK_STREAM,\n"
                          "   IPPROTO_TCP) = 3 // trailing\n", "t.pkt")
    assert len(events) == 1 and events[0].loc.line == 4


@pytest.mark.parametrize("text, where, message", [
    ("0 < S 0:5(0) win 1", "t.pkt:1:7", "sequence numbers do not add up"),
    ("0 foo(1) = 0", "t.pkt:1:3", "not supported: foo"),
    ("0 < S 0:0(0) win 1 <mss 1,bogus>", "t.pkt:1:27", "unknown TCP option 'bogus'"),
    ("0 > X 0:0(0)", "t.pkt:1:5", "expected TCP flags"),
    ("0 setsockopt(3, SOL_BOGUS, 1) = 0", "t.pkt:1:17", "unknown name 'SOL_BOGUS'"),
    ("* write(1, ..., 1) = 1", "t.pkt:1:1", "only allowed on expected"),
    ("0 < S 0:0(0) win 1 junk", "t.pkt:1:20", "expected the end of the event"),
    ("0 read(4, ..., 1) = -1 EBOGUS", "t.pkt:1:24", "unknown errno 'EBOGUS'"),
    ("0 < [color red] S 0:0(0) win 1", "t.pkt:1:6", "unknown IP field 'color'"),
    ("0 %{ assert 1", "t.pkt:1:3", "'}%'"),
    ("0.2~0.1 > . 1:1(0)", "t.pkt:1:8", "ends before it starts"),
    ("0 assert 4 snd_cwnd == 1", "t.pkt:1:12", "tcpi_* field"),
    ("0 ...0.1 < S 0:0(0) win 1", "t.pkt:1:1", "only allowed before a system call"),
    ("\n\n  +0 frobnicate", "t.pkt:3:6", "not supported: frobnicate"),
])
def test_errors_name_the_place_and_what_was_expected(text, where, message):
    err = error(text)
    assert str(err).startswith(where + ": "), str(err)
    assert message in str(err)


def test_an_option_set_and_its_errors():
    """`<{...}>` names options in any layout: expected segments only, no NOP or EOL inside."""
    event = parse_script("0 > S. 0:0(0) ack 1 <{mss 1460, TS val 1 ecr 0}>\n", "t.yaml")[0]
    assert event.any_layout and event.options == [("mss", 1460), ("TS", 1, 0)]
    assert not parse_script("0 > S. 0:0(0) ack 1 <mss 1460>\n", "t.yaml")[0].any_layout
    for text, where, message in [
        ("0 < S 0:0(0) win 1 <{mss 1460}>\n", "t.yaml:1:21", "only for expected"),
        ("0 > S 0:0(0) <{mss 1460,nop}>\n", "t.yaml:1:25", "'nop' is layout"),
        ("0 > S 0:0(0) <{eol}>\n", "t.yaml:1:16", "'eol' is layout"),
        ("0 > S 0:0(0) <{mss 1460 TS val 1 ecr 2}>\n", "t.yaml:1:25", "',' or '}'"),
        ("0 > S 0:0(0) <{mss 1460}\n", "t.yaml:2:1", "'>' after '}'"),
    ]:
        with pytest.raises(CaseError) as caught:
            parse_script(text, "t.yaml")
        assert str(caught.value).startswith(where) and message in str(caught.value), caught.value
