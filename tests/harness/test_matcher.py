"""Field-by-field matching of an outbound segment with its expected line."""

from __future__ import annotations

import socket

from harness.grammar import parse_script
from harness.matcher import compare
from harness.peer import Peer
from harness.syscalls import pattern
from harness.ip import IPv4, decode, encode, final_destination
from harness.tcp import ACK, FIN, PSH, SYN, TCPSegment

ISN = 1_000_000


def outbound(payload: bytes, seq: int = 1, flags: int = PSH | ACK) -> tuple[IPv4, TCPSegment]:
    seg = TCPSegment(8080, 40000, ISN + seq, 1, flags, 1000, payload=payload)
    return decode(encode(IPv4("192.168.0.1", "192.0.2.1"), seg))


def expected(line: str):
    return parse_script(line, "t.pkt")[0]


PEER = Peer(isns={(8080, 40000): ISN})


def test_the_bytes_written_at_that_place_in_the_stream_match():
    sent = pattern(0, 300)
    assert compare(expected("0 > P. 101:201(100) ack 1"), *outbound(sent[100:200], 101), PEER, sent) == []


def test_bytes_from_another_place_in_the_stream_do_not():
    sent = pattern(0, 300)
    diffs = compare(expected("0 > P. 101:201(100) ack 1"), *outbound(sent[0:100], 101), PEER, sent)
    assert [d.field for d in diffs] == ["payload"]
    assert "stream offset 100" in diffs[0].expected


def test_an_unknown_stream_checks_length_only():
    assert compare(expected("0 > P. 1:4(3) ack 1"), *outbound(b"xyz"), PEER, None) == []


def test_a_wrong_checksum_is_always_a_difference():
    ip, seg = outbound(b"abc")
    seg.checksum_ok = False
    assert [d.field for d in compare(expected("0 > P. 1:4(3) ack 1"), ip, seg, PEER)] == ["tcp checksum"]


def test_wildcards_and_unchecked_fields():
    ip, seg = outbound(b"", flags=ACK)
    assert compare(expected("0 > . 1:1(0) ack * win *"), ip, seg, PEER) == []
    diffs = compare(expected("0 > . 1:1(0) ack 2 win 5"), ip, seg, PEER)
    assert {d.field for d in diffs} == {"ack", "win"}


def test_psh_is_compared_exactly_unless_the_sender_may_set_it_freely():
    # RFC 1122 4.2.2.2: PSH is required only on the segment that empties the send queue.
    ip, seg = outbound(b"x" * 100, flags=ACK)
    line = expected("0 > P. 1:101(100) ack 1")
    assert [d.field for d in compare(line, ip, seg, PEER)] == ["flags"]
    assert compare(line, ip, seg, PEER, free_psh=True) == []
    ip, seg = outbound(b"x" * 100)
    assert compare(expected("0 > . 1:101(100) ack 1"), ip, seg, PEER, free_psh=True) == []


def test_a_free_psh_frees_no_other_flag():
    ip, seg = outbound(b"x" * 100, flags=PSH | ACK | FIN)
    diffs = compare(expected("0 > P. 1:101(100) ack 1"), ip, seg, PEER, free_psh=True)
    assert [(d.field, d.expected, d.actual) for d in diffs] == [("flags", "P.", "FP.")]


def test_header_bytes_after_an_eol_option_must_be_zero():
    # RFC 9293 3.1 (MUST-69): the content of the header beyond EOL is padding of zeros.
    line = expected("0 > P. 1:4(3) ack 1 <mss 1460,eol>")
    for padding, fields in ((b"\0\0\0", []), (b"\0\x07\0", ["option padding"])):
        seg = TCPSegment(8080, 40000, ISN + 1, 1, PSH | ACK, 1000,
                         options=[("mss", 1460), ("eol",), ("bytes", padding)], payload=b"abc")
        assert [d.field for d in compare(line, *decode(encode(IPv4("192.168.0.1", "192.0.2.1"), seg)),
                                         PEER)] == fields


