"""Retransmission (RFC 6298, RFC 1122 4.2.3.5, RFC 5482) and congestion control (RFC 5681,
RFC 6582 NewReno)."""

from __future__ import annotations

import errno
import socket

import pytest
from conftest import Peer, make_host

from stack.wire import ACK, RST

MSS = 1460


def connected(**settings) -> tuple:
    peer = Peer(make_host(settings.pop("sysctl", None), **settings))
    sock = peer.accept()
    return sock, peer


def test_retransmission_after_the_rto_then_doubling() -> None:
    # RFC 6298 2.4 (RTO rounded up to 1 s, after a handshake RTT of 0) and 5.5
    sock, peer = connected()
    sock.send(b"x" * 100)
    first, = peer.out()
    times = []
    for _ in range(4):
        again, = peer.advance(peer.host.next_deadline() - peer.clock.now())
        assert again.seq == first.seq and again.payload == first.payload
        times.append(round(peer.clock.now(), 3))
    assert times == [1.0, 3.0, 7.0, 15.0]


def test_rtt_samples_follow_rfc6298_formulas() -> None:
    # RFC 6298 2.2: SRTT = R, RTTVAR = R/2; 2.3: RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R|,
    # SRTT = 7/8 SRTT + 1/8 R; RTO = SRTT + max(G, 4*RTTVAR), at least rto_min (2.4)
    from stack.config import Config
    from stack.rtt import RttEstimator
    rtt = RttEstimator(Config(rto_min=0.2))
    rtt.sample(0.3)
    assert (rtt.srtt, rtt.rttvar, rtt.rto) == pytest.approx((0.3, 0.15, 0.9))
    rtt.sample(0.5)
    assert rtt.rttvar == pytest.approx(0.75 * 0.15 + 0.25 * 0.2)
    assert rtt.srtt == pytest.approx(0.875 * 0.3 + 0.125 * 0.5)
    rtt.expired()
    assert rtt.rto == pytest.approx(2 * (rtt.srtt + 4 * rtt.rttvar))


def test_the_handshake_gives_the_first_rtt_sample() -> None:
    peer = Peer(make_host(rto_min=0.2))
    peer.listen()
    synack, = peer.send(0x02, 1000, options=[("mss", 1460)])
    peer.clock.advance(0.25)
    peer.send(ACK, 1001, synack.seq + 1)
    conn = next(iter(peer.host.conns.values()))
    assert conn.rtt.srtt == pytest.approx(0.25) and conn.rtt.rto == pytest.approx(0.75)


@pytest.mark.parametrize("settings, floor", [({}, 1.0), ({"rto_min": 0.2}, 0.2)])
def test_rto_is_never_below_its_floor(settings: dict, floor: float) -> None:
    # RFC 6298 2.4: rounded up to 1 s by default; Linux's TCP_RTO_MIN in its profile
    sock, peer = connected(**settings)
    sock.send(b"x")
    peer.out()
    peer.clock.advance(0.01)
    peer.send(ACK, 1001, peer.iss + 2)
    assert sock.conn.rtt.rto == floor


def test_karn_no_sample_from_a_retransmitted_segment() -> None:
    # RFC 6298 3 (Karn's algorithm)
    sock, peer = connected()
    sock.send(b"x")
    peer.out()
    peer.advance(1.0)
    before = sock.conn.rtt.srtt
    peer.clock.advance(0.2)
    peer.send(ACK, 1001, peer.iss + 2)
    assert sock.conn.rtt.srtt == before


def test_r2_gives_up_with_etimedout_and_sends_nothing_more() -> None:
    # RFC 1122 4.2.3.5 (R2) and RFC 9293 3.10.8: the TCB is deleted, no segment is sent
    sock, peer = connected(sysctl={"net.ipv4.tcp_retries2": 3})
    sock.send(b"x")
    peer.out()
    out = peer.advance(100)
    assert [(len(s.payload), s.flags & RST) for s in out] == [(1, 0)] * 3
    assert sock.conn.state.value == "CLOSED"
    with pytest.raises(TimeoutError):
        sock.recv(1)


def test_r1_passes_negative_advice_to_ip() -> None:
    sock, peer = connected(sysctl={"net.ipv4.tcp_retries1": 2})
    sock.send(b"x")
    peer.out()
    peer.advance(1.5)                       # first expiry at 1 s
    assert peer.host.advice == []
    peer.advance(2.0)                       # second at 3 s: R1 = 2 reached
    assert peer.host.advice == [(pytest.approx(3.0), "192.168.0.2")]


def test_user_timeout_aborts_by_time_not_count() -> None:
    # RFC 5482 / RFC 9293 3.8.3 user timeout
    sock, peer = connected()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 5000)
    sock.send(b"x")
    peer.out()
    peer.advance(4.99)                      # retransmissions at 0.2, 0.6, 1.4 and 3.0 s
    assert sock.conn.state.value == "ESTABLISHED"
    peer.advance(0.01)                      # 5 s after the data was sent: abort, not at 6.2
    assert sock.conn.state.value == "CLOSED" and sock.conn.error == errno.ETIMEDOUT


def send_window(sock, peer, count: int) -> list:
    sock.send(b"d" * (count * MSS))
    return peer.out()


