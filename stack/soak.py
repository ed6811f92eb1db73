"""Soak test: a long seeded run in virtual time, with a misbehaving link and an attacker.

    python -m stack.soak                      # 100,000 segments, seed 1
    python -m stack.soak --segments 5000 --seed 7

Two hosts open a connection and stream pseudo-random data to each other through
`ImpairedLink`s that drop, duplicate, delay and reorder packets. Meanwhile an off-path
attacker, who knows the addresses and ports but not the exact sequence numbers, injects
segments a correct TCP must reject: garbage, truncated packets, bad checksums, data outside
the window, RSTs not at RCV.NXT, SYNs, ACKs of unsent data, ACKs too old to be valid, stale
timestamps (PAWS) and malformed options. The run counts every packet either host processes
and stops at the requested number. It fails (exit status 1) if anything raises, if a
connection invariant breaks (`invariants`), if a host sends something the RFCs forbid
(`Auditor`), if either byte stream arrives other than as an exact prefix of what was sent, or
if the attacker managed to kill a connection.
"""

from __future__ import annotations

import argparse
import random
import sys

from . import seqnum
from .clock import VirtualClock
from .connection import Connection
from .events import State
from .host import Host
from .link import ImpairedLink, Link, MemoryLink
from .socket import Socket
from .wire import ACK, FIN, RST, SYN, IPv4, Malformed, TCPSegment, build, parse, tcp_checksum

SYSCTL = {"net.ipv4.tcp_timestamps": 1, "net.ipv4.tcp_sack": 1, "net.ipv4.tcp_window_scaling": 1}
# Virtual seconds the set-up waits for the handshake: the SYN's and SYN-ACK's retransmissions
# (RFC 6298 5.5 backoff from 1 s) over a link that drops 2 % succeed long before.
HANDSHAKE_LIMIT = 60.0
SETTLE_STEP = 0.01


class SetupFailed(Exception):
    """The connection the soak needs never came up."""


def invariants(conn: Connection) -> list[str]:
    """What must hold of any connection between events."""
    problems = []
    if conn.state is State.CLOSED:
        return problems
    if not (seqnum.le(conn.snd_una, conn.snd_nxt) and seqnum.le(conn.snd_nxt, conn.snd_max)):
        problems.append(f"send sequence out of order: una={conn.snd_una} nxt={conn.snd_nxt} "
                        f"max={conn.snd_max}")
    # The queue starts at the first data octet: SND.UNA is one before it until the SYN is
    # acknowledged, and one past it once the FIN (which holds no octet) is.
    fin_acked = conn.fin_seq is not None and seqnum.gt(conn.snd_una, conn.fin_seq)
    if seqnum.diff(conn.sendq.base, conn.snd_una) not in ((-1,) if fin_acked else (0, 1)):
        problems.append(f"send queue base {conn.sendq.base} is not SND.UNA {conn.snd_una}")
    if seqnum.diff(conn.rcv_adv, conn.rcv_nxt) < 0 and conn.state in (State.ESTABLISHED,
                                                                       State.FIN_WAIT_1,
                                                                       State.FIN_WAIT_2):
        problems.append("RCV.NXT passed the advertised right edge")
    if conn.cc.cwnd < conn.mss or conn.cc.ssthresh < 2 * conn.mss:
        problems.append(f"congestion window collapsed: cwnd={conn.cc.cwnd} ssthresh={conn.cc.ssthresh}")
    if len(conn.recvq) + len(conn.reasm) > conn.rcv_capacity + (1 << conn.neg.rcv_scale) + 65535:
        problems.append("receive buffers exceed what was advertised")
    return problems


