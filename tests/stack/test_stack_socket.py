"""The socket API: Python's socket module semantics with Linux errno values, poll readiness,
options, TCP_INFO in Linux's layout, and the host's sysctls."""

from __future__ import annotations

import errno
import select
import socket
import struct

import pytest
from conftest import PEER_ADDR, Peer

import stack
from stack import tcpinfo
from stack.wire import ACK, FIN, RST, SYN


def test_filenos_are_small_unique_ints(host) -> None:
    a, b = host.socket(), host.socket()
    assert 3 <= a.fileno() < b.fileno() < 100
    a.close()
    assert a.fileno() == -1


def test_nonblocking_connect_reports_einprogress_then_ealready_then_eisconn(peer: Peer) -> None:
    sock, syn = peer.syn_sent()
    with pytest.raises(BlockingIOError) as info:
        sock.connect((PEER_ADDR, peer.port))
    assert info.value.errno == errno.EALREADY
    peer.send(SYN | ACK, 1000, syn.seq + 1, options=[("mss", 1460)])
    with pytest.raises(OSError) as info:
        sock.connect((PEER_ADDR, peer.port))
    assert info.value.errno == errno.EISCONN


def test_refused_connect_is_reported_through_so_error_once(peer: Peer) -> None:
    sock, syn = peer.syn_sent()
    peer.send(RST | ACK, 0, syn.seq + 1)
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNREFUSED
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0


def test_blocking_calls_on_a_virtual_clock_raise_instead_of_hanging(peer: Peer) -> None:
    sock = peer.host.socket()
    with pytest.raises(BlockingIOError) as info:
        sock.connect((PEER_ADDR, peer.port))
    assert info.value.errno == errno.EINPROGRESS
    srv = peer.listen()
    srv.setblocking(True)
    with pytest.raises(BlockingIOError):
        srv.accept()


def test_recv_and_send_before_connecting(host) -> None:
    sock = host.socket()
    with pytest.raises(OSError) as info:
        sock.recv(1)
    assert info.value.errno == errno.ENOTCONN
    with pytest.raises(BrokenPipeError):
        sock.send(b"x")
    with pytest.raises(OSError) as info:
        sock.getpeername()
    assert info.value.errno == errno.ENOTCONN


def test_bind_conflicts_give_eaddrinuse(host) -> None:
    a = host.socket()
    a.bind(("0.0.0.0", 9000))
    with pytest.raises(OSError) as info:
        host.socket().bind(("0.0.0.0", 9000))
    assert info.value.errno == errno.EADDRINUSE
    with pytest.raises(OSError) as info:
        host.socket().bind(("10.9.9.9", 9001))
    assert info.value.errno == errno.EADDRNOTAVAIL


def test_reuseaddr_allows_binding_over_time_wait(peer: Peer) -> None:
    sock = peer.accept()
    peer.listener.close()
    sock.close()
    peer.out()
    peer.send(FIN | ACK, 1001, peer.iss + 2)
    plain = peer.host.socket()
    with pytest.raises(OSError):
        plain.bind(("", 8080))
    reuse = peer.host.socket()
    reuse.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    reuse.bind(("", 8080))
    assert reuse.getsockname() == ("192.168.0.1", 8080)


def test_poll_reports_readiness_like_linux(peer: Peer) -> None:
    fresh = peer.host.socket()
    assert peer.host.poll([(fresh, select.POLLIN | select.POLLOUT)], 0) == [
        (fresh, select.POLLOUT | select.POLLHUP)]
    sock = peer.accept()
    IN_OUT = select.POLLIN | select.POLLOUT
    assert peer.host.poll([(sock, IN_OUT)], 0) == [(sock, select.POLLOUT)]
    peer.send(ACK, 1001, peer.iss + 1, b"hi")
    assert sock.revents(IN_OUT) == IN_OUT
    peer.send(RST, 1003)
    assert sock.revents(IN_OUT) & (select.POLLERR | select.POLLHUP) == select.POLLERR | select.POLLHUP


def test_poll_on_a_listener_waits_for_a_completed_handshake(peer: Peer) -> None:
    srv = peer.listen()
    synack, = peer.send(SYN, 1000)
    assert peer.host.poll([(srv, select.POLLIN)], 0) == []
    peer.send(ACK, 1001, synack.seq + 1)
    assert peer.host.poll([(srv, select.POLLIN)], 0) == [(srv, select.POLLIN)]


