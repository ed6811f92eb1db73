"""Closing and the states after ESTABLISHED: RFC 9293 3.6, 3.10.4, 3.10.7.4 with RFC 1122
4.2.2.13 and 4.2.2.20; RST handling per state; TIME-WAIT and its reopening."""

from __future__ import annotations

import errno
import socket
import struct

import pytest
from conftest import Peer, make_host

from stack import State
from stack.wire import ACK, FIN, PSH, RST, SYN


@pytest.fixture
def est(peer: Peer):
    """An accepted connection: (socket, peer); peer's next seq is isn+1."""
    return peer.accept(), peer


def test_active_close_fin_wait_1_fin_wait_2_time_wait_closed(est) -> None:
    sock, peer = est
    sock.close()
    fin, = peer.out()
    assert fin.flags == FIN | ACK and fin.seq == peer.iss + 1
    assert sock.conn.state is State.FIN_WAIT_1
    assert peer.send(ACK, 1001, peer.iss + 2) == []
    assert sock.conn.state is State.FIN_WAIT_2
    ack, = peer.send(FIN | ACK, 1001, peer.iss + 2)
    assert ack.ack == 1002 and sock.conn.state is State.TIME_WAIT
    peer.advance(2 * peer.host.cfg.msl - 0.1)
    assert sock.conn.state is State.TIME_WAIT
    peer.advance(0.2)
    assert sock.conn.state is State.CLOSED and peer.host.conns == {}


def test_fin_wait_1_to_closing_on_simultaneous_close(est) -> None:
    sock, peer = est
    sock.close()
    peer.out()
    ack, = peer.send(FIN | ACK, 1001, peer.iss + 1)      # their FIN, ours not yet acked
    assert ack.ack == 1002 and sock.conn.state is State.CLOSING
    peer.send(ACK, 1002, peer.iss + 2)
    assert sock.conn.state is State.TIME_WAIT


def test_fin_wait_1_straight_to_time_wait_when_fin_acks_our_fin(est) -> None:
    # RFC 1122 4.2.2.20 (e): FIN-WAIT-1 -> TIME-WAIT directly
    sock, peer = est
    sock.close()
    peer.out()
    peer.send(FIN | ACK, 1001, peer.iss + 2)
    assert sock.conn.state is State.TIME_WAIT


def test_passive_close_close_wait_last_ack_closed(est) -> None:
    # RFC 1122 4.2.2.20 (a): CLOSE in CLOSE-WAIT goes to LAST-ACK
    sock, peer = est
    ack, = peer.send(FIN | ACK, 1001, peer.iss + 1)
    assert ack.ack == 1002 and sock.conn.state is State.CLOSE_WAIT
    assert sock.recv(10) == b""                       # "connection closing"
    sock.send(b"late")                                # sending is still allowed
    data, = peer.out()
    assert data.payload == b"late"
    sock.close()
    fin, = peer.out()
    assert fin.flags & FIN and fin.seq == peer.iss + 5
    assert sock.conn.state is State.LAST_ACK
    peer.send(ACK, 1002, peer.iss + 6)
    assert sock.conn.state is State.CLOSED


def test_half_close_keeps_receiving(est) -> None:
    sock, peer = est
    sock.shutdown(socket.SHUT_WR)
    fin, = peer.out()
    assert fin.flags & FIN
    peer.send(ACK | PSH, 1001, peer.iss + 2, b"more")
    assert sock.recv(10) == b"more"
    with pytest.raises(BrokenPipeError):
        sock.send(b"x")


def test_time_wait_acks_a_retransmitted_fin_and_restarts_2msl(est) -> None:
    sock, peer = est
    sock.close()
    peer.out()
    peer.send(FIN | ACK, 1001, peer.iss + 2)
    peer.advance(50)
    ack, = peer.send(FIN | ACK, 1001, peer.iss + 2)
    assert ack.ack == 1002
    peer.advance(2 * peer.host.cfg.msl - 1)
    assert sock.conn.state is State.TIME_WAIT


def test_rst_in_time_wait_ends_it_unless_rfc1337() -> None:
    for rfc1337, final in ((0, State.CLOSED), (1, State.TIME_WAIT)):
        peer = Peer(make_host({"net.ipv4.tcp_rfc1337": rfc1337}))
        sock = peer.accept()
        sock.close()
        peer.out()
        peer.send(FIN | ACK, 1001, peer.iss + 2)
        peer.send(RST, 1002)
        assert sock.conn.state is final


def test_new_syn_above_rcv_nxt_reopens_from_time_wait(est) -> None:
    # RFC 1122 4.2.2.13: a SYN may reopen a connection in TIME-WAIT if its sequence number
    # is larger; the new ISS is larger than the old connection's sequence space.
    sock, peer = est
    sock.close()
    peer.out()
    peer.send(FIN | ACK, 1001, peer.iss + 2)
    old_end = sock.conn.snd_max
    synack, = peer.send(SYN, 50_000)
    assert synack.flags == SYN | ACK and synack.ack == 50_001
    assert (synack.seq - old_end) % 2**32 < 2**31


def test_old_syn_in_time_wait_gets_only_an_ack(est) -> None:
    sock, peer = est
    sock.close()
    peer.out()
    peer.send(FIN | ACK, 1001, peer.iss + 2)
    reply, = peer.send(SYN, 500)
    assert reply.flags == ACK and sock.conn.state is State.TIME_WAIT


