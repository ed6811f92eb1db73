"""Moving data: acknowledgement policy (RFC 9293 3.8.6.3, RFC 1122 4.2.3.2, RFC 5681 4.2),
SACK (RFC 2018), Nagle and SWS avoidance (RFC 9293 3.7.4, 3.8.6.2; RFC 1122 4.2.3.3-4),
zero-window probing (RFC 9293 3.8.6.1, RFC 1122 4.2.2.17), window scaling (RFC 7323 2) and
urgent data (RFC 9293 3.8.5, MUST-62; RFC 1122 4.2.2.4)."""

from __future__ import annotations

import errno
import select
import socket

import pytest
from conftest import Peer, data_of, make_host

from stack.wire import ACK, PSH, SYN, URG

MSS = 1460


@pytest.fixture
def est(peer: Peer):
    return peer.accept(), peer


def test_a_lone_segment_is_acked_after_the_delayed_ack_time(est) -> None:
    sock, peer = est
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
    assert peer.send(ACK, 1001, peer.iss + 1, b"x" * 100) == []
    assert peer.advance(peer.host.cfg.delayed_ack - 0.001) == []
    ack, = peer.advance(0.002)
    assert ack.ack == 1101
    assert peer.host.cfg.delayed_ack < 0.5            # RFC 9293 MUST-40


def test_every_second_full_sized_segment_is_acked_at_once(est) -> None:
    sock, peer = est
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
    assert peer.send(ACK, 1001, peer.iss + 1, b"a" * MSS) == []
    ack, = peer.send(ACK, 1001 + MSS, peer.iss + 1, b"b" * MSS)
    assert ack.ack == 1001 + 2 * MSS


def test_out_of_order_data_gets_an_immediate_duplicate_ack(est) -> None:
    sock, peer = est
    ack, = peer.send(ACK, 2001, peer.iss + 1, b"later")
    assert ack.ack == 1001


def test_filling_the_gap_is_acked_at_once_and_delivers_everything(est) -> None:
    sock, peer = est
    peer.send(ACK, 1006, peer.iss + 1, b"world")
    ack, = peer.send(ACK, 1001, peer.iss + 1, b"hello")
    assert ack.ack == 1011
    assert sock.recv(100) == b"helloworld"


def test_sack_blocks_report_out_of_order_data_most_recent_first() -> None:
    # RFC 2018 4: the first block holds the segment that triggered the ACK
    peer = Peer(make_host({"net.ipv4.tcp_sack": 1}))
    peer.accept(syn_options=[("mss", 1460), ("sackOK",)])
    a, = peer.send(ACK, 1101, peer.iss + 1, b"x" * 100)
    assert a.option("sack")[1] == [(1101, 1201)]
    b, = peer.send(ACK, 1301, peer.iss + 1, b"y" * 100)
    assert b.option("sack")[1] == [(1301, 1401), (1101, 1201)]
    c, = peer.send(ACK, 1201, peer.iss + 1, b"z" * 100)
    assert c.option("sack")[1] == [(1101, 1401)]
    d, = peer.send(ACK, 1001, peer.iss + 1, b"w" * 100)
    assert d.ack == 1401 and d.option("sack") is None


def test_nagle_holds_small_segments_while_data_is_unacknowledged(est) -> None:
    # RFC 9293 3.7.4 (MUST-... Nagle): one small segment in flight at a time
    sock, peer = est
    sock.send(b"a")
    first, = peer.out()
    sock.send(b"b")
    sock.send(b"c")
    assert peer.out() == []
    second, = peer.send(ACK, 1001, peer.iss + 2)
    assert second.payload == b"bc" and second.flags & PSH


def test_tcp_nodelay_sends_small_segments_at_once(est) -> None:
    sock, peer = est
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.send(b"a")
    sock.send(b"b")
    assert [s.payload for s in peer.out()] == [b"a", b"b"]


def test_data_is_cut_into_mss_sized_segments_within_the_initial_window(est) -> None:
    # RFC 5681 3.1: IW = min(4*MSS, max(2*MSS, 4380)) = 3 segments of 1460
    sock, peer = est
    sock.send(b"d" * 10_000)
    segs = peer.out()
    assert [len(s.payload) for s in segs] == [MSS] * 3


