"""The choices the RFCs leave open, as `Config` fields, and the named profiles that set them
(stack.config.PROFILES): each test shows one choice both ways."""

from __future__ import annotations

import pytest
from conftest import Peer, data_of, make_host

from stack import State
from stack.config import PROFILES, Config
from stack.wire import ACK, FIN, RST, SYN


def established(**settings) -> tuple:
    peer = Peer(make_host(**settings))
    return peer.accept(), peer


def test_every_profile_names_only_config_fields():
    known = {f for f in Config.__dataclass_fields__}
    for name, settings in PROFILES.items():
        assert set(settings) <= known, name
        Config.from_sysctls(None, **settings)


def test_the_defaults_are_the_rfcs_and_linux_keeps_its_own():
    rfc = Config()
    assert (rfc.msl, rfc.rto_min, rfc.initial_window) == (120.0, 1.0, None)   # RFC 9293 3.4.2, RFC 6298 2.4, RFC 5681 3.1
    linux, _ = Config.from_sysctls(None, **PROFILES["linux"])
    assert (linux.msl, linux.rto_min, linux.initial_window) == (30.0, 0.2, 10)


@pytest.mark.parametrize("quick, at", [(True, 0.0), (False, 0.2)])
def test_quick_ack_mode_or_the_delayed_ack_timer_for_the_first_data(quick: bool, at: float):
    sock, peer = established(quick_ack=quick, delayed_ack=0.2)
    start = peer.clock.now()
    acks = peer.send(ACK, 1001, peer.iss + 1, b"x" * 10)
    if not acks:
        acks = peer.advance(0.2)
    assert [a.ack for a in acks] == [1011]
    assert peer.clock.now() - start == pytest.approx(at)


@pytest.mark.parametrize("rfc5961, state, reply", [(True, State.ESTABLISHED, ACK),
                                                   (False, State.CLOSED, None)])
def test_an_in_window_rst_not_at_rcv_nxt(rfc5961: bool, state: State, reply: int | None):
    """RFC 5961 3.2: a challenge ACK; RFC 793 3.9: any RST in the window resets."""
    sock, peer = established(rfc5961=rfc5961)
    out = peer.send(RST, 1500)
    assert [s.flags for s in out] == ([reply] if reply else [])
    assert sock.conn.state is state


@pytest.mark.parametrize("rfc5961", [True, False])
def test_an_in_window_syn(rfc5961: bool):
    """RFC 5961 4.2: a challenge ACK; RFC 793 3.9: a reset, and the user sees ECONNRESET."""
    sock, peer = established(rfc5961=rfc5961)
    out, = peer.send(SYN | ACK, 1100, peer.iss + 1)
    if rfc5961:
        assert (out.flags, out.ack) == (ACK, 1001) and sock.conn.state is State.ESTABLISHED
    else:
        assert (out.flags, out.seq) == (RST, peer.iss + 1) and sock.conn.state is State.CLOSED
        with pytest.raises(ConnectionResetError):
            sock.recv(1)


@pytest.mark.parametrize("rfc5961", [True, False])
def test_an_ack_older_than_the_max_window(rfc5961: bool):
    """RFC 5961 5.2 drops it with an ACK; RFC 793 ignores the old ACK field and takes the text."""
    sock, peer = established(rfc5961=rfc5961)
    peer.send(ACK, 1001, peer.iss + 1 - 70_000, b"data")
    peer.advance(1)
    taken = sock.conn.rcv_nxt == 1005
    assert taken is not rfc5961


@pytest.mark.parametrize("window", [0, 4096])
def test_a_reset_carries_the_configured_window(window: int):
    peer = Peer(make_host(rst_window=window))
    reset, = peer.send(ACK, 1, 5000)                 # no listener on the port: CLOSED
    assert (reset.flags, reset.seq, reset.window) == (RST, 5000, window)


