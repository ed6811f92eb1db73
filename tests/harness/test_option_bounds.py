"""Bounds on a TCP option's value, and options that may be absent, on expected segments:
`<mss <=1460>`, `<{mss? <=1460}>`. RFC 9293 3.7.1 bounds the MSS a TCP announces (no more
than MMS_R - 20, MUST-67) without fixing it, and lets a SYN go without the option when the
MSS is the default 536 (SHLD-5, MAY-3). Each form parses, its mistakes are errors at
file:line:column, it matches inside the bound and fails outside, and `convert` refuses it."""

from __future__ import annotations

import pytest

from harness.convert import yaml_to_pkt
from harness.errors import CaseError
from harness.execute import run_one
from harness.grammar import parse_script
from harness.ip import IPv4, decode, encode
from harness.loader import load
from harness.matcher import compare
from harness.peer import Peer
from harness.result import FAIL, PASS
from harness.tcp import ACK, SYN, TCPSegment
from harness.values import ValueSet
from tests.conftest import located_error, HANDSHAKE, case_yaml, needs_root

ISN = 1_000_000
PEER = Peer(isns={(8080, 40000): ISN})


def line(text: str):
    return parse_script(text + "\n", "t.yaml")[0]


def syn_ack(options: list) -> tuple:
    seg = TCPSegment(8080, 40000, ISN, 1, SYN | ACK, 1000, options=options)
    return decode(encode(IPv4("192.168.0.1", "192.0.2.1"), seg))


def differences(text: str, options: list) -> list[str]:
    return [f"{d.field}: {d.expected} / {d.actual}" for d in compare(line(text), *syn_ack(options), PEER, None)]


def test_a_bound_and_an_option_that_may_be_absent_parse() -> None:
    event = line("0 > S. 0:0(0) ack 1 <{mss? <=1460, wscale 0..14}>")
    assert event.options == [("mss", ValueSet(((None, 1460),))), ("wscale", ValueSet(((0, 14),)))]
    assert event.may_lack == frozenset({0}) and event.any_layout
    ordered = line("0 > S. 0:0(0) ack 1 <mss 536..1460,nop,wscale *>")
    assert ordered.options[0] == ("mss", ValueSet(((536, 1460),))) and not ordered.may_lack
    assert line("0 > S. 0:0(0) ack 1 <mss 1460>").options == [("mss", 1460)]   # one value stays an int


@pytest.mark.parametrize("text, where, message", [
    ("0 < S 0:0(0) win 1 <mss <=1460>", "t.yaml:1:25",
     "a range or set (<=1460) is only allowed on an expected ('>') segment"),
    ("0 > S. 0:0(0) ack 1 <mss? <=1460>", "t.yaml:1:22",
     "'mss?' (an option that may be absent) is only for '<{...}>' (options in any layout)"),
    ("0 > S. 0:0(0) ack 1 <{mss? 1460..536}>", "t.yaml:1:28", "range 1460..536 ends before it starts"),
    ("0 > S. 0:0(0) ack 1 <{mss? <=70000}>", "t.yaml:1:30", "mss 70000 does not fit its 16-bit field"),
    ("0 > S. 0:0(0) ack 1 <{nop?}>", "t.yaml:1:23", "'nop' is layout"),
    ("0 > S. 0:0(0) ack 1 <{mss? <=1460 wscale *}>", "t.yaml:1:35", "',' or '}'"),
])
def test_mistakes_are_located(text: str, where: str, message: str) -> None:
    located_error(text, where, message)


@pytest.mark.parametrize("options, found", [
    ([("mss", 1460)], []), ([("mss", 1400)], []), ([("mss", 536)], []),
    ([], []),                                                   # absent: the default 536
    ([("nop",), ("mss", 1220), ("eol",)], []),                  # any layout
    ([("mss", 1480)], ["options (any layout): {mss? <=1460} / <mss 1480>, not allowed mss 1480"]),
    ([("mss", 1400), ("wscale", 7)],
     ["options (any layout): {mss? <=1460} / <mss 1400,wscale 7,eol>, not allowed wscale 7"]),
])
def test_an_mss_that_may_be_absent_matches_inside_its_bound(options: list, found: list[str]) -> None:
    assert differences("0 > S. 0:0(0) ack 1 <{mss? <=1460}>", options) == found