def test_configured_initial_window_of_ten_segments() -> None:
    peer = Peer(make_host(initial_window=10))
    sock = peer.accept(syn_options=[("mss", 1000)])
    sock.send(b"d" * 20_000)
    assert [len(s.payload) for s in peer.out()] == [1000] * 10


def test_the_peers_window_limits_what_is_sent(peer: Peer) -> None:
    sock = peer.accept(window=1000)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.send(b"w" * 3000)
    assert data_of(peer.out()) == b"w" * 1000


def test_sender_sws_avoidance_waits_for_a_useful_window_then_overrides(est) -> None:
    # RFC 1122 4.2.3.4: no segment smaller than min(MSS, max window / 2) unless it empties
    # the queue; an override timeout sends anyway
    sock, peer = est
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    peer.send(ACK, 1001, peer.iss + 1, window=100)
    sock.send(b"s" * 3000)
    assert peer.out() == []
    assert data_of(peer.advance(sock.conn.rtt.rto)) == b"s" * 100


def test_zero_window_is_probed_with_backoff_while_the_peer_answers(est) -> None:
    # RFC 9293 3.8.6.1 / RFC 1122 4.2.2.17: probe; never give up while ACKs come back
    sock, peer = est
    peer.send(ACK, 1001, peer.iss + 1, window=0)
    sock.send(b"p" * 100)
    assert peer.out() == []
    times = []
    start = peer.clock.now()
    for _ in range(20):
        probe, = peer.advance(peer.host.next_deadline() - peer.clock.now())
        assert probe.seq == peer.iss + 1 and len(probe.payload) == 1
        times.append(round(peer.clock.now() - start, 3))
        peer.send(ACK, 1001, peer.iss + 1, window=0)
    assert times[:4] == [1.0, 3.0, 7.0, 15.0]       # RTO 1 s, doubling
    assert sock.conn.state.value == "ESTABLISHED"
    segs = peer.send(ACK, 1001, peer.iss + 1, window=65535)
    assert data_of(segs) == b"p" * 100


def test_receiver_window_shrinks_as_data_waits_and_reopens_after_reading(est) -> None:
    # RFC 1122 4.2.3.3: the window opens again only by min(buffer/2, MSS) or more
    sock, peer = est
    cap = sock.conn.rcv_capacity
    seq, acks = 1001, []
    while sock.conn.rcv_wnd >= MSS:
        acks += peer.send(ACK, seq, peer.iss + 1, b"f" * MSS)
        seq += MSS
    acks += peer.advance(1)
    assert acks[0].window > acks[-1].window and acks[-1].window < MSS
    sock.recv(10)                       # a little reading: no update yet (SWS)
    assert peer.out() == []
    sock.recv(cap)
    update, = peer.out()
    assert update.window >= cap // 2


def test_window_scale_is_applied_both_ways() -> None:
    # RFC 7323 2.3: the shift applies to every segment after the SYNs
    peer = Peer(make_host({"net.ipv4.tcp_window_scaling": 1}))
    srv = peer.listen()
    synack, = peer.send(SYN, 1000, options=[("mss", 1460), ("nop",), ("wscale", 2)], window=1000)
    conn = next(iter(peer.host.conns.values()))
    assert conn.snd_wnd == 1000                             # the SYN's window is not scaled
    assert synack.option("wscale")[1] == conn.neg.rcv_scale == 7
    peer.send(ACK, 1001, synack.seq + 1, window=1000)
    assert conn.snd_wnd == 4000
    sock, _ = srv.accept()
    ack, = peer.send(ACK, 1001, synack.seq + 1, b"x" * 2000 + b"y" * 920)
    assert ack.window << 7 >= conn.rcv_wnd > (ack.window - 1) << 7


def test_urgent_pointer_points_after_the_urgent_data_by_default(est) -> None:
    # RFC 9293 MUST-62: the urgent pointer names the octet following the urgent data
    sock, peer = est
    sock.send(b"abc", socket.MSG_OOB)
    seg, = peer.out()
    assert seg.flags & URG and seg.urg == 3


