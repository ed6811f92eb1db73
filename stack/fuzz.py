"""Fuzzing the stack's input: any bytes as a segment, in any state, raise nothing and keep
the connection's invariants.

    python -m stack.fuzz                          # 20,000 inputs, seed 1
    python -m stack.fuzz --inputs 200000 --seed 7

A `Scene` brings a host's connection into one of the RFC 9293 states (LISTEN and SYN-SENT
to TIME-WAIT, with the TCP options on or off) by a scripted peer in virtual time. One
input is then delivered to it in one of three shapes: the bytes as the whole IP packet;
the bytes as the TCP header and payload behind a sound IPv4 header, with the connection's
ports and a correct checksum (so that they reach the state machine); or a segment built
from the bytes with a sequence number near RCV.NXT and an acknowledgment near SND.UNA (so
that they reach the parts of it an in-window segment reaches). Then the timers run for a
while. An input is wrong if anything raises or if `problems` finds a broken invariant.
The long run prints how many inputs it tried and how many were wrong, and exits non-zero
if any was; tests/stack/test_stack_fuzz.py runs the same checks under hypothesis.
"""

from __future__ import annotations

import argparse
import random
import socket
import struct
import sys
import traceback

from . import seqnum
from .clock import VirtualClock
from .connection import Connection
from .events import State
from .host import Host
from .link import MemoryLink
from .soak import invariants
from .wire import ACK, FIN, RST, SYN, IPv4, TCPSegment, build, parse, tcp_checksum

HOST, PEER = "192.168.0.1", "192.168.0.2"
_HOST_RAW, _PEER_RAW = socket.inet_aton(HOST), socket.inet_aton(PEER)
HOST_PORT, PEER_PORT, PEER_ISN = 8080, 40000, 1000
STATES = (State.LISTEN, State.SYN_SENT, State.SYN_RECEIVED, State.ESTABLISHED,
          State.FIN_WAIT_1, State.FIN_WAIT_2, State.CLOSE_WAIT, State.CLOSING, State.LAST_ACK,
          State.TIME_WAIT)
SHAPES = ("packet", "tcp", "segment")
OPTIONS = {True: {"net.ipv4.tcp_timestamps": 1, "net.ipv4.tcp_sack": 1,
                  "net.ipv4.tcp_window_scaling": 1},
           False: {"net.ipv4.tcp_timestamps": 0, "net.ipv4.tcp_sack": 0,
                   "net.ipv4.tcp_window_scaling": 0}}
SYN_OPTIONS = {True: [("mss", 1460), ("sackOK",), ("TS", 1, 0), ("nop",), ("wscale", 7)],
               False: [("mss", 1460)]}
AFTER = 3.0         # virtual seconds of timers after the input
_SYNCED_RECEIVING = (State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2)


