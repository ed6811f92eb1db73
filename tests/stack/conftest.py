"""Test helpers for the stack: a scripted remote peer in virtual time.

`Peer` plays the remote end packetdrill-style: it injects one segment into the host and
returns the segments the host sent back, decoded. Sequence numbers in tests are absolute;
`Peer.isn` is the peer's ISN and `Peer.iss` is the host's, learned from its SYN or SYN-ACK.
"""

from __future__ import annotations

import socket

import pytest

import stack
from stack.wire import ACK, FIN, IPv4, SYN, TCPSegment, build, parse

HOST_ADDR, PEER_ADDR = "192.168.0.1", "192.168.0.2"
NO_OPTIONS = {"net.ipv4.tcp_timestamps": 0, "net.ipv4.tcp_sack": 0, "net.ipv4.tcp_window_scaling": 0}


class Peer:
    def __init__(self, host: stack.Host, port: int = 40000, host_port: int = 8080,
                 isn: int = 1000) -> None:
        self.host, self.port, self.host_port = host, port, host_port
        self.isn = isn
        self.iss = 0
        self.tos = 0
        self.ts_on = False      # timestamps agreed: every segment sent gets a TS option
        self.ts_ecr = 0

    @property
    def clock(self) -> stack.VirtualClock:
        return self.host.clock

    def out(self) -> list[TCPSegment]:
        segs = [parse(p)[1] for p in self.host.link.drain()]
        for seg in segs:
            if seg.option("TS"):
                self.ts_ecr = seg.option("TS")[1]
        return segs

    def packets(self) -> list[tuple[IPv4, TCPSegment]]:
        return [parse(p) for p in self.host.link.drain()]

    def seg(self, flags: int, seq: int, ack: int = 0, payload: bytes = b"", window: int = 65535,
            options: list | None = None, urg: int = 0) -> TCPSegment:
        return TCPSegment(self.port, self.host_port, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, flags,
                          window, urg, list(options or []), payload)

    def inject(self, seg: TCPSegment, tos: int | None = None) -> list[TCPSegment]:
        if self.ts_on and not seg.option("TS") and not seg.flags & 0x04:
            tsval = 1000 + int(self.clock.now() * 1000)
            seg.options = [*seg.options, ("nop",), ("nop",), ("TS", tsval, self.ts_ecr)]
        ip = IPv4(PEER_ADDR, HOST_ADDR, tos=self.tos if tos is None else tos)
        self.host.receive(build(ip, seg))
        return self.out()

    def send(self, flags: int, seq: int, ack: int = 0, payload: bytes = b"", **kw) -> list[TCPSegment]:
        return self.inject(self.seg(flags, seq, ack, payload, **kw))

    def advance(self, seconds: float) -> list[TCPSegment]:
        """Let virtual time pass, firing timers on the way; the segments sent meanwhile."""
        end = self.clock.now() + seconds
        while (due := self.host.next_deadline()) is not None and due <= end:
            self.clock.set(max(due, self.clock.now()))
            self.host.run_timers()
        self.clock.set(end)
        self.host.run_timers()
        return self.out()

    # ---- set-ups

    def listen(self, **opts: int) -> stack.Socket:
        srv = self.host.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        srv.setblocking(False)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for name, value in opts.items():
            srv.setsockopt(*OPTS[name], value)
        srv.bind(("0.0.0.0", self.host_port))
        srv.listen(8)
        return srv

    def accept(self, syn_options: list | None = None, window: int = 65535) -> stack.Socket:
        """Passive open: SYN in, SYN-ACK out, ACK in, accept()."""
        srv = self.listen()
        if syn_options is None:
            syn_options = [("mss", 1460)]
        synack, = self.send(SYN, self.isn, options=syn_options, window=window)
        assert synack.flags == SYN | ACK
        self.iss = synack.seq
        self.ts_on = synack.option("TS") is not None
        assert self.send(ACK, self.isn + 1, self.iss + 1, window=window) == []
        conn, _ = srv.accept()
        conn.setblocking(False)
        self.listener = srv
        return conn

    def connect(self, syn_ack_options: list | None = None, window: int = 65535) -> stack.Socket:
        """Active open: connect(), SYN out, SYN-ACK in, ACK out."""
        sock = self.host.socket()
        sock.setblocking(False)
        assert sock.connect_ex((PEER_ADDR, self.port)) == 115      # EINPROGRESS
        syn, = self.out()
        self.host_port = syn.sport
        self.iss = syn.seq
        if syn_ack_options is None:
            syn_ack_options = [("mss", 1460)]
        ack, = self.send(SYN | ACK, self.isn, self.iss + 1, options=syn_ack_options, window=window)
        assert ack.flags == ACK and ack.ack == self.isn + 1
        return sock

    def syn_sent(self):
        """connect() without an answer yet: the socket and the SYN it sent."""
        sock = self.host.socket()
        sock.setblocking(False)
        sock.connect_ex((PEER_ADDR, self.port))
        syn, = self.out()
        self.host_port = syn.sport
        self.iss = syn.seq
        return sock, syn


OPTS = {"nodelay": (socket.IPPROTO_TCP, socket.TCP_NODELAY),
        "rcvbuf": (socket.SOL_SOCKET, socket.SO_RCVBUF)}


def make_host(sysctl: dict | None = None, **settings) -> stack.Host:
    merged = dict(NO_OPTIONS)
    merged.update(sysctl or {})
    return stack.Host(HOST_ADDR, stack.VirtualClock(), stack.MemoryLink(), merged,
                      secret=b"test", **settings)


@pytest.fixture
def host() -> stack.Host:
    """A host with timestamps, SACK and window scaling off: plain RFC 793 segments."""
    return make_host()


@pytest.fixture
def peer(host: stack.Host) -> Peer:
    return Peer(host)


def data_of(segs: list[TCPSegment]) -> bytes:
    return b"".join(s.payload for s in segs)


__all__ = ["ACK", "FIN", "SYN", "Peer", "make_host", "data_of", "HOST_ADDR", "PEER_ADDR"]