def test_three_duplicate_acks_trigger_fast_retransmit() -> None:
    # RFC 5681 3.2: ssthresh = max(FlightSize/2, 2*SMSS); retransmit; cwnd = ssthresh + 3*SMSS
    sock, peer = connected(initial_window=10)
    send_window(sock, peer, 10)
    una = peer.iss + 1
    for _ in range(2):
        assert peer.send(ACK, 1001, una) == []
    retx, = peer.send(ACK, 1001, una)
    assert retx.seq == una and len(retx.payload) == MSS
    cc = sock.conn.cc
    assert cc.ssthresh == 5 * MSS and cc.cwnd == 8 * MSS and sock.conn.recovery.active


def test_limited_transmit_on_the_first_two_duplicate_acks() -> None:
    # RFC 5681 3.2 (RFC 3042): the first and second duplicate ACKs each release one segment of
    # new data, cwnd unchanged; on the third, ssthresh leaves those two out of FlightSize.
    sock, peer = connected(initial_window=10)
    sock.send(b"d" * (14 * MSS))
    first = peer.out()
    assert len(first) == 10
    una, cwnd = peer.iss + 1, sock.conn.cc.cwnd
    released = [peer.send(ACK, 1001, una) for _ in range(2)]
    assert [[(s.seq - una, len(s.payload)) for s in segs] for segs in released] == \
        [[(10 * MSS, MSS)], [(11 * MSS, MSS)]]
    assert sock.conn.cc.cwnd == cwnd
    retx, = peer.send(ACK, 1001, una)
    assert retx.seq == una and sock.conn.cc.ssthresh == 5 * MSS


def test_newreno_partial_ack_retransmits_the_next_hole() -> None:
    # RFC 6582 3.2 step 5
    sock, peer = connected(initial_window=10)
    send_window(sock, peer, 10)
    una = peer.iss + 1
    for _ in range(3):
        peer.send(ACK, 1001, una)
    retx, = [s for s in peer.send(ACK, 1001, una + 2 * MSS) if s.seq == una + 2 * MSS]
    assert len(retx.payload) == MSS and sock.conn.recovery.active
    peer.send(ACK, 1001, una + 10 * MSS)
    assert not sock.conn.recovery.active and sock.conn.cc.cwnd <= sock.conn.cc.ssthresh + MSS


def test_sack_lets_recovery_resend_each_hole_once() -> None:
    # RFC 2018: with SACK the sender resends what the receiver lacks, and only that
    peer = Peer(make_host({"net.ipv4.tcp_sack": 1}, initial_window=10))
    sock = peer.accept(syn_options=[("mss", 1460), ("sackOK",)])
    send_window(sock, peer, 10)
    una = peer.iss + 1
    sacks = [(una + 2 * MSS, una + 4 * MSS), (una + 5 * MSS, una + 10 * MSS)]
    resent = []
    for _ in range(6):
        resent += [s.seq for s in peer.send(ACK, 1001, una, options=[("sack", sacks)])]
    assert sorted(resent) == [una, una + MSS, una + 4 * MSS]


def test_timeout_collapses_cwnd_to_one_segment() -> None:
    # RFC 5681 3.1 (4): after RTO, cwnd = LW = 1 SMSS
    sock, peer = connected(initial_window=10)
    send_window(sock, peer, 10)
    out = peer.advance(sock.conn.rtt.rto)
    assert len(out) == 1 and sock.conn.cc.cwnd == MSS
    assert sock.conn.cc.ssthresh == 5 * MSS


def test_slow_start_grows_cwnd_by_one_mss_per_ack() -> None:
    sock, peer = connected()
    send_window(sock, peer, 6)
    cwnd = sock.conn.cc.cwnd
    peer.send(ACK, 1001, peer.iss + 1 + MSS)
    assert sock.conn.cc.cwnd == cwnd + MSS


def test_restart_after_idle_returns_to_the_initial_window() -> None:
    # RFC 5681 4.1
    sock, peer = connected(initial_window=4)
    for _ in range(3):
        segs = send_window(sock, peer, 4)
        peer.send(ACK, 1001, segs[-1].seq + len(segs[-1].payload))
    assert sock.conn.cc.cwnd > 4 * MSS
    peer.advance(5)
    assert len(send_window(sock, peer, 20)) == 4


def test_syn_timeout_leaves_rto_at_three_seconds_and_a_one_segment_window() -> None:
    # RFC 6298 5.7 (RTO 3 s) and RFC 5681 3.1 (after a lost SYN-ACK, IW is one segment)
    peer = Peer(make_host())
    peer.listen()
    synack, = peer.send(0x02, 1000, options=[("mss", 1460)])
    peer.advance(1.0)
    peer.send(ACK, 1001, synack.seq + 1)
    conn = next(iter(peer.host.conns.values()))
    assert conn.rtt.rto == 3.0 and conn.cc.cwnd == conn.mss



def test_data_stranded_by_a_window_shrunk_to_zero_does_not_time_out() -> None:
    # RFC 9293 3.8.6 (SHLD-17): the peer shrinks its window to zero while data is in flight
    # and answers every retransmission; with R2 = 1 the connection must survive anyway
    sock, peer = connected(sysctl={"net.ipv4.tcp_retries2": 1})
    sock.send(b"s" * 100)
    peer.out()
    peer.send(ACK, 1001, peer.iss + 1, window=0)
    for _ in range(4):
        again, = peer.advance(peer.host.next_deadline() - peer.clock.now())
        assert again.payload == b"s" * 100
        peer.send(ACK, 1001, peer.iss + 1, window=0)
    assert sock.conn.state.value == "ESTABLISHED"
