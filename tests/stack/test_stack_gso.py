"""Segmentation offload (stack/gso.py): which segments of a flight merge into one GSO packet,
and that the kernel, cutting it apart, gets back exactly the segments a plain link carries."""

from __future__ import annotations

from dataclasses import replace

from conftest import Peer, make_host

from stack import gso
from stack.wire import ACK, FIN, PSH, URG, TCPSegment, parse

MSS = 1460


def data(seq: int, size: int = MSS, flags: int = ACK, **kw) -> TCPSegment:
    return TCPSegment(8080, 40000, seq, 1, flags, 500, payload=b"x" * size, **kw)


def cut(seg: TCPSegment, gso_size: int) -> list[TCPSegment]:
    """What the kernel makes of a GSO packet (tcp_gso_segment): the header copied to each
    piece with its own sequence number, PSH and FIN only on the last."""
    pieces = [seg.payload[i:i + gso_size] for i in range(0, len(seg.payload), gso_size)]
    return [replace(seg, seq=(seg.seq + i * gso_size) & 0xFFFFFFFF, payload=piece,
                    flags=seg.flags if i == len(pieces) - 1 else seg.flags & ~(PSH | FIN))
            for i, piece in enumerate(pieces)]


def test_a_flight_merges_into_one_packet_that_cuts_back_into_it() -> None:
    flight = [data(1000), data(1000 + MSS), data(1000 + 2 * MSS, 700, ACK | PSH | FIN)]
    (merged, size), = gso.coalesce(flight)
    assert size == MSS and merged.flags == ACK | PSH | FIN
    assert cut(merged, size) == flight


def test_what_would_not_come_back_unchanged_is_not_merged() -> None:
    ts = [("nop",), ("nop",), ("TS", 5, 6)]
    cases = {
        "gap": [data(1000), data(1000 + 2 * MSS)],
        "short segment first": [data(1000, 500), data(1500)],
        "PSH before the last": [data(1000, flags=ACK | PSH), data(1000 + MSS)],
        "other options": [data(1000), data(1000 + MSS, options=ts)],
        "other window": [data(1000), replace(data(1000 + MSS), window=600)],
        "urgent": [data(1000, flags=ACK | URG), data(1000 + MSS)],
        "a pure ACK": [data(1000), data(1000 + MSS, 0)],
    }
    for name, flight in cases.items():
        assert gso.coalesce(flight) == [(seg, 0) for seg in flight], name


def test_merged_packets_never_exceed_an_ip_datagram() -> None:
    flight = [data(1000 + i * MSS) for i in range(100)]
    out = gso.coalesce(flight)
    assert all(len(seg.payload) <= gso.MAX_PAYLOAD for seg, _ in out)
    assert [s for seg, size in out for s in cut(seg, size or MSS)] == flight


class GsoLink:
    """A link that takes GSO packets, recording what it was given."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, int]] = []

    def send(self, packet: bytes) -> None:
        self.sent.append((packet, 0))

    def send_gso(self, packet: bytes, gso_size: int) -> None:
        self.sent.append((packet, gso_size))

    def recv(self, timeout: float | None = 0.0) -> None:
        return None


def test_a_host_hands_a_gso_link_one_packet_per_flight() -> None:
    segments = {}
    for offload in (False, True):
        peer = Peer(make_host(initial_window=10))
        sock = peer.accept()
        if offload:
            peer.host.link = GsoLink()
        sock.send(b"y" * (8 * MSS + 100))
        if offload:
            (packet, size), = peer.host.link.sent
            assert size == MSS
            segments[offload] = cut(parse(packet)[1], size)
        else:
            segments[offload] = peer.out()
    strip = lambda segs: [replace(s, checksum=None, data_offset=None) for s in segs]  # noqa: E731
    assert len(segments[False]) == 9 and strip(segments[True]) == strip(segments[False])