class Auditor:
    """A link wrapper that checks every packet a host sends against rules that hold whatever
    arrived; `incoming` is the segment being processed (None when a timer fired). Everything
    but `send` passes straight to the wrapped link."""

    def __init__(self, inner: Link, scale_of) -> None:
        self.inner, self.scale_of = inner, scale_of
        self.incoming: TCPSegment | None = None
        self.problems: list[str] = []
        self.edges: dict[tuple, int] = {}

    def send(self, packet: bytes) -> None:
        self.check(packet)
        self.inner.send(packet)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)      # recv, release, next_deadline, drain...

    def check(self, packet: bytes) -> None:
        try:
            ip, seg = parse(packet)
        except Malformed as exc:
            self.problems.append(f"sent an undecodable packet: {exc}")
            return
        if not (ip.checksum_ok and seg.checksum_ok):
            self.problems.append("sent a bad checksum")
        if self.incoming is not None and self.incoming.flags & RST and seg.flags & RST:
            self.problems.append("answered a RST with a RST (RFC 9293 3.10.7)")
        if seg.flags & SYN and seg.flags & (RST | FIN):
            self.problems.append(f"sent SYN with RST/FIN: {seg}")
        self._window_edge(ip, seg)

    def _window_edge(self, ip: IPv4, seg: TCPSegment) -> None:
        """RFC 9293 3.8.6.2.2 (SHLD-14): the right window edge does not move left."""
        if not seg.flags & ACK or seg.flags & (SYN | RST):
            return
        key = (ip.src, seg.sport, ip.dst, seg.dport)
        edge = seqnum.add(seg.ack, seg.window << self.scale_of(ip, seg))
        old = self.edges.get(key)
        if old is not None and seqnum.lt(edge, old):
            self.problems.append(f"window edge moved left by {seqnum.diff(old, edge)} on {key}")
        if old is None or seqnum.gt(edge, old):
            self.edges[key] = edge


