"""SACK-based loss recovery (RFC 6675), in virtual time: the scoreboard's routines, the
duplicate-ACK definition, limited transmit, entering and leaving recovery, NextSeg()'s rules
and the RTO. Segments are MSS = 1460 octets; `seg(n)` is the sequence number of the n-th
segment of the first write."""

from __future__ import annotations

import pytest
from conftest import Peer, make_host

from stack.congestion import Reno
from stack.sack import Hole, SackRecovery, Scoreboard
from stack.wire import ACK

MSS = 1460


def sack_peer(initial_window: int = 10) -> tuple:
    peer = Peer(make_host({"net.ipv4.tcp_sack": 1}, initial_window=initial_window))
    sock = peer.accept(syn_options=[("mss", MSS), ("sackOK",)])
    return sock, peer


def seg(peer: Peer, n: int) -> int:
    return peer.iss + 1 + n * MSS


def ack(peer: Peer, upto: int, blocks: list[tuple[int, int]] = (), window: int = 65535) -> list:
    """An ACK of segments [0, upto) SACKing segments [a, b) for each (a, b) in `blocks`."""
    options = [("sack", [(seg(peer, a), seg(peer, b)) for a, b in blocks])] if blocks else []
    return peer.send(ACK, 1001, seg(peer, upto), options=options, window=window)


