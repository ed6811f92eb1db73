"""Keep-alives (RFC 1122 4.2.3.6), ICMP (RFC 1122 4.2.3.9, RFC 9293 MUST-55, RFC 792) and
IP precedence (RFC 2873)."""

from __future__ import annotations

import errno
import select
import socket
import struct

import pytest

from conftest import HOST_ADDR, PEER_ADDR, Peer, make_host

from stack import icmp
from stack.timeouts import TICK
from stack.wire import ACK, IPPROTO_ICMP, IPv4, checksum, decode_ipv4, encode_ipv4


def test_keepalive_is_off_by_default(peer: Peer) -> None:
    sock = peer.accept()
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 0
    assert peer.advance(3 * 3600) == []


def test_keepalive_probes_after_two_hours_when_enabled(peer: Peer) -> None:
    sock = peer.accept()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    assert peer.advance(7199) == []
    probe, = peer.advance(2)
    # <SEQ=SND.UNA-1><ACK=RCV.NXT>, no data (Linux's form, allowed by RFC 1122 4.2.3.6)
    assert probe.seq == peer.iss and probe.ack == 1001 and probe.payload == b""


def test_keepalive_settings_and_giving_up(peer: Peer) -> None:
    sock = peer.accept()
    for name, value in ((socket.TCP_KEEPIDLE, 10), (socket.TCP_KEEPINTVL, 2), (socket.TCP_KEEPCNT, 3)):
        sock.setsockopt(socket.IPPROTO_TCP, name, value)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    first, = peer.advance(10)
    peer.send(ACK, 1001, peer.iss + 1)                   # answered: the count starts over
    out = peer.advance(30)
    probes = [s for s in out if not s.flags & 0x04]
    assert len(probes) == 3 and out[-1].flags & 0x04
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ETIMEDOUT


def icmp_error(peer: Peer, quoted: bytes, kind: int, code: int, mtu: int = 0) -> None:
    rest = struct.pack("!HH", 0, mtu)
    body = bytearray(struct.pack("!BBH", kind, code, 0) + rest + quoted[:28])
    body[2:4] = struct.pack("!H", checksum(bytes(body)))
    peer.host.receive(encode_ipv4(IPv4(PEER_ADDR, HOST_ADDR, IPPROTO_ICMP, payload=bytes(body))))


def test_echo_request_gets_an_echo_reply(peer: Peer) -> None:
    body = bytearray(struct.pack("!BBHHH", 8, 0, 0, 7, 1) + b"ping")
    body[2:4] = struct.pack("!H", checksum(bytes(body)))
    peer.host.receive(encode_ipv4(IPv4(PEER_ADDR, HOST_ADDR, IPPROTO_ICMP, payload=bytes(body))))
    reply, = peer.host.link.drain()
    msg = icmp.decode(decode_ipv4(reply))
    assert (msg.type, msg.code, msg.rest, msg.data) == (icmp.ECHO_REPLY, 0, struct.pack("!HH", 7, 1), b"ping")


def test_port_unreachable_during_syn_sent_refuses_the_connection(peer: Peer) -> None:
    # RFC 1122 4.2.3.9: port unreachable is a hard error
    sock = peer.host.socket()
    sock.setblocking(False)
    sock.connect_ex((PEER_ADDR, 80))
    syn_packet, = peer.host.link.drain()
    icmp_error(peer, syn_packet, 3, 3)
    assert sock.connect_ex((PEER_ADDR, 80)) == errno.ECONNREFUSED


def test_soft_errors_do_not_abort_but_explain_a_later_timeout(peer: Peer) -> None:
    # RFC 1122 4.2.3.9: host unreachable is soft: MUST NOT abort
    sock = peer.host.socket()
    sock.setblocking(False)
    sock.connect_ex((PEER_ADDR, 80))
    syn_packet, = peer.host.link.drain()
    icmp_error(peer, syn_packet, 3, 1)
    assert sock.conn.state.value == "SYN-SENT"
    peer.advance(1000)
    assert sock.connect_ex((PEER_ADDR, 80)) == errno.EHOSTUNREACH


def test_source_quench_is_silently_discarded(peer: Peer) -> None:
    # RFC 9293 MUST-55 (RFC 6633)
    sock = peer.accept()
    sock.send(b"x" * 100)
    data, = peer.host.link.drain()
    cwnd = sock.conn.cc.cwnd
    icmp_error(peer, data, 4, 0)
    assert sock.conn.cc.cwnd == cwnd and peer.out() == []