class Attacker:
    """Off-path segments toward `victim` that a correct TCP rejects (see module comment)."""

    def __init__(self, rng: random.Random, src: str, dst: str) -> None:
        self.rng, self.src, self.dst = rng, src, dst

    def packet(self, victim: Connection) -> bytes:
        kind = self.rng.choice(self.KINDS)
        return kind(self, victim)

    def _segment(self, victim: Connection, seq: int, ack: int, flags: int,
                 payload: bytes = b"ATTACK", ts: int | None = None, **kw) -> TCPSegment:
        options: list = []
        if victim.neg.timestamps:
            options = [("nop",), ("nop",), ("TS", victim.ts_recent if ts is None else ts, 0)]
        return TCPSegment(victim.remote[1], victim.local[1], seq, ack, flags,
                          self.rng.randrange(65536), options=options, payload=payload, **kw)

    def _build(self, seg: TCPSegment) -> bytes:
        return build(IPv4(self.src, self.dst), seg)

    def _outside(self, victim: Connection) -> int:
        """A sequence number outside the receive window, on either side."""
        span = victim.rcv_wnd + 1 + self.rng.randrange(1 << 20)
        return seqnum.add(victim.rcv_nxt, span if self.rng.random() < 0.5 else -span - 10)

    def _in_window_not_next(self, victim: Connection) -> int:
        return seqnum.add(victim.rcv_nxt, 1 + self.rng.randrange(max(victim.rcv_wnd - 1, 1)))

    def garbage(self, victim: Connection) -> bytes:
        return bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(80)))

    def truncated(self, victim: Connection) -> bytes:
        whole = self._build(self._segment(victim, self._outside(victim), victim.snd_una, ACK))
        return whole[:self.rng.randrange(len(whole))]

    def bad_checksum(self, victim: Connection) -> bytes:
        seg = self._segment(victim, victim.rcv_nxt, victim.snd_una, ACK,
                            checksum=self.rng.randrange(65536))
        packet = self._build(seg)
        return packet if not parse(packet)[1].checksum_ok else self.garbage(victim)

    def bad_ip_checksum(self, victim: Connection) -> bytes:
        seg = self._segment(victim, victim.rcv_nxt, victim.snd_una, ACK)
        raw = bytearray(self._build(seg))
        raw[10] ^= 0xFF
        return bytes(raw)

    def out_of_window(self, victim: Connection) -> bytes:
        return self._build(self._segment(victim, self._outside(victim), victim.snd_una, ACK))

    def blind_rst(self, victim: Connection) -> bytes:
        seq = self._in_window_not_next(victim) if self.rng.random() < 0.5 else self._outside(victim)
        return self._build(self._segment(victim, seq, 0, RST, b""))

    def blind_syn(self, victim: Connection) -> bytes:
        return self._build(self._segment(victim, self.rng.randrange(1 << 32), 0, SYN, b""))

    def unsent_ack(self, victim: Connection) -> bytes:
        ack = seqnum.add(victim.snd_max, 1 + self.rng.randrange(1 << 20))
        return self._build(self._segment(victim, victim.rcv_nxt, ack, ACK))

    def ancient_ack(self, victim: Connection) -> bytes:
        ack = seqnum.add(victim.snd_una, -victim.max_snd_wnd - 1 - self.rng.randrange(1 << 20))
        return self._build(self._segment(victim, victim.rcv_nxt, ack, ACK))

    def stale_timestamp(self, victim: Connection) -> bytes:
        if not victim.neg.timestamps:
            return self.garbage(victim)
        old = seqnum.add(victim.ts_recent, -1 - self.rng.randrange(1 << 20))
        return self._build(self._segment(victim, victim.rcv_nxt, victim.snd_una, ACK, ts=old))

    def bad_options(self, victim: Connection) -> bytes:
        seg = self._segment(victim, victim.rcv_nxt, victim.snd_una, ACK)
        kind = self.rng.choice([2, 3, 4, 5, 8])
        bad_length = self.rng.choice([0, 1, 7, 11, 39])
        raw = bytearray(self._build(seg))
        header = bytes((kind, bad_length)) + b"\0\0"
        tcp_start = 20
        offset = (raw[tcp_start + 12] >> 4) * 4
        body = raw[tcp_start + 20:tcp_start + offset]
        raw[tcp_start + 20:tcp_start + offset] = header + body[4:]
        return self._rechecksum(bytes(raw))

    def _rechecksum(self, packet: bytes) -> bytes:
        """Fix the TCP checksum of a hand-edited packet so the options are what is judged."""
        tcp = bytearray(packet[20:])
        tcp[16:18] = b"\0\0"
        tcp[16:18] = tcp_checksum(bytes(tcp), self.src, self.dst).to_bytes(2, "big")
        return packet[:20] + bytes(tcp)

    KINDS = [garbage, truncated, bad_checksum, bad_ip_checksum, out_of_window, blind_rst,
             blind_syn, unsent_ack, ancient_ack, stale_timestamp, bad_options]


