"""TCP options: MSS (RFC 9293 3.7.1, RFC 6691), window scale and timestamps with PAWS
(RFC 7323), SACK-permitted (RFC 2018), in the order Linux writes them."""

from __future__ import annotations

import socket

import pytest
from conftest import Peer, make_host

from stack.wire import ACK, SYN

ALL_ON = {"net.ipv4.tcp_timestamps": 1, "net.ipv4.tcp_sack": 1, "net.ipv4.tcp_window_scaling": 1}
FULL_SYN = [("mss", 1460), ("sackOK",), ("TS", 100, 0), ("nop",), ("wscale", 7)]


def names(opts: list) -> list:
    return [o if o[0] in ("mss", "wscale") else (o[0],) for o in opts]


@pytest.mark.parametrize("sysctl, expected", [
    (ALL_ON, [("mss", 1460), ("sackOK",), ("TS",), ("nop",), ("wscale", 7)]),
    ({**ALL_ON, "net.ipv4.tcp_timestamps": 0},
     [("mss", 1460), ("nop",), ("nop",), ("sackOK",), ("nop",), ("wscale", 7)]),
    ({}, [("mss", 1460)]),
])
def test_syn_ack_options_come_in_linuxs_order(sysctl: dict, expected: list) -> None:
    peer = Peer(make_host(sysctl))
    peer.listen()
    synack, = peer.send(SYN, 1000, options=FULL_SYN)
    assert names(synack.options) == expected


def test_our_syn_offers_everything_enabled() -> None:
    peer = Peer(make_host(ALL_ON))
    _, syn = peer.syn_sent()
    assert names(syn.options) == [("mss", 1460), ("sackOK",), ("TS",), ("nop",), ("wscale", 7)]
    assert syn.option("TS")[2] == 0 and syn.window == 64240      # 44 * 1460, like Linux


def test_options_the_peer_did_not_offer_are_not_answered() -> None:
    # RFC 7323 2.2/3.2 and RFC 2018 2: wscale, TS, sackOK only in reply to the same
    peer = Peer(make_host(ALL_ON))
    peer.listen()
    synack, = peer.send(SYN, 1000, options=[("mss", 1460)])
    assert names(synack.options) == [("mss", 1460)]


def test_mss_is_mtu_minus_40_and_follows_tcp_maxseg() -> None:
    peer = Peer(make_host(mtu=1400))
    peer.listen()
    synack, = peer.send(SYN, 1000, options=[("mss", 1460)])
    assert synack.option("mss")[1] == 1360
    peer2 = Peer(make_host(), port=40001)
    sock = peer2.host.socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1000)
    sock.setblocking(False)
    sock.connect_ex(("192.168.0.2", 40001))
    syn, = peer2.out()
    assert syn.option("mss")[1] == 1000


def test_missing_mss_option_means_536(peer: Peer) -> None:
    # RFC 9293 3.7.1 (MUST-15)
    sock = peer.accept(syn_options=[])
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG) == 536


def timestamped() -> tuple:
    """A connection with timestamps agreed; the peer's TSval starts at 100."""
    peer = Peer(make_host({"net.ipv4.tcp_timestamps": 1}))
    peer.listen()
    synack, = peer.send(SYN, 1000, options=[("mss", 1460), ("nop",), ("nop",), ("TS", 100, 0)])
    peer.iss = synack.seq
    assert synack.option("TS")[2] == 100                 # TSecr echoes the SYN's TSval
    ts = synack.option("TS")[1]
    peer.send(ACK, 1001, peer.iss + 1, options=[("TS", 101, ts)])
    return peer, ts


def test_effective_mss_leaves_room_for_timestamps() -> None:
    # RFC 6691 / RFC 9293 3.7.1: 1460 - 12 octets of TS option = 1448 of data
    peer, _ = timestamped()
    conn = next(iter(peer.host.conns.values()))
    assert conn.mss == 1448


def test_tsecr_echoes_ts_recent_and_paws_drops_old_segments() -> None:
    # RFC 7323 4.3 (TS.Recent) and 5.3 (PAWS): an older TSval is acked and dropped
    peer, _ = timestamped()
    conn = next(iter(peer.host.conns.values()))
    ack, = peer.send(ACK, 1001, peer.iss + 1, b"a", options=[("TS", 200, 0)])
    assert ack.option("TS")[2] == 200 and ack.ack == 1002
    dup, = peer.send(ACK, 1002, peer.iss + 1, b"b", options=[("TS", 150, 0)])
    assert dup.ack == 1002 and conn.rcv_nxt == 1002


def test_segment_without_timestamp_is_dropped_once_agreed() -> None:
    # RFC 7323 3.2: a non-RST segment without TSopt SHOULD be silently dropped
    peer, _ = timestamped()
    conn = next(iter(peer.host.conns.values()))
    assert peer.send(ACK, 1001, peer.iss + 1, b"no ts") == []
    assert conn.rcv_nxt == 1001


def test_rst_is_accepted_without_timestamp() -> None:
    peer, _ = timestamped()
    conn = next(iter(peer.host.conns.values()))
    peer.send(0x04, 1001)
    assert conn.state.value == "CLOSED"



def test_an_illegal_option_length_ends_parsing_for_a_receiver_but_is_malformed_strictly() -> None:
    # RFC 9293 3.1 (MUST-7): handle an illegal option length (zero, or past the header)
    # without crashing; like Linux, a receiver keeps the options before it
    from stack.wire import Malformed, decode_options
    zero_length = bytes([2, 4, 0x03, 0xE8, 253, 0, 1, 1])          # MSS 1000, kind 253 len 0
    too_long = bytes([1, 1, 8, 40, 0, 0])                            # TS claiming 40 octets
    assert decode_options(zero_length, strict=False) == [("mss", 1000)]
    assert decode_options(too_long, strict=False) == [("nop",), ("nop",)]
    with pytest.raises(Malformed):
        decode_options(zero_length)