def test_fragmentation_needed_shrinks_segments(peer: Peer) -> None:
    sock = peer.accept()
    sock.send(b"x" * 1460)
    data, = peer.host.link.drain()
    icmp_error(peer, data, 3, 4, mtu=1000)
    assert [len(s.payload) for s in peer.out()] == [960, 500]


def test_icmp_quoting_a_sequence_number_not_in_flight_is_ignored(peer: Peer) -> None:
    # RFC 5927 4.1: a forged error names data we never sent
    sock = peer.accept()
    sock.send(b"x")
    data = bytearray(peer.host.link.drain()[0])
    data[24:28] = struct.pack("!I", (peer.iss + 50_000) % 2**32)
    icmp_error(peer, bytes(data), 3, 3)
    assert sock.conn.state.value == "ESTABLISHED"


def test_received_precedence_never_refuses_or_resets(peer: Peer) -> None:
    # RFC 2873 3: the precedence of received segments is ignored
    peer.tos = 0xE0
    sock = peer.accept()
    peer.tos = 0x20
    peer.send(ACK, 1001, peer.iss + 1, b"data")
    assert sock.recv(10) == b"data"


def test_segments_carry_the_sockets_ip_tos_and_ttl(peer: Peer) -> None:
    # RFC 2873 (own TOS kept) and RFC 1122 4.2.2.19 (the TTL MUST be configurable)
    sock = peer.accept()
    assert sock.getsockopt(socket.IPPROTO_IP, socket.IP_TTL) == 64
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0xA0)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 7)
    sock.send(b"x")
    (ip, seg), = peer.packets()
    assert (ip.tos, ip.ttl) == (0xA0, 7)


def test_soft_error_is_reported_at_once_only_with_ip_recverr(peer: Peer) -> None:
    # RFC 1122 4.2.3.9: soft errors MUST NOT abort; Linux tells the application at once only
    # when it asked (IP_RECVERR), otherwise poll shows nothing and only SO_ERROR has it.
    sock = peer.accept()
    sock.send(b"x" * 100)
    data, = peer.host.link.drain()
    icmp_error(peer, data, 3, 1)                                 # host unreachable
    assert peer.host.poll([(sock, select.POLLIN)], 0) == []
    sock.setsockopt(socket.IPPROTO_IP, 11, 1)                    # IP_RECVERR
    icmp_error(peer, data, 3, 0)                                 # net unreachable
    assert peer.host.poll([(sock, select.POLLIN)], 0) == [(sock, select.POLLERR)]
    with pytest.raises(OSError) as exc:
        sock.recv(100)
    assert exc.value.errno == errno.ENETUNREACH and sock.conn.state.value == "ESTABLISHED"


def test_fragmentation_needed_resends_nothing_that_already_fits(peer: Peer) -> None:
    # Only segments larger than the new MSS were dropped (RFC 1191); cwnd keeps its segments
    sock = peer.accept()
    sock.send(b"x" * 100)
    data, = peer.host.link.drain()
    segments = sock.conn.cc.cwnd // sock.conn.mss
    icmp_error(peer, data, 3, 4, mtu=1000)
    assert peer.out() == [] and sock.conn.mss == 960
    assert sock.conn.cc.cwnd == segments * 960


def test_a_keepalive_with_no_idle_time_lets_virtual_time_move_on() -> None:
    # tcp_keepalive_time 0 with data in flight re-armed the keep-alive for the very instant it
    # fired: a virtual clock never moved on again (a stack-target case spun for ever). A timer
    # waits at least a tick, as a kernel timer set for no time fires at the next jiffy.
    peer = Peer(make_host({"net.ipv4.tcp_keepalive_time": 0}))
    sock = peer.accept()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.send(b"x" * 100)
    peer.out()
    before = peer.clock.now()
    assert peer.host.next_deadline() >= before + TICK
    retransmitted = peer.advance(1.0)                 # returns: the clock got to its end
    assert peer.clock.now() == before + 1.0 and retransmitted[0].payload == b"x" * 100


@pytest.mark.parametrize("sysctl", [{"net.ipv4.tcp_keepalive_probes": 256},
                                    {"net.ipv4.tcp_timestamps": "1e400"},
                                    {"net.ipv4.tcp_rmem": "1 2"}])
def test_a_sysctl_value_linux_would_refuse_is_refused(sysctl) -> None:
    name = next(iter(sysctl))
    with pytest.raises(ValueError, match=f"sysctl {name} = .*: Invalid argument"):
        make_host(sysctl)
