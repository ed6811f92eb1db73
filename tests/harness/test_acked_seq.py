"""`acked` on an injected segment: the seq where the target's latest ACK points (its RCV.NXT as
it said), for a segment that must be at RCV.NXT where the case cannot know it in advance (a
reset into a zero window whose size is the target's own, RFC 9293 3.4). It parses, its
mistakes are errors at file:line:column, the peer sends it at the ACK it learned (convert
refuses it: tests/harness/test_alternatives.py), and on the stack a RST so placed aborts
while one a byte off does not."""

from __future__ import annotations

import pytest

from harness.errors import CaseError
from harness.execute import run_one
from harness.grammar import parse_script
from harness.ip import decode
from harness.loader import load
from harness.model import ACKED
from harness.peer import Peer
from harness.result import FAIL, PASS
from harness.tcp import ACK, RST, TCPSegment
from tests.conftest import located_error, HANDSHAKE, case_yaml, needs_root


def event(text: str):
    return parse_script(text + "\n", "t.yaml")[0]


def test_acked_parses_with_or_without_data() -> None:
    reset = event("0 < R. acked:acked(0) ack 1 win 0")
    assert (reset.seq, reset.end, reset.length) == (ACKED, ACKED, 0)
    data = event("0 < P. acked:acked+10(10) ack 1 win 100")
    assert (data.seq, data.length) == (ACKED, 10)


@pytest.mark.parametrize("text, where, message", [
    ("0 > R. acked:acked(0)", "t.yaml:1:8",
     "'acked' (where the target's last ACK points) is only for the seq of an injected ('<') TCP segment"),
    ("0 < R. acked:5(0) ack 1 win 0", "t.yaml:1:14", "expected 'acked' as the end too"),
    ("0 < P. acked:acked+10(9) ack 1 win 0", "t.yaml:1:8",
     "sequence numbers do not add up: acked:acked+10(9) has end - start = 10, expected 9"),
    ("0 < S acked:acked(0) win 1", "t.yaml:1:1", "the seq of a SYN is the ISN"),
])
def test_mistakes_are_located(text: str, where: str, message: str) -> None:
    located_error(text, where, message)


def test_the_peer_sends_it_where_the_last_ack_matched_points() -> None:
    peer = Peer(isns={(8080, 40000): 5000})
    with pytest.raises(CaseError) as caught:
        peer.packet(event("0 < R. acked:acked(0) ack 1 win 0"))
    assert "no segment the target sent on this connection has acknowledged anything yet" in str(caught.value)
    peer.learn(event("0 > . 1:1(0) ack 1001..3001 win 0"),
               TCPSegment(8080, 40000, 5001, 1461, ACK, 0))
    _, seg = decode(peer.packet(event("0 < R. acked:acked(0) ack 1 win 0")))
    assert (seg.seq, seg.flags, seg.ack) == (1461, RST | ACK, 5001)


def test_structured_steps_write_it(write_case) -> None:
    text = ("id: s\nrequirements: [rfc793:transition:LISTEN:syn]\nsteps:\n"
            '  - "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3"\n'
            '  - {at: "+0", inject: {flags: "R.", seq: acked, end: acked, len: 0, ack: 1, win: 0}}\n')
    reset = load(write_case("s.yaml", text)).events[1]
    assert (reset.seq, reset.length, reset.win) == (ACKED, 0, 0)


DATA = HANDSHAKE + """\
+.01  < . 1:1001(1000) ack 1 win 65535
+0~+.5 > . 1:1(0) ack 1001
+.01  < R. {seq} ack 1 win 65535
+0~+.1 >? . 1:1(0) ack 1001
+.01  assert 4 state {state}
"""


@needs_root
@pytest.mark.parametrize("seq, state, verdict", [
    ("acked:acked(0)", "CLOSE", PASS),                 # at RCV.NXT: the connection is reset
    ("1002:1002(0)", "CLOSE", FAIL),                   # one past: a challenge ACK at most
    ("1002:1002(0)", "ESTABLISHED", PASS),
])
def test_on_the_stack_a_reset_at_acked_aborts(write_case, seq: str, state: str, verdict: str) -> None:
    script = DATA.format(seq=seq, state=state)
    result = run_one(load(write_case("c.yaml", case_yaml("c", script))), "stack")
    assert result.verdict == verdict, result.failure
