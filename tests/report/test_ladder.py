"""Ladder diagrams: one arrow per packet, in script notation, and the expected segment."""

from __future__ import annotations

import re
from html import unescape

from harness.report import ladder
from harness.result import Failure, PacketRecord
from harness.tcp import ACK, SYN
from tests.report import synthetic


def _arrows(svg: str) -> list[tuple[str, str, str]]:
    """(class, direction, label) of each arrow group in an SVG."""
    return [(kind, direction, unescape(label)) for kind, direction, label in re.findall(
        r'<g class="arrow (\w+)" data-dir="(\w+)"><title>([^<]*)</title>', svg)]


def test_one_arrow_per_packet_numbers_relative_to_the_targets_isn() -> None:
    svg = ladder.svg(synthetic.handshake_packets(), target="kernel")
    assert _arrows(svg) == [
        ("packet", "in", "S 0:0(0) win 65535 <mss 1460>"),
        ("packet", "out", "S. 0:0(0) ack 1 win 64240 <mss 1460>"),
        ("packet", "in", ". 1:1(0) ack 1 win 65535"),
        ("packet", "in", "P. 1:11(10) ack 1 win 65535"),
        ("packet", "out", ". 1:1(0) ack 11 win 64230"),
        ("packet", "out", "F. 1:1(0) ack 11 win 64230")]
    assert 'data-arrows="6"' in svg and svg.count("<line ") == 2 + 6    # two rails
    assert ">0.021200<" in svg and ">kernel<" in svg


def test_a_mismatch_draws_the_expected_segment_beside_the_actual_one() -> None:
    svg = ladder.svg(synthetic.handshake_packets(), synthetic.mismatch())
    drawn = _arrows(svg)
    assert len(drawn) == 7
    assert drawn[5] == ("actual", "out", "actual: F. 1:1(0) ack 11 win 64230")
    assert drawn[6] == ("expected", "out", "expected: F. 1:1(0) ack 12 win 100")
    assert 'stroke-dasharray' in svg.split('class="arrow expected"')[1]


def test_a_segment_that_never_came_is_drawn_expected_at_the_end() -> None:
    failure = Failure("expected segment did not arrive by 0.2", 9, 3,
                      "+0 > S. 0:0(0) ack 1 <mss 1460>", "S. 0:0(0) ack 1 <mss 1460>")
    drawn = _arrows(ladder.svg(synthetic.handshake_packets()[:1], failure))
    assert [d[0] for d in drawn] == ["packet", "expected"]
    assert drawn[1][2].endswith("(did not arrive)")


def test_a_failed_call_draws_no_expected_segment() -> None:
    failure = Failure("returned -1", 4, 3, "+0 accept(3, ..., ...) = 4", "= 4", "= -1")
    assert [d[0] for d in _arrows(ladder.svg(synthetic.handshake_packets(), failure))] == \
        ["packet"] * 6


def test_without_a_target_syn_numbers_stay_absolute_and_junk_is_named() -> None:
    packets = [PacketRecord(0.0, "in", synthetic.segment(True, ACK, 5, 7)),
               PacketRecord(0.1, "out", b"\x45junk")]
    drawn = _arrows(ladder.svg(packets))
    assert drawn[0][2] == f". 5:5(0) ack {7 + synthetic.TARGET_ISN} win 65535"
    assert drawn[1][2].startswith("not a TCP segment: ")
    syn = synthetic.segment(False, SYN, 0, 0)
    assert list(ladder.target_isns([PacketRecord(0, "out", syn)]).values()) == [synthetic.TARGET_ISN]


def test_sack_blocks_of_injected_segments_are_relative_too() -> None:
    data = synthetic.segment(True, ACK, 1, 1, options=[
        ("nop",), ("nop",), ("sack", [(101 + synthetic.TARGET_ISN, 201 + synthetic.TARGET_ISN)])])
    packets = [*synthetic.handshake_packets()[:2], PacketRecord(0.5, "in", data)]
    assert _arrows(ladder.svg(packets))[2][2] == ". 1:1(0) ack 1 win 65535 <nop,nop,sack 101:201>"


def test_an_empty_ladder_says_so() -> None:
    assert "no packets" in ladder.svg([])