def test_stdurg_points_at_the_last_urgent_octet() -> None:
    # RFC 1122 4.2.2.4 (tcp_stdurg=1)
    peer = Peer(make_host({"net.ipv4.tcp_stdurg": 1}))
    sock = peer.accept()
    sock.send(b"abc", socket.MSG_OOB)
    seg, = peer.out()
    assert seg.urg == 2


def test_received_urgent_octet_is_read_out_of_band(est) -> None:
    sock, peer = est
    peer.send(ACK | URG, 1001, peer.iss + 1, b"hello!", urg=6)
    assert sock.revents(0xFFFF) & 0x2                        # POLLPRI
    assert sock.recv(1, socket.MSG_OOB) == b"!"
    assert sock.recv(10) == b"hello"


def test_a_reply_within_the_ack_delay_makes_later_acks_wait_for_replies(est) -> None:
    # Quick-ACK mode answers the first segment at once; a prompt reply marks the connection
    # interactive (Linux pingpong), and from then on an ACK waits up to the delay (RFC 9293
    # 3.8.6.3) for a reply to carry it.
    sock, peer = est
    ack, = peer.send(ACK, 1001, peer.iss + 1, b"request")
    assert ack.ack == 1008
    sock.send(b"reply")
    assert data_of(peer.out()) == b"reply"
    assert peer.send(ACK, 1008, peer.iss + 6, b"again") == []
    ack, = peer.advance(peer.host.cfg.delayed_ack)
    assert ack.ack == 1013


def test_quickack_on_sends_the_pending_ack(est) -> None:
    sock, peer = est
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
    assert peer.send(ACK, 1001, peer.iss + 1, b"x") == []
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
    ack, = peer.out()
    assert ack.ack == 1002 and sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK) == 1


def test_nagle_lets_the_tail_of_a_bulk_write_follow_full_segments(est) -> None:
    # Minshall's Nagle (RFC 1122 4.2.3.4's aim: one short segment in flight at most): the
    # short tail of a write goes at once behind full-sized segments...
    sock, peer = est
    sock.send(b"b" * (MSS + 100))
    assert [len(s.payload) for s in peer.out()] == [MSS, 100]
    # ...but the next short write waits while that short segment is unacknowledged.
    sock.send(b"c" * 10)
    assert peer.out() == []
    assert data_of(peer.send(ACK, 1001, peer.iss + 1 + MSS + 100)) == b"c" * 10


def test_psh_only_on_the_segment_that_empties_the_send_queue(est) -> None:
    # RFC 1122 4.2.2.2: PSH MUST be set on the last buffered segment
    sock, peer = est
    sock.send(b"p" * (2 * MSS + 100))
    assert [bool(s.flags & PSH) for s in peer.out()] == [False, False, True]


def test_urgent_octet_read_once_then_einval_and_the_mark_is_reached_by_reading(est) -> None:
    # RFC 9293 3.8.5 / MUST-62: the pointer names the octet after the urgent data; Linux
    # delivers the last urgent octet out of band once, and SIOCATMARK says when everything
    # before it has been read.
    sock, peer = est
    peer.send(ACK | URG, 1001, peer.iss + 1, b"abcdXefgh", urg=5)
    assert sock.ioctl(0x8905) == 0                         # "abcd" still unread
    assert sock.recv(1, socket.MSG_OOB) == b"X"
    with pytest.raises(OSError) as exc:
        sock.recv(1, socket.MSG_OOB)
    assert exc.value.errno == errno.EINVAL
    assert sock.recv(4) == b"abcd" and sock.ioctl(0x8905) == 1


def test_inline_urgent_data_shows_pollpri_until_read(est) -> None:
    sock, peer = est
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)
    peer.send(ACK | URG, 1001, peer.iss + 1, b"abX", urg=3)
    assert sock.revents(select.POLLPRI) == select.POLLPRI
    assert sock.recv(3) == b"abX" and sock.revents(select.POLLPRI) == 0