def starts(peer: Peer, segs: list) -> list[int]:
    """The segment numbers of what was sent."""
    return [(s.seq - peer.iss - 1) // MSS for s in segs]


# ---------------------------------------------------------------- scoreboard (RFC 6675 4)

def test_update_reports_new_sack_information_only() -> None:
    board = Scoreboard()
    assert board.update([(3000, 4000)], 1000, 10000)
    assert not board.update([(3000, 4000)], 1000, 10000)            # nothing new
    assert board.update([(3500, 5000)], 1000, 10000)                # partly new
    assert board.ranges == [(3000, 5000)]
    assert not board.update([(500, 900), (9000, 11000)], 1000, 10000)   # below SND.UNA, unsent
    board.update([], 4000, 10000)                                   # SND.UNA moved into it
    assert board.ranges == [(4000, 5000)]


def test_is_lost_needs_three_ranges_or_more_than_two_segments_above() -> None:
    board = Scoreboard()
    board.update([(2000, 2000 + 2 * MSS)], 1000, 20000)
    assert not board.is_lost(1000, MSS)                 # exactly (DupThresh - 1) * SMSS
    board.update([(8000, 8001)], 1000, 20000)
    assert board.is_lost(1000, MSS)                     # more than that
    small = Scoreboard()
    small.update([(2000, 2100), (3000, 3100)], 1000, 20000)
    assert not small.is_lost(1000, MSS)
    small.update([(4000, 4100)], 1000, 20000)
    assert small.is_lost(1000, MSS)                     # DupThresh discontiguous ranges
    assert not small.is_lost(3500, MSS)


def test_holes_carry_is_lost_and_pipe_counts_retransmissions_twice() -> None:
    board = Scoreboard()
    board.update([(2000, 3000), (4000, 5000), (6000, 7000)], 1000, 9000)
    assert board.holes(1000, 9000, 500) == [Hole(1000, 2000, True), Hole(3000, 4000, True),
                                            Hole(5000, 6000, False), Hole(7000, 9000, False)]
    # SetPipe: lost holes count only what was resent, the others once, and a resent octet
    # not deemed lost twice (RFC 6675 4, the note after SetPipe's steps).
    assert board.pipe(1000, 9000, 1000, 500) == 1000 + 2000
    assert board.pipe(1000, 9000, 1500, 500) == 500 + 1000 + 2000
    assert board.pipe(1000, 9000, 5500, 500) == 1000 + 1000 + 500 + 1000 + 2000


def test_next_seg_rules_in_order() -> None:
    rec = SackRecovery(Reno(500, 10), 0)
    rec.board.update([(2000, 2500), (3000, 3500), (4000, 4500), (5000, 5500)], 1000, 6000)
    rec.enter(1000, 6000, 5000)
    rec.first_resent(1500)                                             # (4.3) sent 1000-1500
    assert rec.next_seg(1000, 6000, new_data=True) == (1500, 2000)     # rule (1): lost
    assert rec.next_seg(1000, 6000, new_data=True) == (2500, 3000)     # rule (1)
    assert rec.next_seg(1000, 6000, new_data=True) is None             # rule (2): new data
    assert rec.next_seg(1000, 6000, new_data=False) == (3500, 4000)    # rule (3): not lost
    assert rec.next_seg(1000, 6000, new_data=False) == (4500, 5000)    # rule (3)
    assert rec.next_seg(1000, 6000, new_data=False) is None            # rescue not yet due
    # rule (4): once HighACK passes RescueRxt, one rescue of the highest un-SACKed octets,
    # without moving HighRxt; then never again in this recovery
    assert rec.next_seg(1600, 6000, new_data=False) == (5500, 6000)
    assert rec.high_rxt == 5000
    assert rec.next_seg(1600, 6000, new_data=False) is None


# ---------------------------------------------------------------- on the wire (RFC 6675 5)

def test_an_ack_with_new_sack_blocks_is_a_duplicate_whatever_its_window() -> None:
    # RFC 6675 2: unlike RFC 5681 2, a changed window does not stop an ACK that SACKs new
    # data from counting (a Linux receiver's window moves while it reassembles)
    sock, peer = sack_peer()
    sock.send(b"d" * 10 * MSS)
    peer.out()
    ack(peer, 0, [(1, 2)], window=60000)
    ack(peer, 0, [(1, 3)], window=61000)
    assert sock.conn.recovery.dupacks == 2 and not sock.conn.recovery.active
    assert ack(peer, 0, [(1, 3)], window=62000) == []      # nothing new SACKed: no count
    assert sock.conn.recovery.dupacks == 2
    out = ack(peer, 0, [(1, 3), (4, 5)], window=63000)
    assert starts(peer, out)[0] == 0 and sock.conn.recovery.active


def test_a_cumulative_ack_carrying_new_sack_information_counts_as_a_duplicate() -> None:
    # RFC 6675 5: DupAcks is reset by a cumulative ACK, then raised by it if it SACKs new data
    sock, peer = sack_peer()
    sock.send(b"d" * 10 * MSS)
    peer.out()
    ack(peer, 0, [(2, 3)])
    ack(peer, 1, [(2, 4)])
    assert sock.conn.recovery.dupacks == 1


def test_third_duplicate_enters_recovery_halving_flight_size() -> None:
    # RFC 6675 5 step (4): RecoveryPoint = HighData, ssthresh = cwnd = FlightSize / 2,
    # retransmit from HighACK + 1, then (C) while cwnd - pipe >= SMSS
    sock, peer = sack_peer()
    sock.send(b"d" * 10 * MSS)
    peer.out()
    ack(peer, 0, [(1, 2)])
    ack(peer, 0, [(3, 4)])                       # segment 2 is missing too
    out = ack(peer, 0, [(5, 6), (3, 4), (1, 2)])
    conn = sock.conn
    assert conn.recovery.active and conn.recovery.recovery_point == seg(peer, 10)
    assert conn.cc.ssthresh == conn.cc.cwnd == 5 * MSS
    # pipe after the first retransmission: segment 0 resent (1), 2 and 4 not yet lost (1 + 1:
    # too little SACKed above them), 6-9 in flight (4): 7 segments > cwnd, nothing more goes
    assert starts(peer, out) == [0]
    out = ack(peer, 0, [(5, 8), (3, 4), (1, 2)])
    # now 2 and 4 are lost: pipe = 1 (segment 0 resent) + 2 (8-9), so two lost holes go
    assert starts(peer, out) == [2, 4]


def test_three_segments_sacked_in_one_ack_are_a_loss_at_once() -> None:
    # RFC 6675 5 step (2): IsLost(HighACK + 1) with a single duplicate ACK
    sock, peer = sack_peer()
    sock.send(b"d" * 10 * MSS)
    peer.out()
    out = ack(peer, 0, [(1, 4)])
    assert sock.conn.recovery.dupacks == 1 and sock.conn.recovery.active
    assert starts(peer, out)[0] == 0


def test_limited_transmit_sends_new_data_while_pipe_allows_and_is_not_halved() -> None:
    # RFC 6675 5 step (3): new data as SACKs shrink pipe; (4.2) FlightSize leaves it out
    sock, peer = sack_peer(initial_window=4)
    sock.send(b"d" * 20 * MSS)
    assert len(peer.out()) == 4
    assert starts(peer, ack(peer, 0, [(1, 2)])) == [4]
    assert starts(peer, ack(peer, 0, [(1, 3)])) == [5]
    assert sock.conn.recovery.limited == 2 * MSS
    ack(peer, 0, [(1, 4)])
    assert sock.conn.recovery.active and sock.conn.cc.ssthresh == 2 * MSS   # 4 sent before


def test_recovery_ends_at_recovery_point_and_keeps_the_halved_window() -> None:
    sock, peer = sack_peer()
    sock.send(b"d" * 10 * MSS)
    peer.out()
    ack(peer, 0, [(1, 4)])
    ack(peer, 5, [(6, 8)])                                  # partial: still recovering
    assert sock.conn.recovery.active
    ack(peer, 10)
    assert not sock.conn.recovery.active and sock.conn.cc.cwnd == 5 * MSS


def test_rescue_retransmission_of_the_tail_once_per_recovery() -> None:
    # RFC 6675 4 NextSeg rule (4): nothing lost remains, no new data, the tail unSACKed
    sock, peer = sack_peer()
    sock.send(b"d" * 10 * MSS)
    peer.out()
    assert starts(peer, ack(peer, 0, [(1, 9)])) == [0]     # recovery; segment 9 unSACKed
    # HighACK passes RescueRxt (the end of segment 0) and pipe (segment 9) leaves room
    assert starts(peer, ack(peer, 9)) == [9]
    assert sock.conn.recovery.high_rxt == seg(peer, 1)      # the rescue leaves HighRxt
    assert ack(peer, 9) == []                                # no second rescue


def test_after_an_rto_no_recovery_until_recovery_point_and_sacked_data_is_skipped() -> None:
    # RFC 6675 5.1: RecoveryPoint = HighData; no new recovery before HighACK reaches it; SACK
    # information arriving after the RTO keeps the go-back retransmission off SACKed data
    sock, peer = sack_peer()
    sock.send(b"d" * 10 * MSS)
    peer.out()
    out = peer.advance(sock.conn.rtt.rto)
    assert starts(peer, out) == [0] and sock.conn.recovery.recovery_point == seg(peer, 10)
    out = ack(peer, 1, [(2, 5)])                 # 1 missing, 2-4 held: no fast recovery
    assert not sock.conn.recovery.active
    # cwnd 2 after slow start; SND.NXT goes past 2-4, which still count against cwnd (the
    # go-back keeps RFC 5681's flight size)
    assert starts(peer, out) == [1]
    assert starts(peer, ack(peer, 5)) == [5, 6, 7]


# ---------------------------------------------------------------- without SACK

def test_without_sack_a_changed_window_is_no_duplicate_ack() -> None:
    # RFC 5681 2 (e): the window must equal the last one
    peer = Peer(make_host(initial_window=10))
    sock = peer.accept()
    sock.send(b"d" * 10 * MSS)
    peer.out()
    for window in (60000, 61000, 62000):
        assert peer.send(ACK, 1001, seg(peer, 0), window=window) == []
    assert sock.conn.recovery.dupacks == 0


def test_newreno_does_not_fast_retransmit_before_recover_is_covered() -> None:
    # RFC 6582 3.2 step 2: after an RTO, recover = the highest sequence number sent, and
    # three duplicate ACKs below it do not start fast retransmit
    peer = Peer(make_host(initial_window=10))
    sock = peer.accept()
    sock.send(b"d" * 10 * MSS)
    peer.out()
    peer.advance(sock.conn.rtt.rto)
    peer.send(ACK, 1001, seg(peer, 1))
    peer.out()
    for _ in range(3):
        peer.send(ACK, 1001, seg(peer, 1))
    assert not sock.conn.recovery.active


@pytest.mark.parametrize("sack", [False, True])
def test_the_recovery_algorithm_follows_negotiation(sack: bool) -> None:
    if sack:
        sock, _ = sack_peer()
    else:
        sock = Peer(make_host({"net.ipv4.tcp_sack": 1})).accept()   # peer offers no SACK
    assert isinstance(sock.conn.recovery, SackRecovery) == sack
