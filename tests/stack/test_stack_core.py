"""The sans-I/O core on its own: one event in, Effects out (segments, timers, notices), no
host, clock or link involved."""

from __future__ import annotations

import errno

import pytest

from stack.config import Config, SocketOptions
from stack.connection import Connection, Notice, State, Throttle, Timer, reset_for
from stack.wire import ACK, FIN, PSH, RST, SYN, TCPSegment

PLAIN = Config(timestamps=False, sack=False, window_scaling=False)


def client(iss: int = 5000, cfg: Config = PLAIN) -> Connection:
    return Connection(cfg, SocketOptions(), ("10.0.0.1", 1111), ("10.0.0.2", 80), iss, 0,
                      Throttle(100), 0.0)


def established(now: float = 0.0) -> Connection:
    conn = client()
    conn.open(now)
    conn.on_segment(TCPSegment(80, 1111, 9000, 5001, SYN | ACK, 8192, options=[("mss", 1000)]), now)
    return conn


def test_open_sends_a_syn_and_arms_the_retransmission_timer() -> None:
    fx = client().open(0.0)
    syn, = fx.segments
    assert (syn.flags, syn.seq) == (SYN, 5000)
    assert fx.timers == {Timer.RETRANSMIT: 1.0}


def test_syn_ack_establishes_and_is_acked() -> None:
    conn = client()
    conn.open(0.0)
    fx = conn.on_segment(TCPSegment(80, 1111, 9000, 5001, SYN | ACK, 8192), 0.05)
    ack, = fx.segments
    assert (ack.flags, ack.seq, ack.ack) == (ACK, 5001, 9001)
    assert Notice.ESTABLISHED in fx.notices and fx.timers == {}
    assert conn.rtt.srtt == pytest.approx(0.05)


def test_first_data_segments_are_acked_at_once_in_quick_ack_mode() -> None:
    # Like Linux: a new connection's first data segments are acknowledged at once, which
    # RFC 5681 4.2 allows (it bounds how late an ACK may be, not how early).
    conn = established()
    for n in range(2):
        ack, = conn.on_segment(TCPSegment(80, 1111, 9001 + n, 5001, ACK, 8192, payload=b"x"),
                               1.0).segments
        assert ack.ack == 9002 + n


def test_data_in_order_is_readable_and_acked_after_the_delay() -> None:
    conn = established()
    conn.set_quickack(False, 1.0)
    fx = conn.on_segment(TCPSegment(80, 1111, 9001, 5001, ACK | PSH, 8192, payload=b"hi"), 1.0)
    assert fx.segments == [] and Notice.READABLE in fx.notices
    assert fx.timers == {Timer.DELACK: 1.0 + PLAIN.delayed_ack}
    ack, = conn.on_timer(1.0 + PLAIN.delayed_ack).segments
    assert ack.ack == 9003
    assert conn.read(10, 1.1).result == b"hi"


def test_fin_is_acked_at_once_and_reported_as_eof() -> None:
    conn = established()
    fx = conn.on_segment(TCPSegment(80, 1111, 9001, 5001, FIN | ACK, 8192), 1.0)
    ack, = fx.segments
    assert ack.ack == 9002 and Notice.EOF in fx.notices and conn.state is State.CLOSE_WAIT


def test_send_returns_what_was_queued_and_the_segment_carrying_it() -> None:
    conn = established()
    fx = conn.send(b"abc", 1.0)
    seg, = fx.segments
    assert fx.result == 3 and (seg.seq, seg.payload, seg.flags) == (5001, b"abc", ACK | PSH)
    assert fx.timers[Timer.RETRANSMIT] == pytest.approx(1.0 + PLAIN.rto_min)


def test_abort_sends_rst_and_reports_closed() -> None:
    conn = established()
    fx = conn.abort(1.0)
    rst, = fx.segments
    assert rst.flags & RST and rst.seq == 5001 and Notice.CLOSED in fx.notices


def test_close_in_syn_sent_just_deletes_the_tcb() -> None:
    # RFC 9293 3.10.4: CLOSE in SYN-SENT -> delete the TCB, nothing sent
    conn = client()
    conn.open(0.0)
    fx = conn.close(0.5)
    assert fx.segments == [] and conn.state is State.CLOSED and Notice.CLOSED in fx.notices


def test_reset_by_peer_is_an_error_notice_with_econnreset() -> None:
    conn = established()
    fx = conn.on_segment(TCPSegment(80, 1111, 9001, 0, RST, 0), 1.0)
    assert Notice.ERROR in fx.notices and conn.error == errno.ECONNRESET


@pytest.mark.parametrize("flags, expected", [
    (SYN, (RST | ACK, 0, 101)), (ACK, (RST, 7, 0)), (FIN | ACK, (RST, 7, 0)),
])
def test_reset_for_a_closed_port(flags: int, expected: tuple) -> None:
    rst = reset_for(TCPSegment(1, 2, 100, 7, flags, 0))
    assert (rst.flags, rst.seq, rst.ack) == expected
    assert reset_for(TCPSegment(1, 2, 100, 7, RST, 0)) is None
