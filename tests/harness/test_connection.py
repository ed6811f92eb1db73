"""Connection state in RFC 9293's names, and Linux's TCP_INFO fields read through it."""

from __future__ import annotations

import errno
import socket

import stack
from harness.calls import Call
from harness.connection import INFINITE_SSTHRESH, rfc_view, tcp_info_view
from harness.constants import TCP_STATES
from harness.targets.sockets import SocketCalls
from harness.targets.stack import StackAPI

LINUX = {"tcpi_state": TCP_STATES["FIN_WAIT1"], "tcpi_snd_cwnd": 10, "tcpi_snd_mss": 1448,
         "tcpi_rcv_mss": 536, "tcpi_rto": 204000, "tcpi_snd_ssthresh": INFINITE_SSTHRESH,
         "tcpi_snd_wnd": 65535, "tcpi_rcv_wnd": 64240, "tcpi_rtt": 3000}


def test_linux_tcp_info_gives_the_rfc_variables_it_holds_and_keeps_every_field():
    state = rfc_view(LINUX)
    assert {k: v for k, v in state.items() if not k.startswith("tcpi_")} == {
        "state": "FIN-WAIT-1", "cwnd": 14480, "SMSS": 1448, "RMSS": 536, "RTO": 204000,
        "SND.WND": 65535, "RCV.WND": 64240}
    # no SND.UNA, SND.NXT or RCV.NXT in TCP_INFO; an infinite ssthresh is no ssthresh yet
    assert not {"SND.UNA", "SND.NXT", "RCV.NXT", "ssthresh"} & set(state)
    assert rfc_view({**LINUX, "tcpi_snd_ssthresh": 7})["ssthresh"] == 7 * 1448


def test_tcp_info_read_back_from_a_linux_target_is_its_tcp_info():
    assert tcp_info_view(rfc_view(LINUX)) == LINUX


def test_tcp_info_from_rfc_names_alone():
    state = {"state": "TIME-WAIT", "cwnd": 4000, "ssthresh": 9000, "SMSS": 1000, "RTO": 1000000,
             "SND.UNA": 1}
    assert tcp_info_view(state) == {"tcpi_state": TCP_STATES["TIME_WAIT"], "tcpi_snd_cwnd": 4,
                                    "tcpi_snd_ssthresh": 9, "tcpi_rto": 1000000,
                                    "tcpi_snd_mss": 1000}


def test_the_stack_target_gives_the_sequence_variables_tcp_info_lacks():
    """Through the in-process dispatcher: a non-blocking connect leaves SYN-SENT with the SYN
    sent and not acknowledged (RFC 9293 3.3.1: SND.UNA = ISS, SND.NXT = ISS + 1)."""
    calls = SocketCalls(StackAPI(stack.Host("192.168.0.1", stack.VirtualClock(), stack.MemoryLink())))
    fd = calls.call(Call("socket", None, {"family": socket.AF_INET, "type": socket.SOCK_STREAM,
                                          "proto": 0})).ret
    assert calls.call(Call("fcntl", fd, {"nonblock": True})).err is None
    assert calls.call(Call("connect", fd, {"addr": ("192.0.2.1", 8080)})).err == errno.EINPROGRESS
    state = calls.connection(fd)
    assert state["state"] == "SYN-SENT" and state["tcpi_state"] == TCP_STATES["SYN_SENT"]
    assert state["SND.UNA"] == state["ISS"] and state["SND.NXT"] == (state["ISS"] + 1) % 2**32
    assert state["SMSS"] > 0 and state["cwnd"] == state["tcpi_snd_cwnd"] * state["SMSS"]