class Scene:
    """A host whose connection with the peer is in `state` (for LISTEN: only a listener)."""

    def __init__(self, state: State, options: bool) -> None:
        self.options = options
        self.host = Host(HOST, VirtualClock(), MemoryLink(), OPTIONS[options], secret=b"fuzz")
        self.peer_nxt = PEER_ISN + 1        # the peer's next sequence number
        self.host_nxt = 0                   # what the peer acknowledges
        self.ts = 1
        if state is State.SYN_SENT:
            sock = self.host.socket()
            sock.setblocking(False)
            sock.connect_ex((PEER, PEER_PORT))
            syn = self._out()[0]
            self.host_port, self.host_nxt = syn.sport, seqnum.add(syn.seq, 1)
            self.peer_nxt = PEER_ISN
        else:
            self.host_port = HOST_PORT
            self._passive(state)
        self.reached = self.connection().state if self.connection() else State.LISTEN

    def _passive(self, state: State) -> None:
        listener = self.host.socket()
        listener.setblocking(False)
        listener.bind(("0.0.0.0", HOST_PORT))
        listener.listen(4)
        self.listener = listener
        if state is State.LISTEN:
            return
        synack = self.send(SYN, PEER_ISN, 0, options=SYN_OPTIONS[self.options])[0]
        self.host_nxt = seqnum.add(synack.seq, 1)
        if state is State.SYN_RECEIVED:
            return
        self.send(ACK, self.peer_nxt, self.host_nxt)
        sock, _ = listener.accept()
        sock.setblocking(False)
        if state is State.ESTABLISHED:
            return
        if state in (State.CLOSE_WAIT, State.LAST_ACK):
            self.send(FIN | ACK, self.peer_nxt, self.host_nxt)
            self.peer_nxt += 1
            if state is State.LAST_ACK:
                sock.close()
            return
        sock.close()                               # FIN-WAIT-1: our FIN is out
        if state is State.CLOSING:                 # their FIN crosses ours
            self.send(FIN | ACK, self.peer_nxt, self.host_nxt)
            self.peer_nxt += 1
            return
        if state is State.FIN_WAIT_1:
            return
        self.send(ACK, self.peer_nxt, seqnum.add(self.host_nxt, 1))
        if state is State.TIME_WAIT:
            self.send(FIN | ACK, self.peer_nxt, seqnum.add(self.host_nxt, 1))
            self.peer_nxt += 1

    def connection(self) -> Connection | None:
        return next(iter(self.host.conns.values()), None)

    def _out(self) -> list[TCPSegment]:
        return [parse(p)[1] for p in self.host.link.drain()]

    def _options(self, options: list) -> list:
        """Timestamps on every segment once they are on (RFC 7323 3.2)."""
        if not self.options or any(o[0] == "TS" for o in options):
            return options
        self.ts += 1
        return [*options, ("nop",), ("nop",), ("TS", self.ts, 0)]

    def send(self, flags: int, seq: int, ack: int, payload: bytes = b"", window: int = 65535,
             options: list | None = None) -> list[TCPSegment]:
        seg = TCPSegment(PEER_PORT, self.host_port, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, flags,
                         window, 0, self._options(list(options or [])), payload)
        self.host.receive(build(IPv4(PEER, HOST), seg))
        return self._out()

    # -- the three shapes of an input -------------------------------------------------------
    def deliver(self, shape: str, data: bytes) -> None:
        if shape == "packet":
            self.host.receive(data)
        elif shape == "tcp":
            self.host.receive(self._tcp_packet(data))
        else:
            self._segment(data)
        clock = self.host.clock
        end = clock.now() + AFTER
        while (due := self.host.next_deadline()) is not None and due <= end:
            clock.set(max(due, clock.now()))
            self.host.run_timers()
        self.host.link.drain()

    def _tcp_packet(self, data: bytes) -> bytes:
        """`data` as TCP header and payload, aimed at the connection, checksum right."""
        tcp = bytearray(data)
        if len(tcp) >= 4:
            tcp[0:4] = struct.pack("!HH", PEER_PORT, self.host_port)
        if len(tcp) >= 18:
            tcp[16:18] = b"\0\0"
            tcp[16:18] = struct.pack("!H", tcp_checksum(bytes(tcp), PEER, HOST))
        header = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0,
                                       _PEER_RAW, _HOST_RAW))
        header[10:12] = struct.pack("!H", _ip_checksum(bytes(header)))
        return bytes(header) + bytes(tcp)

    def _segment(self, data: bytes) -> None:
        """A segment near the connection's windows: the first bytes choose flags, offsets
        from RCV.NXT and SND.UNA (and how far to shrink them), window and how much of the
        rest is raw options (after the timestamp, once timestamps are on); the rest of the
        rest is the payload."""
        head = data[:9].ljust(9, b"\0")
        flags, seq_off, ack_off, window, shift, split = struct.unpack("!BhhHBB", head)
        seq_off, ack_off = seq_off >> (shift & 15), ack_off >> (shift >> 4)   # often near
        if split & 0x80:            # half the time an ACK without SYN or RST, acknowledging
            flags = (flags | ACK) & ~(SYN | RST)     # nothing unsent: one that counts
            ack_off = -abs(ack_off)
        conn = self.connection()
        rcv_nxt = conn.rcv_nxt if conn is not None else self.peer_nxt
        snd_una = conn.snd_una if conn is not None else self.host_nxt
        seg = TCPSegment(PEER_PORT, self.host_port, seqnum.add(rcv_nxt, seq_off),
                         seqnum.add(snd_una, ack_off), flags, window, 0, self._options([]), b"")
        packet = build(IPv4(PEER, HOST), seg)      # with a timestamp once they are on
        header = bytearray(packet[20:])
        rest = data[9:]
        cut = min((split & 0x7F) % (44 - len(header) + 20), len(rest)) // 4 * 4
        tcp = header + rest                        # raw options after the built ones, data
        tcp[12] = (len(header) + cut) // 4 << 4 | (tcp[12] & 0x0F)
        self.host.receive(self._tcp_packet(bytes(tcp)))


def _ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def problems(host: Host) -> list[str]:
    """Broken invariants of the host's connections (beyond what `soak.invariants` checks)."""
    found = []
    for key, conn in host.conns.items():
        if not isinstance(conn.state, State):
            found.append(f"{key}: state {conn.state!r} is not a TCP state")
            continue
        found += [f"{key} in {conn.state.value}: {p}" for p in invariants(conn)]
        if conn.state in _SYNCED_RECEIVING and seqnum.diff(conn.rcv_adv, conn.rcv_nxt) < 0:
            found.append(f"{key} in {conn.state.value}: RCV.WND < 0 (RCV.NXT {conn.rcv_nxt} "
                         f"past the advertised edge {conn.rcv_adv})")
        if conn.state in (State.LISTEN, State.SYN_SENT) and (conn.recvq or len(conn.reasm)):
            found.append(f"{key} in {conn.state.value}: data queued before synchronization")
        if conn.fin_seq is not None and conn.state in (State.SYN_SENT, State.SYN_RECEIVED,
                                                       State.ESTABLISHED, State.CLOSE_WAIT):
            found.append(f"{key}: a FIN was sent, yet the state is {conn.state.value}")
        if len(conn.recvq) > conn.rcv_capacity + 65535:
            found.append(f"{key}: receive queue of {len(conn.recvq)} octets")
    return found


def check(state: State, options: bool, shape: str, data: bytes) -> list[str]:
    """What is wrong after delivering `data` in `shape` to a connection in `state`."""
    scene = Scene(state, options)
    try:
        scene.deliver(shape, data)
    except Exception:       # any exception is a finding; say where it came from
        return ["raised: " + traceback.format_exc(limit=-3).strip().replace("\n", " | ")]
    return problems(scene.host)


def _random_input(rng: random.Random) -> tuple[State, bool, str, bytes]:
    size = rng.choice((rng.randrange(0, 24), rng.randrange(0, 80), rng.randrange(0, 1600)))
    data = bytes(rng.getrandbits(8) for _ in range(size))
    return rng.choice(STATES), rng.random() < 0.5, rng.choice(SHAPES), data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    wrong = 0
    for n in range(args.inputs):
        state, options, shape, data = _random_input(rng)
        found = check(state, options, shape, data)
        if found:
            wrong += 1
            if wrong <= 20:
                print(f"WRONG input {n}: {state.value}, options {'on' if options else 'off'}, "
                      f"{shape}, {data.hex()}\n  " + "\n  ".join(found))
    print(f"{args.inputs} inputs tried (seed {args.seed}), {wrong} found wrong")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