@pytest.mark.parametrize("option", [1, 2])
def test_newreno_full_ack_option(option: int):
    """RFC 6582 3.2 step 3: (1) min(ssthresh, max(FlightSize, SMSS) + SMSS), (2) ssthresh."""
    sock, peer = established(full_ack_option=option, initial_window=10)
    sock.send(b"d" * 1460 * 10)
    segs = peer.out()
    assert len(segs) == 10
    for _ in range(3):                               # the first segment is lost
        peer.send(ACK, 1001, peer.iss + 1)
    cc = sock.conn.cc
    ssthresh = cc.ssthresh
    peer.send(ACK, 1001, peer.iss + 1 + 1460 * 10)  # everything: a full ACK, nothing in flight
    assert cc.cwnd == (min(ssthresh, 1460 + 1460) if option == 1 else ssthresh)


@pytest.mark.parametrize("tick, per_second", [(4e-6, 250_000), (64e-9, 15_625_000)])
def test_the_isn_clock_ticks_as_configured(tick: float, per_second: int):
    """RFC 9293 3.4.1's 4 us clock or Linux's 64 ns one, from the host's setting."""
    isn = make_host(isn_tick=tick).isn
    a, b = ("1.1.1.1", 1), ("2.2.2.2", 2)
    assert (isn.isn(a, b, 1.0) - isn.isn(a, b, 0.0)) % 2**32 == per_second


@pytest.mark.parametrize("msl", [30.0, 120.0])
def test_time_wait_lasts_twice_the_msl(msl: float):
    sock, peer = established(msl=msl)
    sock.close()
    peer.out()
    peer.send(FIN | ACK, 1001, peer.iss + 2)
    peer.advance(2 * msl - 0.1)
    assert sock.conn.state is State.TIME_WAIT
    peer.advance(0.2)
    assert sock.conn.state is State.CLOSED


@pytest.mark.parametrize("iw, segments", [(None, 3), (2, 2), (10, 10)])
def test_the_initial_window(iw: int | None, segments: int):
    """None: RFC 5681 3.1's bound, 3 segments at SMSS 1460."""
    sock, peer = established(initial_window=iw)
    sock.send(b"d" * 1460 * 12)
    assert [len(s.payload) for s in peer.out()] == [1460] * segments


@pytest.mark.parametrize("delay", [0.04, 0.2])
def test_the_delayed_ack_timer(delay: float):
    sock, peer = established(quick_ack=False, delayed_ack=delay)
    assert peer.send(ACK, 1001, peer.iss + 1, b"x" * 10) == []
    assert peer.advance(delay - 0.001) == []
    assert [a.ack for a in peer.advance(0.002)] == [1011]


@pytest.mark.parametrize("form", ["octet", "empty"])
def test_zero_window_probe_forms(form: str):
    """One octet of new data (RFC 9293 3.8.6.1) or an empty segment at SND.UNA - 1 (Linux)."""
    sock, peer = established(zero_window_probe=form)
    peer.send(ACK, 1001, peer.iss + 1, window=0)
    sock.send(b"p" * 100)
    probe, = peer.advance(peer.host.next_deadline() - peer.clock.now())
    if form == "octet":
        assert (probe.seq, data_of([probe])) == (peer.iss + 1, b"p")
    else:
        assert (probe.seq, probe.payload) == (peer.iss, b"")



@pytest.mark.parametrize("headroom, mss", [(0, 1460), (60, 1400)])
def test_the_mss_announced_stays_the_headroom_below_the_mtu_less_40(headroom: int, mss: int):
    """RFC 9293 3.7.1 (MUST-67): at most MMS_R - 20; less is the host's choice. The data the
    host sends is still sized by the peer's MSS (1460 here), not by its own."""
    peer = Peer(make_host(mss_headroom=headroom, initial_window=10))
    srv = peer.listen()
    synack, = peer.send(SYN, peer.isn, options=[("mss", 1460)])
    assert synack.option("mss") == ("mss", mss)
    peer.iss = synack.seq
    peer.send(ACK, peer.isn + 1, peer.iss + 1)
    sock, _ = srv.accept()
    sock.send(b"d" * 2920)
    assert [len(s.payload) for s in peer.out()] == [1460, 1460]
