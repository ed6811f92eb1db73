"""Flag alternatives on an expected segment, `R|R.`: a reset answering a segment with ACK may
carry the ACK bit or not (RFC 9293 3.5.2 gives <SEQ=SEG.ACK><CTL=RST> and forbids neither).
They parse, their mistakes are errors at file:line:column, any of them matches and none other
does, and on the stack a reset to a segment for a closed port passes `R|R.`."""

from __future__ import annotations

import pytest

from harness.execute import run_one
from harness.grammar import parse_script
from harness.ip import IPv4, decode, encode
from harness.loader import load
from harness.matcher import compare
from harness.peer import Peer
from harness.result import FAIL, PASS
from harness.tcp import ACK, PSH, RST, TCPSegment
from tests.conftest import located_error, case_yaml, needs_root

ISN = 1_000_000
PEER = Peer(isns={(8080, 40000): ISN})


def line(text: str):
    return parse_script(text + "\n", "t.yaml")[0]


def flags_found(text: str, flags: int, free_psh: bool = False) -> list[str]:
    seg = TCPSegment(8080, 40000, ISN + 2, 2, flags, 0)
    diffs = compare(line(text), *decode(encode(IPv4("192.168.0.1", "192.0.2.1"), seg)), PEER,
                    None, free_psh)
    return [f"{d.expected} / {d.actual}" for d in diffs if d.field == "flags"]


def test_alternatives_parse_after_the_first_flags() -> None:
    event = line("0 > (tos 0x0) 8080>40001 R|R. 2:2(0)")
    assert (event.flags, event.flag_alternatives) == (RST, (RST | ACK,))
    assert line("0 > .|P. 1:11(10) ack 1").flag_alternatives == (PSH | ACK,)
    assert line("0 > R 2:2(0)").flag_alternatives == ()


@pytest.mark.parametrize("text, where, message", [
    ("0 < R|R. 2:2(0) win 0", "t.yaml:1:6",
     "flag alternatives ('R|R.') are only for expected ('>') segments"),
    ("0 > R|S 2:2(0)", "t.yaml:1:7",
     "flag alternatives R|S differ in SYN/RST: that is another segment, for an 'either' block"),
    ("0 > .|F. 2:2(0)", "t.yaml:1:7", "differ in FIN"),
    ("0 > R| 2:2(0)", "t.yaml:1:7", "expected TCP flags after '|' (e.g. R|R.)"),
    ("0 > R|R.W5 2:2(0)", "t.yaml:1:7", "conflicting TCP flag"),
])
def test_mistakes_are_located(text: str, where: str, message: str) -> None:
    located_error(text, where, message)


@pytest.mark.parametrize("flags, found", [
    (RST, []), (RST | ACK, []),
    (RST | PSH | ACK, ["R|R. / RP."]),
    (ACK, ["R|R. / ."]),
])
def test_any_alternative_matches_and_no_other(flags: int, found: list[str]) -> None:
    assert flags_found("0 > R|R. 2:2(0)", flags) == found


def test_psh_left_free_still_applies_to_each_alternative() -> None:
    assert flags_found("0 > .|E. 2:2(0)", PSH | ACK, free_psh=True) == []
    assert flags_found("0 > .|E. 2:2(0)", PSH | ACK) == [".|E. / P."]


def test_structured_steps_write_them(write_case) -> None:
    text = ("id: s\nrequirements: [rfc793:transition:LISTEN:syn]\nsteps:\n"
            '  - "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3"\n'
            '  - {at: "+0", expect: {flags: "R|R.", seq: 5555}}\n')
    reset = load(write_case("s.yaml", text)).events[1]
    assert (reset.flags, reset.flag_alternatives) == (RST, (RST | ACK,))


CLOSED_PORT = """\
0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0    < . 1:1(0) ack 5555 win 65535
+0    > {flags} 5555:5555(0)
"""


@needs_root
@pytest.mark.parametrize("flags, verdict", [("R|R.", PASS), ("R.|R", PASS), ("R.", FAIL)])
def test_on_the_stack_the_closed_port_reset_matches_either_form(write_case, flags: str,
                                                                 verdict: str) -> None:
    """The stack answers an ACK for a port nobody listens on with <SEQ=SEG.ACK><CTL=RST>."""
    script = CLOSED_PORT.format(flags=flags)
    result = run_one(load(write_case("c.yaml", case_yaml("c", script))), "stack")
    assert result.verdict == verdict, result.failure
