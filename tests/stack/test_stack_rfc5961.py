"""Blind-attack defences of RFC 5961 (folded into RFC 9293 3.10.7.4) and the first-step
acceptability test of RFC 9293 3.10.7.4."""

from __future__ import annotations

import pytest
from conftest import Peer

from stack import State
from stack.wire import ACK, RST, SYN


@pytest.fixture
def est(peer: Peer):
    return peer.accept(), peer


def test_rst_exactly_at_rcv_nxt_resets(est) -> None:
    sock, peer = est
    assert peer.send(RST, 1001) == []
    assert sock.conn.state is State.CLOSED


def test_rst_in_window_but_not_at_rcv_nxt_gets_a_challenge_ack(est) -> None:
    # RFC 5961 3.2: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, connection stays
    sock, peer = est
    ack, = peer.send(RST, 1500)
    assert (ack.flags, ack.seq, ack.ack) == (ACK, peer.iss + 1, 1001)
    assert sock.conn.state is State.ESTABLISHED


def test_rst_outside_the_window_is_silently_dropped(est) -> None:
    sock, peer = est
    assert peer.send(RST, 1001 + 10_000_000) == []
    assert peer.send(RST, 900) == []
    assert sock.conn.state is State.ESTABLISHED


def test_syn_in_a_synchronized_state_gets_a_challenge_ack(est) -> None:
    # RFC 5961 4.2: whatever its sequence number
    sock, peer = est
    ack, = peer.send(SYN, 1001)
    assert (ack.flags, ack.seq, ack.ack) == (ACK, peer.iss + 1, 1001)
    assert sock.conn.state is State.ESTABLISHED


def test_ack_of_unsent_data_is_answered_and_dropped(est) -> None:
    # RFC 9293 3.10.7.4 fifth step: SEG.ACK > SND.NXT -> send ACK, drop
    sock, peer = est
    ack, = peer.send(ACK, 1001, peer.iss + 1000, b"data")
    assert ack.ack == 1001                       # the data was not taken
    assert sock.conn.snd_una == peer.iss + 1


def test_ack_older_than_the_max_window_is_dropped_with_an_ack(est) -> None:
    # RFC 5961 5.2: SEG.ACK must lie in [SND.UNA - MAX.SND.WND, SND.NXT]
    sock, peer = est
    ack, = peer.send(ACK, 1001, peer.iss + 1 - 70_000, b"data")
    assert ack.ack == 1001
    with pytest.raises(BlockingIOError):
        sock.recv(10)


def test_out_of_window_data_is_acked_not_accepted(est) -> None:
    sock, peer = est
    ack, = peer.send(ACK, 1001 + 100_000, peer.iss + 1, b"far")
    assert ack.ack == 1001
    with pytest.raises(BlockingIOError):
        sock.recv(10)


def test_acks_for_repeated_invalid_pure_acks_are_rate_limited(est) -> None:
    # Linux tcp_invalid_ratelimit: at most one such ACK per 500 ms
    sock, peer = est
    first = peer.send(ACK, 900_000, peer.iss + 1)
    second = peer.send(ACK, 900_000, peer.iss + 1)
    peer.advance(0.6)
    third = peer.send(ACK, 900_000, peer.iss + 1)
    assert (len(first), len(second), len(third)) == (1, 0, 1)


def test_challenge_acks_are_throttled_per_second(peer: Peer) -> None:
    # RFC 5961 7: a limit on challenge ACKs
    from conftest import make_host
    peer = Peer(make_host(challenge_ack_limit=3))
    peer.accept()
    answers = sum(len(peer.send(RST, 1500 + i)) for i in range(10))
    assert answers == 3
    peer.advance(1.0)
    assert len(peer.send(RST, 1600)) == 1