def test_recv_into_sendall_and_peek(peer: Peer) -> None:
    sock = peer.accept()
    peer.send(ACK, 1001, peer.iss + 1, b"abcdef")
    assert sock.recv(3, socket.MSG_PEEK) == b"abc"
    buf = bytearray(4)
    assert sock.recv_into(buf) == 4 and buf == b"abcd"
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(b"xyz")
    assert b"".join(s.payload for s in peer.out()) == b"xyz"


def test_buffer_options_double_like_linux(host) -> None:
    sock = host.socket()
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == 131072
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == 16384
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 10000)
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == 20000
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1)
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == 4608


def test_option_round_trips(host) -> None:
    sock = host.socket()
    cases = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1), (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 30),
             (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 5), (socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 4),
             (socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 1500), (socket.IPPROTO_IP, socket.IP_TOS, 0x10),
             (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1), (socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)]
    for level, name, value in cases:
        sock.setsockopt(level, name, value)
        assert sock.getsockopt(level, name) == value
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 5))
    assert struct.unpack("ii", sock.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8)) == (1, 5)
    with pytest.raises(OSError) as info:
        sock.setsockopt(socket.SOL_SOCKET, 0x7777, 1)
    assert info.value.errno == errno.ENOPROTOOPT


def test_tcp_info_uses_linux_layout_units_and_state_numbers(peer: Peer) -> None:
    fresh = peer.host.socket()
    assert fresh.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)[0] == 7        # CLOSE
    sock = peer.accept()
    assert peer.listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0] == 10  # LISTEN
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1000)
    assert len(raw) == tcpinfo.SIZE
    info = dict(zip((f.split()[1] for f in tcpinfo.FIELDS),
                    struct.unpack("=" + "".join(f.split()[0] for f in tcpinfo.FIELDS), raw)))
    assert info["state"] == 1 and info["rto"] == 1_000_000 and info["snd_mss"] == 1460
    assert info["snd_cwnd"] == 3 and info["advmss"] == 1460 and info["snd_wnd"] == 65535
    sock.send(b"x" * 100)
    peer.advance(1.0)
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    assert raw[2] == 1 and raw[4] == 1         # tcpi_retransmits, tcpi_backoff
    peer.advance(2.0)                           # the second expiry, same episode
    info = tcpinfo.values(sock.conn, peer.clock.now())
    assert (info["total_rto"], info["total_rto_recoveries"], info["total_retrans"]) == (2, 1, 2)
    sock.close()
    assert sock.conn is not None and sock.conn.state.value == "FIN-WAIT-1"


def test_sysctls_map_to_config_and_unknown_ones_are_listed() -> None:
    host = stack.Host("10.0.0.1", sysctl={"net.ipv4.tcp_rmem": "4096 87380 6291456",
                                          "net.ipv4.tcp_congestion_control": "cubic",
                                          "net.ipv4.tcp_ecn": 1, "net.ipv4.tcp_frto": 2,
                                          "net.ipv4.tcp_fin_timeout": 30})
    assert host.cfg.rmem == (4096, 87380, 6291456) and host.cfg.fin_timeout == 30
    assert host.cfg.congestion_control == "cubic"
    assert host.unsupported_sysctls == ["net.ipv4.tcp_ecn", "net.ipv4.tcp_frto"]
    with pytest.raises(TypeError):
        stack.Host("10.0.0.1", no_such_setting=1)


def test_default_send_buffer_grows_once_established_like_linux(peer: Peer) -> None:
    fresh = peer.host.socket()
    assert fresh.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == 16384     # tcp_wmem[1]
    sock = peer.accept()
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == 87040      # 2 * 10 * 4352
    assert sock.send(b"x" * 30000) == 30000


def test_tcp_cork_holds_partial_segments_until_uncorked(peer: Peer) -> None:
    sock = peer.accept()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
    sock.send(b"a" * 10)
    sock.send(b"b" * 10)
    assert peer.out() == []
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
    seg, = peer.out()
    assert seg.payload == b"a" * 10 + b"b" * 10