def test_orphaned_fin_wait_2_times_out(est) -> None:
    sock, peer = est
    sock.close()
    peer.out()
    peer.send(ACK, 1001, peer.iss + 2)
    peer.advance(peer.host.cfg.fin_timeout + 1)
    assert sock.conn.state is State.CLOSED


def test_close_with_unread_data_sends_rst(est) -> None:
    # RFC 1122 4.2.2.13: CLOSE with data still pending -> RST ("data was lost")
    sock, peer = est
    peer.send(ACK, 1001, peer.iss + 1, b"unread")
    peer.advance(1)
    sock.close()
    rst, = peer.out()
    assert rst.flags & RST and rst.seq == peer.iss + 1


def test_data_after_close_is_answered_with_rst(est) -> None:
    # RFC 1122 4.2.2.13: new data after CLOSE -> RST
    sock, peer = est
    sock.close()
    peer.out()
    rst, = peer.send(ACK, 1001, peer.iss + 2, b"too late")
    # the reset a CLOSED port gives the segment (RFC 9293 3.10.7.1): <SEQ=SEG.ACK><CTL=RST>
    assert (rst.flags, rst.seq) == (RST, peer.iss + 2)
    assert sock.conn.state is State.CLOSED


def test_so_linger_zero_aborts_with_rst(est) -> None:
    sock, peer = est
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    rst, = peer.out()
    assert rst.flags & RST


@pytest.mark.parametrize("state_setup, error", [
    ("established", errno.ECONNRESET),
    ("fin_wait_1", errno.ECONNRESET),
    ("close_wait", errno.EPIPE),
])
def test_rst_at_rcv_nxt_aborts_with_the_states_error(est, state_setup: str, error: int) -> None:
    sock, peer = est
    seq = 1001
    if state_setup == "fin_wait_1":
        sock.shutdown(socket.SHUT_WR)
    if state_setup == "close_wait":
        peer.send(FIN | ACK, 1001, peer.iss + 1)
        seq = 1002
    peer.out()
    assert peer.send(RST, seq) == []
    assert sock.conn.state is State.CLOSED
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == error


def test_rst_in_last_ack_just_closes(est) -> None:
    sock, peer = est
    peer.send(FIN | ACK, 1001, peer.iss + 1)
    sock.close()
    peer.out()
    peer.send(RST, 1002)
    assert sock.conn.state is State.CLOSED and sock.conn.error is None


def test_connection_reset_is_reported_by_recv(est) -> None:
    sock, peer = est
    peer.send(RST, 1001)
    with pytest.raises(ConnectionResetError):
        sock.recv(10)
    assert sock.recv(10) == b""


def closed_in_syn_received():
    """A passive connection in SYN-RECEIVED whose user called CLOSE (shutdown)."""
    peer = Peer(make_host())
    peer.listen()
    synack, = peer.send(SYN, 1000)
    conn = next(iter(peer.host.conns.values()))
    peer.host.apply(conn, conn.shutdown(peer.clock.now()))
    return peer, synack, conn


def test_close_in_syn_received_sends_fin_at_once_and_enters_fin_wait_1() -> None:
    # RFC 9293 3.10.4: with no SENDs pending, "form a FIN segment and send it, and enter
    # FIN-WAIT-1"; the ACK of SYN and FIN then leads to FIN-WAIT-2
    peer, synack, conn = closed_in_syn_received()
    fin, = peer.out()
    assert (fin.flags, fin.seq, fin.ack) == (ACK | FIN, synack.seq + 1, 1001)
    assert conn.state is State.FIN_WAIT_1
    assert peer.send(ACK, 1001, synack.seq + 2) == [] and conn.state is State.FIN_WAIT_2


def test_syn_ack_is_still_retransmitted_after_close_in_syn_received() -> None:
    peer, synack, conn = closed_in_syn_received()
    peer.out()
    again, = peer.advance(conn.rtt.rto)
    assert (again.flags, again.seq) == (SYN | ACK, synack.seq)


def test_a_retransmitted_fin_alone_carries_no_psh(est) -> None:
    # RFC 1122 4.2.2.2: PSH marks data for delivery; a bare FIN has none
    sock, peer = est
    sock.close()
    fin, = peer.out()
    again, = peer.advance(sock.conn.rtt.rto)
    assert again.flags == fin.flags == ACK | FIN


def test_fin_after_data_is_acked_late_so_that_the_close_can_carry_it(est) -> None:
    # Like Linux: after data, the ACK of a FIN waits (RFC 9293 3.8.6.3 allows the delay);
    # a CLOSE within the delay sends FIN and ACK together.
    sock, peer = est
    peer.send(ACK, 1001, peer.iss + 1, b"data")
    assert peer.send(ACK | FIN, 1005, peer.iss + 1) == []
    assert sock.recv(10) == b"data"
    sock.close()
    fin, = peer.out()
    assert fin.flags == ACK | FIN and fin.ack == 1006


def test_fin_before_any_data_is_acked_at_once(est) -> None:
    sock, peer = est
    ack, = peer.send(ACK | FIN, 1001, peer.iss + 1)
    assert ack.ack == 1002 and sock.conn.state is State.CLOSE_WAIT
