"""Opening connections: RFC 9293 3.5 and 3.10.7.1-3.10.7.3, RFC 1122 4.2.2.x, RFC 6528."""

from __future__ import annotations

import errno
import socket

from conftest import Peer, make_host

from stack import State
from stack.wire import ACK, FIN, RST, SYN


def test_closed_port_answers_syn_with_rst_ack_acking_the_syn(peer: Peer) -> None:
    # RFC 9293 3.10.7.1: no ACK bit -> <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
    rst, = peer.send(SYN, 5000)
    assert (rst.flags, rst.seq, rst.ack) == (RST | ACK, 0, 5001)


def test_closed_port_answers_ack_with_rst_at_seg_ack(peer: Peer) -> None:
    # RFC 9293 3.10.7.1: ACK bit on -> <SEQ=SEG.ACK><CTL=RST>
    rst, = peer.send(ACK, 5000, 777)
    assert (rst.flags, rst.seq) == (RST, 777)


def test_closed_port_ignores_rst(peer: Peer) -> None:
    assert peer.send(RST, 5000) == []


def test_listen_ignores_rst_and_resets_an_ack(peer: Peer) -> None:
    # RFC 9293 3.10.7.2 first and second checks
    peer.listen()
    assert peer.send(RST | ACK, 5000, 1) == []
    rst, = peer.send(ACK, 5000, 4242)
    assert (rst.flags, rst.seq) == (RST, 4242)


def test_listen_drops_a_segment_without_syn_ack_or_rst(peer: Peer) -> None:
    peer.listen()
    assert peer.send(FIN, 5000) == []


def test_passive_open_sends_syn_ack_and_establishes_on_ack(peer: Peer) -> None:
    srv = peer.listen()
    synack, = peer.send(SYN, 1000)
    assert synack.flags == SYN | ACK and synack.ack == 1001
    assert peer.send(ACK, 1001, synack.seq + 1) == []
    conn, addr = srv.accept()
    assert addr == ("192.168.0.2", 40000)
    assert conn.conn.state is State.ESTABLISHED


def test_syn_received_bad_ack_gets_rst_at_seg_ack(peer: Peer) -> None:
    # RFC 9293 3.10.7.4 fifth step, SYN-RECEIVED: unacceptable ACK -> <SEQ=SEG.ACK><CTL=RST>
    peer.listen()
    synack, = peer.send(SYN, 1000)
    rst, = peer.send(ACK, 1001, synack.seq + 5)
    assert (rst.flags, rst.seq) == (RST, synack.seq + 5)


def test_retransmitted_syn_in_syn_received_gets_the_syn_ack_again(peer: Peer) -> None:
    peer.listen()
    first, = peer.send(SYN, 1000)
    again, = peer.send(SYN, 1000)
    assert again.flags == SYN | ACK and again.seq == first.seq and again.ack == 1001


def test_rst_in_syn_received_after_passive_open_returns_to_listen(peer: Peer) -> None:
    # RFC 9293 3.10.7.4 second step: SYN-RECEIVED from a passive OPEN goes back to LISTEN
    srv = peer.listen()
    peer.send(SYN, 1000)
    assert peer.send(RST, 1001) == []
    assert peer.host.conns == {}
    synack, = peer.send(SYN, 9000)          # the listener still answers
    assert synack.flags == SYN | ACK and srv.accept_queue == type(srv.accept_queue)()


def test_syn_ack_is_retransmitted_then_given_up(peer: Peer) -> None:
    peer.listen()
    synack, = peer.send(SYN, 1000)
    times = []
    start = peer.clock.now()
    for _ in range(peer.host.cfg.synack_retries):
        again, = peer.advance(peer.host.next_deadline() - peer.clock.now())
        assert again.seq == synack.seq and again.flags == SYN | ACK
        times.append(peer.clock.now() - start)
    assert times[:4] == [1, 3, 7, 15]          # RFC 6298 5.5 backoff from 1 s (2.1)
    peer.advance(1000)
    assert peer.host.conns == {}


def test_active_open_sends_syn_then_acks_the_syn_ack(peer: Peer) -> None:
    sock = peer.connect()
    assert sock.conn.state is State.ESTABLISHED
    assert sock.getpeername() == ("192.168.0.2", 40000)


def test_syn_is_retransmitted_for_at_least_three_minutes(peer: Peer) -> None:
    # RFC 9293 MUST-23 / RFC 1122 4.2.3.5: R2 for a SYN covers at least 3 minutes
    sock = peer.host.socket()
    sock.setblocking(False)
    sock.connect_ex(("192.168.0.2", 80))
    syn, = peer.out()
    sent = [0.0]
    while sock.conn.state is State.SYN_SENT:
        for seg in peer.advance(peer.host.next_deadline() - peer.clock.now()):
            if seg.flags & SYN:
                assert seg.seq == syn.seq
                sent.append(peer.clock.now())
    assert peer.clock.now() >= 180             # when it gave up
    assert sent[1:4] == [1.0, 3.0, 7.0]
    assert sock.connect_ex(("192.168.0.2", 80)) == errno.ETIMEDOUT