def test_an_mss_that_must_be_there_fails_when_absent_or_too_large() -> None:
    assert differences("0 > S. 0:0(0) ack 1 <mss <=1460>", [("mss", 1400)]) == []
    assert differences("0 > S. 0:0(0) ack 1 <mss <=1460>", []) == ["options: <mss <=1460> / none"]
    assert differences("0 > S. 0:0(0) ack 1 <mss <=1460>", [("mss", 1461)]) == \
        ["option 1: mss <=1460 / mss 1461"]
    assert differences("0 > S. 0:0(0) ack 1 <{mss <=1460}>", []) == \
        ["options (any layout): {mss <=1460} / none, missing mss <=1460"]


@pytest.mark.parametrize("options, what", [
    ("<mss <=1460>", "the option value range 'mss <=1460'"),
    ("<{mss? <=1460}>", "'<{...}>' (options in any layout)"),
])
def test_convert_refuses_a_bound_packetdrill_cannot_say(write_case, options: str, what: str) -> None:
    path = write_case("c.yaml", case_yaml("c", HANDSHAKE.replace("<mss 1460>\n+.01", options + "\n+.01")))
    with pytest.raises(CaseError) as caught:
        yaml_to_pkt(str(path))
    assert str(caught.value) == (f"{path}:13:3: {what} has no packetdrill syntax: this case "
                                 "stays an rfcdrill YAML case and cannot be written as a .pkt"
                                 " (--loose writes its options as <...>, unchecked)")


def test_structured_steps_write_the_same_forms(write_case) -> None:
    text = ("id: s\nrequirements: [rfc793:transition:LISTEN:syn]\nsteps:\n"
            '  - "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3"\n'
            '  - {at: "+0", expect: {flags: "S.", seq: 0, ack: 1, options: "<{mss? <=1460}>"}}\n'
            '  - {at: "+0", expect: {flags: "S.", seq: 0, ack: 1, options: [[mss, "536..1460"]]}}\n')
    first, second = load(write_case("s.yaml", text)).events[1:]
    assert first.may_lack == frozenset({0}) and first.options == [("mss", ValueSet(((None, 1460),)))]
    assert second.options == [("mss", ValueSet(((536, 1460),)))] and not second.any_layout


@needs_root
@pytest.mark.parametrize("maxseg, verdict", [(0, PASS), (1400, PASS), (536, PASS)])
def test_on_the_stack_any_mss_up_to_the_bound_passes(write_case, maxseg: int, verdict: str) -> None:
    """TCP_MAXSEG on the listener lowers the MSS the stack's SYN-ACK announces."""
    sets = f"+0    setsockopt(3, IPPROTO_TCP, TCP_MAXSEG, [{maxseg}], 4) = 0\n" if maxseg else ""
    script = HANDSHAKE.replace("+0    bind", sets + "+0    bind").replace(
        "> S. 0:0(0) ack 1 <mss 1460>", "> S. 0:0(0) ack 1 <{mss? <=1460}>")
    result = run_one(load(write_case("c.yaml", case_yaml("c", script))), "stack")
    assert result.verdict == verdict, result.failure


@needs_root
def test_on_the_stack_an_mss_above_the_bound_fails(write_case) -> None:
    script = HANDSHAKE.replace("> S. 0:0(0) ack 1 <mss 1460>", "> S. 0:0(0) ack 1 <{mss? <=1400}>")
    result = run_one(load(write_case("c.yaml", case_yaml("c", script))), "stack")
    assert result.verdict == FAIL
    assert "not allowed mss 1460" in result.failure.diff[0]["actual"], result.failure

