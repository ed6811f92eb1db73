"""Each family of `rfcdrill mutate`'s mutants changes what the stack does, on the sans-I/O
stack: the same exchange gives the RFC's answer unmutated and a wrong one with the mutant,
and the stack is itself again once the mutant is removed."""

from __future__ import annotations

from conftest import Peer, make_host

from harness.mutate.patching import applied
from harness.mutate.registry import MUTANTS
from stack import State
from stack.config import Config
from stack.congestion import Reno
from stack.rtt import RttEstimator
from stack.wire import ACK, FIN, RST, SYN, IPv4, build


def _reset_at_rcv_nxt() -> State:
    peer = Peer(make_host())
    sock = peer.accept()
    peer.send(RST, peer.isn + 1)
    return sock.conn.state


def test_arrival_mutant_ignores_an_acceptable_rst() -> None:
    assert _reset_at_rcv_nxt() is State.CLOSED
    with applied(MUTANTS["rst-ignored-in-established"]):
        assert _reset_at_rcv_nxt() is State.ESTABLISHED
    assert _reset_at_rcv_nxt() is State.CLOSED


def _acks_of_a_fin() -> list:
    peer = Peer(make_host())
    peer.accept()
    return peer.send(FIN | ACK, peer.isn + 1, peer.iss + 1) + peer.advance(1.0)


def test_closing_mutant_leaves_the_fin_unacknowledged() -> None:
    assert [s.ack for s in _acks_of_a_fin()] == [1002]
    with applied(MUTANTS["fin-not-acked-in-established"]):
        assert _acks_of_a_fin() == []


def test_timer_mutant_stops_the_backoff() -> None:
    with applied(MUTANTS["rto-not-backed-off"]):
        rtt = RttEstimator(Config())
        rtt.expired()
        assert rtt.rto == 1.0
    rtt.expired()
    assert rtt.rto == 2.0


def test_congestion_mutant_keeps_cwnd_after_a_timeout() -> None:
    with applied(MUTANTS["rto-keeps-cwnd"]):
        reno = Reno(1000, 4)
        reno.on_timeout(4000)
        assert reno.cwnd == 4000
    reno.on_timeout(4000)
    assert reno.cwnd == 1000


def test_config_mutant_changes_a_hosts_delayed_ack_only_while_applied() -> None:
    with applied(MUTANTS["delayed-ack-600ms"]):
        assert make_host().cfg.delayed_ack == 0.6
    assert make_host().cfg.delayed_ack == Config().delayed_ack


def test_config_mutant_with_a_sysctl_leaves_a_set_sysctl_alone() -> None:
    with applied(MUTANTS["r2-too-small"]):
        assert make_host().cfg.retries2 == 2
        assert make_host({"net.ipv4.tcp_retries2": 9}).cfg.retries2 == 9


def _answer_to_a_bad_checksum() -> list:
    peer = Peer(make_host())
    peer.listen()
    raw = bytearray(build(IPv4("192.168.0.2", "192.168.0.1"), peer.seg(SYN, 1000)))
    raw[36] ^= 0xFF                            # the TCP checksum's first octet
    peer.host.receive(bytes(raw))
    return peer.out()


def test_wire_mutant_accepts_a_bad_checksum() -> None:
    assert _answer_to_a_bad_checksum() == []
    with applied(MUTANTS["checksum-not-verified"]):
        synack, = _answer_to_a_bad_checksum()
        assert synack.flags == SYN | ACK


def _ack_of_segment_without_ack_bit() -> list:
    peer = Peer(make_host())
    peer.accept()
    return peer.send(0, peer.isn + 1, payload=b"x") + peer.advance(1.0)


def test_ack_family_mutant_takes_data_without_the_ack_bit() -> None:
    assert _ack_of_segment_without_ack_bit() == []
    with applied(MUTANTS["segment-without-ack-processed"]):
        ack, = _ack_of_segment_without_ack_bit()
        assert ack.flags & ACK and ack.ack == 1002


def test_every_mutant_replaces_its_targets_and_puts_them_back() -> None:
    for mutant in MUTANTS.values():
        before = [_attribute(p.owner, p.attr) for p in mutant.patches]
        timer_actions = dict(_timer_actions())
        with applied(mutant):
            during = [_attribute(p.owner, p.attr) for p in mutant.patches]
            assert all(new is not old for new, old in zip(during, before)), mutant.name
        assert [_attribute(p.owner, p.attr) for p in mutant.patches] == before, mutant.name
        assert _timer_actions() == timer_actions, mutant.name


def _attribute(owner, attr):
    return owner.__dict__.get(attr) if isinstance(owner, type) else getattr(owner, attr)


def _timer_actions() -> dict:
    from stack.connection import Connection
    return Connection._TIMER_ACTIONS