def test_syn_retries_follow_the_sysctl() -> None:
    host = make_host({"net.ipv4.tcp_syn_retries": 2})
    peer = Peer(host)
    sock = host.socket()
    sock.setblocking(False)
    sock.connect_ex(("192.168.0.2", 80))
    peer.out()
    assert len(peer.advance(100)) == 2
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ETIMEDOUT


def test_rst_acking_our_syn_refuses_the_connection(peer: Peer) -> None:
    # RFC 9293 3.10.7.3: RST with an acceptable ACK -> "connection refused"
    sock, syn = peer.syn_sent()
    assert peer.send(RST | ACK, 0, syn.seq + 1) == []
    assert sock.connect_ex(("192.168.0.2", peer.port)) == errno.ECONNREFUSED


def test_syn_sent_ignores_rst_without_ack_and_resets_bad_ack(peer: Peer) -> None:
    sock, syn = peer.syn_sent()
    assert peer.send(RST, 0) == []
    rst, = peer.send(SYN | ACK, 500, syn.seq + 7)   # acks what was never sent
    assert (rst.flags, rst.seq) == (RST, syn.seq + 7)
    assert sock.conn.state is State.SYN_SENT


def test_simultaneous_open_goes_through_syn_received(peer: Peer) -> None:
    # RFC 9293 Figure 7, with RFC 1122 4.2.2.20's "snd SYN,ACK"
    sock, syn = peer.syn_sent()
    synack, = peer.send(SYN, 1000)
    assert synack.flags == SYN | ACK and synack.seq == syn.seq and synack.ack == 1001
    assert sock.conn.state is State.SYN_RECEIVED
    ack, = peer.send(SYN | ACK, 1000, syn.seq + 1)
    assert sock.conn.state is State.ESTABLISHED
    # the SYN in it is old (below RCV.NXT): acknowledged, as 3.10.7.4's first step answers
    assert (ack.flags, ack.seq, ack.ack) == (ACK, syn.seq + 1, 1001)


def test_in_window_syn_in_passive_syn_received_resets_and_returns_to_listen(peer: Peer) -> None:
    # RFC 793 3.9 (fourth, SYN in the window: reset) and RFC 1122 4.2.2.20(e) (back to LISTEN)
    peer.listen()
    synack, = peer.send(SYN, 1000)
    rst, = peer.send(SYN | ACK, 1100, synack.seq + 1)
    assert (rst.flags, rst.seq) == (RST, synack.seq + 1) and peer.host.conns == {}


def test_isn_changes_with_time_and_four_tuple() -> None:
    # RFC 6528 3: ISN = M + F(4-tuple, secret), M a 4 microsecond clock
    from stack.isn import IsnGenerator
    gen = IsnGenerator(b"k")
    a = gen.isn(("1.1.1.1", 1), ("2.2.2.2", 2), 0.0)
    assert gen.isn(("1.1.1.1", 1), ("2.2.2.2", 2), 1.0) == (a + 250_000) % 2**32
    assert gen.isn(("1.1.1.1", 1), ("2.2.2.2", 3), 0.0) != a
    assert IsnGenerator(b"other").isn(("1.1.1.1", 1), ("2.2.2.2", 2), 0.0) != a


def test_data_flows_across_the_peers_sequence_number_wraparound() -> None:
    # RFC 9293 3.4: sequence arithmetic is modulo 2**32
    peer = Peer(make_host(), isn=2**32 - 3)
    conn = peer.accept()
    ack, = peer.send(ACK, 2**32 - 2, peer.iss + 1, b"abcdef")
    assert conn.recv(10) == b"abcdef"
    assert ack.ack == 4


def test_our_data_crosses_sequence_number_wraparound() -> None:
    # The sans-I/O core alone: an ISS just below 2**32, data acknowledged past zero.
    from stack.config import Config, SocketOptions
    from stack.connection import Connection, Throttle
    from stack.wire import TCPSegment
    conn = Connection(Config(timestamps=False, sack=False, window_scaling=False),
                      SocketOptions(), ("10.0.0.1", 1), ("10.0.0.2", 2), 2**32 - 2, 0,
                      Throttle(100), 0.0)
    syn, = conn.open(0.0).segments
    fx = conn.on_segment(TCPSegment(2, 1, 500, 2**32 - 1, SYN | ACK, 65535), 0.1)
    assert conn.state is State.ESTABLISHED and fx.segments[0].ack == 501
    seg, = conn.send(b"wrap", 0.2).segments
    assert seg.seq == 2**32 - 1 and seg.payload == b"wrap"
    conn.on_segment(TCPSegment(2, 1, 501, 3, ACK, 65535), 0.3)
    assert conn.snd_una == 3 and len(conn.sendq) == 0 and conn.flight == 0


def test_text_and_fin_on_a_listeners_syn_are_queued_until_established(peer: Peer) -> None:
    # RFC 9293 3.10.7.2: "any other control or text should be queued for processing later"
    srv = peer.listen()
    synack, = peer.send(SYN | FIN, 1000, payload=b"early")
    assert synack.ack == 1001                          # the SYN alone is acknowledged
    ack, = peer.send(ACK, 1007, synack.seq + 1)
    assert ack.ack == 1007                             # now the text and the FIN
    sock, _ = srv.accept()
    assert sock.recv(100) == b"early" and sock.conn.state is State.CLOSE_WAIT