class Soak:
    """Two hosts, one connection, a stream each way, an impaired link and an attacker."""

    def __init__(self, seed: int, attack_rate: float = 0.2) -> None:
        self.rng = random.Random(seed)
        self.clock = VirtualClock()
        la, lb = MemoryLink.pair()
        impair = dict(drop=0.02, duplicate=0.01, reorder=0.02, delay=0.005, jitter=0.004)
        self.a = Host("10.0.0.1", self.clock, None, SYSCTL, secret=b"a%d" % seed)
        self.b = Host("10.0.0.2", self.clock, None, SYSCTL, secret=b"b%d" % seed)
        for host, link, salt in ((self.a, la, 0), (self.b, lb, 1)):
            host.link = Auditor(ImpairedLink(link, self.clock, seed + salt, **impair),
                                self._scale_of(host))
        self.attack_rate = attack_rate
        self.attacker = Attacker(self.rng, "10.0.0.1", "10.0.0.2")
        self.processed = 0
        self.sent = {"a": bytearray(), "b": bytearray()}
        self.received = {"a": bytearray(), "b": bytearray()}
        srv = self.b.socket()
        srv.setblocking(False)
        srv.bind(("", 80))
        srv.listen(4)
        self.sa = self.a.socket()
        self.sa.setblocking(False)
        self.sa.connect_ex(("10.0.0.2", 80))
        self.sb = self._establish(srv)
        self.sb.setblocking(False)

    def _establish(self, listener: Socket) -> Socket:
        """The server's side of the connection, once the handshake has finished on both
        sides (a lost SYN, SYN-ACK or ACK costs a retransmission timeout or more)."""
        end = self.clock.now() + HANDSHAKE_LIMIT
        while self.clock.now() < end:
            self._settle(SETTLE_STEP)
            if self.sa.conn.state is State.ESTABLISHED:
                try:
                    return listener.accept()[0]
                except BlockingIOError:
                    pass
        raise SetupFailed(f"no connection after {HANDSHAKE_LIMIT:.0f} s (virtual): client in "
                          f"{self.sa.conn.state.value}")

    @staticmethod
    def _scale_of(host: Host):
        def scale(ip: IPv4, seg: TCPSegment) -> int:
            conn = host.conns.get((seg.sport, ip.dst, seg.dport))
            return conn.neg.rcv_scale if conn is not None else 0
        return scale

    def _deliver(self, host: Host) -> None:
        while (packet := host.link.recv(0)) is not None:
            self._process(host, packet)

    def _process(self, host: Host, packet: bytes) -> None:
        try:
            host.link.incoming = parse(packet)[1]
        except Malformed:
            host.link.incoming = None
        host.receive(packet)
        host.link.incoming = None
        self.processed += 1
        for conn in host.conns.values():
            host.link.problems += invariants(conn)

    def _settle(self, seconds: float) -> None:
        end = self.clock.now() + seconds
        while True:
            self._deliver(self.a)
            self._deliver(self.b)
            due = [t for t in (self.a.next_deadline(), self.b.next_deadline()) if t is not None]
            step = min(due + [end])
            if step > end or (step == end and not due):
                break
            self.clock.set(max(self.clock.now(), step))
            self.a.run_timers()
            self.b.run_timers()
            if step >= end:
                break

    def _pump_app(self) -> None:
        for name, sock in (("a", self.sa), ("b", self.sb)):
            chunk = bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(1, 3000)))
            try:
                self.sent[name] += chunk[:sock.send(chunk)]
            except BlockingIOError:
                pass
            try:
                self.received[name] += sock.recv(65536)
            except BlockingIOError:
                pass

    def run(self, segments: int) -> list[str]:
        while self.processed < segments:
            self._pump_app()
            if self.rng.random() < self.attack_rate and self.sb.conn.state is State.ESTABLISHED:
                self._process(self.b, self.attacker.packet(self.sb.conn))
            self._settle(0.002)
        return self.verdict()

    def verdict(self) -> list[str]:
        problems = list(dict.fromkeys(self.a.link.problems + self.b.link.problems))
        for sender, receiver in (("a", "b"), ("b", "a")):
            got = bytes(self.received[receiver])
            if got != bytes(self.sent[sender][:len(got)]):
                problems.append(f"stream {sender}->{receiver} corrupted")
        for sock in (self.sa, self.sb):
            if sock.conn.state is not State.ESTABLISHED:
                problems.append(f"connection ended: {sock.conn.state.value}, error {sock.conn.error}")
        return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        soak = Soak(args.seed)
    except SetupFailed as exc:
        print("PROBLEM:", exc)
        return 1
    problems = soak.run(args.segments)
    moved = {k: len(v) for k, v in soak.received.items()}
    print(f"{soak.processed} segments, {soak.clock.now():.1f} s virtual, octets received {moved}, "
          f"drops {sum(soak.a.drops.values()) + sum(soak.b.drops.values())}")
    for problem in problems:
        print("PROBLEM:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