def test_a_source_routed_segment_is_checksummed_for_its_final_destination():
    # RFC 9293 3.1: the pseudo-header names the final destination. Under way, that is the last
    # address of the LSRR route data; once the route is completed (pointer past its end), the
    # header's destination.
    seg = TCPSegment(40000, 8080, 1, 0, SYN, 1000)
    under_way = IPv4("192.0.2.1", "192.0.2.2", ip_options=bytes.fromhex("830704c0a8000100"))
    completed = IPv4("192.0.2.1", "192.168.0.1", ip_options=bytes.fromhex("830708c000020200"))
    direct = decode(encode(IPv4("192.0.2.1", "192.168.0.1"), seg))[1].checksum
    for ip in (under_way, completed):
        assert final_destination(ip.ip_options, socket.inet_aton(ip.dst)) == socket.inet_aton("192.168.0.1")
        routed = decode(encode(ip, seg))[1]
        assert routed.checksum_ok and routed.checksum == direct


def test_a_zero_window_probe_of_either_form_matches_one_set_line():
    """RFC 9293 3.8.6.1 (one new octet) and the zero-length probe at SND.UNA-1 both match
    `1000|1001:1000|1002(0..1)`; a probe that is neither does not."""
    line = expected("0 > . 1000|1001:1000|1002(0..1) ack 1")
    assert compare(line, *outbound(b"", 1000, ACK), PEER, None) == []
    assert compare(line, *outbound(b"x", 1001, ACK), PEER, None) == []
    assert [d.field for d in compare(line, *outbound(b"", 1001, ACK), PEER, None)] == ["end"]
    assert [d.field for d in compare(line, *outbound(b"xy", 1000, ACK), PEER, None)] == ["length"]


def _syn_ack(options: list) -> tuple[IPv4, TCPSegment]:
    seg = TCPSegment(8080, 40000, ISN, 1, SYN | ACK, 1000, options=options)
    return decode(encode(IPv4("192.168.0.1", "192.0.2.1"), seg))


SET_LINE = "0 > S. 0:0(0) ack 1 <{mss *,TS val 100 ecr 500}>"


def test_an_option_set_matches_any_rfc_7323_layout():
    """`<{...}>`: RFC 9293 3.1 lets an option begin on any octet; the NOPs of RFC 7323
    Appendix A are a suggestion. Linux's layout, TS first, and no padding all match."""
    line = expected(SET_LINE)
    for layout in ([("mss", 1460), ("nop",), ("nop",), ("TS", 7, 500)],
                   [("TS", 7, 500), ("nop",), ("nop",), ("mss", 536)],
                   [("mss", 1460), ("TS", 7, 500), ("eol",)]):
        assert compare(line, *_syn_ack(layout), PEER, None) == [], layout


def test_an_option_set_fails_a_missing_wrong_or_extra_option():
    line = expected(SET_LINE)
    cases = {
        "missing TS val 100 ecr 500": [("mss", 1460)],
        "missing TS val 100 ecr 500, not allowed TS val 7 ecr 499": [("mss", 1460), ("TS", 7, 499)],
        "not allowed wscale 7": [("mss", 1460), ("TS", 7, 500), ("nop",), ("wscale", 7)],
        "not allowed mss 1460": [("mss", 1460), ("mss", 1460), ("TS", 7, 500)],
    }
    for why, layout in cases.items():
        diffs = compare(line, *_syn_ack(layout), PEER, None)
        assert [d.field for d in diffs] == ["options (any layout)"], layout
        assert diffs[0].actual.endswith(why), diffs[0].actual


def test_the_ts_clock_is_learned_from_a_set_wherever_ts_sits():
    """The peer's later ecr (script units) is the target's TSval on the wire."""
    for layout in ([("mss", 1460), ("nop",), ("nop",), ("TS", 90_000, 500)],
                   [("TS", 90_000, 500), ("mss", 1460)]):
        peer = Peer(isns={(8080, 40000): ISN})
        _, seg = _syn_ack(layout)
        peer.learn(expected(SET_LINE), seg)
        ack = expected("0 < . 1:1(0) ack 1 win 65535 <nop,nop,TS val 510 ecr 100>")
        assert peer._wire_options(ack)[-1] == ("TS", 510, 90_000), layout
