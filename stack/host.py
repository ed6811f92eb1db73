"""A host: one IPv4 address, a link, a clock, and the TCP connections and sockets on it.

Theory of operation: the host is the I/O shell around the sans-I/O connections. `receive`
decodes one inbound packet and hands it to the connection it belongs to (by local port and
remote address and port), to a listener (RFC 9293 3.10.7.2), or answers for a closed port
(3.10.7.1); ICMP errors go to the connection they quote, echo requests get replies. Every
event's `Effects` pass through `apply`: segments are wrapped in IPv4 (with the socket's IP_TOS,
RFC 2873) and sent on the link, the connection's earliest timer is recorded, and notices move
accepted connections to their listener and forget closed ones. `run_timers` fires what is
due at the clock's now; `next_deadline` says when that will next be.

Blocking: `wait(condition, timeout)` runs the loop (read the link until the next deadline,
process, fire timers) until the condition holds. It needs a clock that moves by itself; with
a `VirtualClock` it raises BlockingIOError at once (the caller drives time instead).

Congestion control: whatever tcp_congestion_control names, RFC 5681 runs, with SACK-based loss
recovery (RFC 6675) when SACK was agreed and NewReno (RFC 6582) when not.
"""

from __future__ import annotations

import errno
import ipaddress
import itertools
from collections import Counter
from typing import Callable, Iterable

from . import gso, icmp, seqnum
from .clock import RealClock, VirtualClock
from .config import Config
from .connection import Connection
from .events import Effects, IcmpError, Notice, State, Throttle, reset_for
from .isn import IsnGenerator
from .link import MemoryLink
from .socket import Socket, error, inherit
from .wire import ACK, IPPROTO_ICMP, IPPROTO_TCP, RST, SYN, IPv4, Malformed, TCPSegment, build, decode_ipv4, decode_tcp

EPHEMERAL = range(32768, 61000)     # Linux ip_local_port_range
LIMITED_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
Key = tuple[int, str, int]          # (local port, remote address, remote port)
BURST = 64                          # packets `wait` takes from the link before it looks again


class Host:
    def __init__(self, address: str = "192.168.0.1", clock: VirtualClock | RealClock | None = None,
                 link=None, sysctl: dict[str, object] | None = None, *,
                 secret: bytes | None = None, netmask: str = "255.255.255.255",
                 **settings: object) -> None:
        """`netmask`: of the host's subnet, whose broadcast address is no unicast peer.
        `settings` override Config fields: delayed_ack, rto_min, rto_max, rto_initial,
        initial_window (segments), msl, mtu, ... (see stack.config.Config)."""
        self.address = address
        self.subnet = ipaddress.IPv4Network(f"{address}/{netmask}", strict=False)
        self._valid_peers: dict[str, bool] = {}
        self.clock = clock if clock is not None else VirtualClock()
        self.link = link if link is not None else MemoryLink()
        self._settings = settings
        self.configure(sysctl)
        self.isn = IsnGenerator(secret, self.cfg.isn_tick)
        self.conns: dict[Key, Connection] = {}
        self.deadlines: dict[Connection, float] = {}
        self.listeners: dict[int, Socket] = {}
        self.parents: dict[Connection, Socket] = {}
        self.ports: dict[int, list[Socket]] = {}
        self.drops: Counter[str] = Counter()
        self.advice: list[tuple[float, str]] = []      # negative advice received (R1)
        self._filenos = itertools.count(3)
        self._ident = itertools.count(1)
        self._next_port = EPHEMERAL.start + self.isn.ts_offset((address, 0), ("", 0)) % len(EPHEMERAL)

    def configure(self, sysctl: dict[str, object] | None) -> None:
        """Host-wide settings from sysctls; like Linux's, they apply to connections made after."""
        self.cfg, self.unsupported_sysctls = Config.from_sysctls(sysctl, **self._settings)
        self.throttle = Throttle(self.cfg.challenge_ack_limit)

    # ------------------------------------------------------------------ sockets

    def socket(self, family: int = 2, type: int = 1, proto: int = 0) -> Socket:
        return Socket(self, family, type, proto)

    def new_fileno(self) -> int:
        return next(self._filenos)

    def claim_port(self, sock: Socket, port: int) -> int:
        """Reserve `port` (0: an ephemeral one) for `sock`; EADDRINUSE if taken. With
        SO_REUSEADDR on both sides only a listener blocks the port (Linux)."""
        if port == 0:
            return self._ephemeral(sock)
        if self._port_busy(sock, port):
            raise error(errno.EADDRINUSE)
        self.ports.setdefault(port, []).append(sock)
        return port

    def _port_busy(self, sock: Socket, port: int) -> bool:
        if port in self.listeners:
            return True
        users = [s for s in self.ports.get(port, []) if not s.closed]
        if any(not (sock.opts.reuseaddr and s.opts.reuseaddr) for s in users):
            return True
        if sock.opts.reuseaddr:
            return False
        return any(c.local[1] == port for c in self.conns.values())

    def _ephemeral(self, sock: Socket) -> int:
        for _ in EPHEMERAL:
            port = self._next_port
            self._next_port = EPHEMERAL.start + (port + 1 - EPHEMERAL.start) % len(EPHEMERAL)
            if not self.ports.get(port) and port not in self.listeners \
                    and not any(c.local[1] == port for c in self.conns.values()):
                self.ports[port] = [sock]
                return port
        raise error(errno.EADDRNOTAVAIL)

    def release_port(self, sock: Socket) -> None:
        if sock.local is not None and sock in self.ports.get(sock.local[1], []):
            self.ports[sock.local[1]].remove(sock)

    def add_listener(self, sock: Socket) -> None:
        port = sock.local[1]
        if self.listeners.get(port) not in (None, sock):
            raise error(errno.EADDRINUSE)
        self.listeners[port] = sock

    def remove_listener(self, sock: Socket) -> None:
        """Closing a listener aborts what waits in its queue (Linux sends them a RST)."""
        self.listeners.pop(sock.local[1], None)
        self.release_port(sock)
        now = self.clock.now()
        for conn, parent in list(self.parents.items()):
            if parent is sock:
                self.apply(conn, conn.abort(now))
        sock.accept_queue.clear()

    def adopt(self, sock: Socket, conn: Connection) -> None:
        """An accepted connection now belongs to its own socket."""
        self.parents.pop(conn, None)

    def open(self, sock: Socket, remote: tuple[str, int]) -> Connection:
        """Active OPEN for `sock` (RFC 9293 3.10.1); toward a broadcast or multicast address
        it is an error (RFC 9293 3.9.1.1, MUST-46), ENETUNREACH as Linux reports it."""
        if not self.valid_peer(remote[0]):
            raise error(errno.ENETUNREACH)
        key = (sock.local[1], remote[0], remote[1])
        if key in self.conns:
            raise error(errno.EADDRNOTAVAIL)
        conn = self._new_connection(sock.opts, sock.local[1], remote)
        self.conns[key] = conn
        self.apply(conn, conn.open(self.clock.now()))
        return conn

    def _new_connection(self, opts, port: int, remote: tuple[str, int],
                        iss: int | None = None) -> Connection:
        local = (self.address, port)
        now = self.clock.now()
        return Connection(self.cfg, opts, local, remote,
                          self.isn.isn(local, remote, now) if iss is None else iss,
                          self.isn.ts_offset(local, remote), self.throttle, now)

    # ------------------------------------------------------------------ effects

    def apply(self, conn: Connection, fx: Effects) -> object:
        """Carry out one event's effects; returns the event's result. On a link that takes
        GSO packets, a flight of segments goes as one (gso.py)."""
        send_gso = getattr(self.link, "send_gso", None)
        if send_gso is not None and len(fx.segments) > 1:
            for seg, gso_size in gso.coalesce(fx.segments):
                packet = self._packet(conn.remote[0], seg, conn.opts.tos, conn.opts.ttl)
                if gso_size:
                    send_gso(packet, gso_size)
                else:
                    self.link.send(packet)
        else:
            for seg in fx.segments:
                self._send_tcp(conn.remote[0], seg, conn.opts.tos, conn.opts.ttl)
        if fx.timers:
            self.deadlines[conn] = min(fx.timers.values())
        else:
            self.deadlines.pop(conn, None)
        for notice in fx.notices:
            self._notice(conn, notice)
        return fx.result

    def _notice(self, conn: Connection, notice: Notice) -> None:
        parent = self.parents.get(conn)
        if notice is Notice.ESTABLISHED and parent is not None:
            parent.accept_queue.append(conn)
        elif notice is Notice.CLOSED:
            key = (conn.local[1], conn.remote[0], conn.remote[1])
            if self.conns.get(key) is conn:
                del self.conns[key]
            self.deadlines.pop(conn, None)
            if parent is not None and conn not in parent.accept_queue:
                del self.parents[conn]          # a half-open child went back to LISTEN
        elif notice is Notice.NEGATIVE_ADVICE:
            self.advice.append((self.clock.now(), conn.remote[0]))

    def valid_peer(self, addr: str) -> bool:
        """A unicast address another host may have: not multicast, broadcast (limited or of
        the host's subnet), 0.0.0.0 or loopback (RFC 1122 3.2.1.3). Asked for every packet
        received, so the answers are kept (for a bounded number of addresses)."""
        known = self._valid_peers.get(addr)
        if known is None:
            known = self._valid_peer(addr)
            if len(self._valid_peers) < 4096:
                self._valid_peers[addr] = known
        return known

    def _valid_peer(self, addr: str) -> bool:
        ip = ipaddress.IPv4Address(addr)
        broadcast = ip == LIMITED_BROADCAST or (self.subnet.prefixlen < 31
                                                and ip == self.subnet.broadcast_address)
        return not (ip.is_multicast or ip.is_unspecified or ip.is_loopback or broadcast)

    def _send_tcp(self, dst: str, seg: TCPSegment, tos: int = 0, ttl: int = 64) -> None:
        self.link.send(self._packet(dst, seg, tos, ttl))

    def _packet(self, dst: str, seg: TCPSegment, tos: int, ttl: int) -> bytes:
        ip = IPv4(self.address, dst, IPPROTO_TCP, tos=tos, ttl=ttl, ident=next(self._ident) & 0xFFFF)
        return build(ip, seg)

    # ------------------------------------------------------------------ input

    def receive(self, packet: bytes) -> None:
        """Process one inbound IPv4 packet at clock.now()."""
        try:
            ip = decode_ipv4(packet)
            if not ip.checksum_ok:
                raise Malformed("IPv4 header checksum")
            if ip.dst != self.address:
                raise Malformed(f"not for this host ({ip.dst})")
            if not self.valid_peer(ip.src):
                # RFC 1122 3.2.1.3 and RFC 9293 3.10.7.2 (MUST-63): a broadcast, multicast,
                # zero or loopback source is invalid here; an answer would go astray
                raise Malformed(f"invalid source address {ip.src}")
            if ip.flags_frag & 0x3FFF:
                raise Malformed("IP fragment (reassembly is not supported)")
            if ip.proto == IPPROTO_TCP:
                seg = decode_tcp(ip.payload, ip.src, ip.dst, strict=False)
                if not seg.checksum_ok:
                    raise Malformed("TCP checksum")
                self._tcp(ip, seg)
            elif ip.proto == IPPROTO_ICMP:
                self._icmp(ip)
            else:
                raise Malformed(f"IP protocol {ip.proto} not handled")
        except Malformed as exc:
            self.drops[str(exc)] += 1

    def _tcp(self, ip: IPv4, seg: TCPSegment) -> None:
        # Received IP precedence/TOS is ignored: never a reason to refuse or reset (RFC 2873).
        key = (seg.dport, ip.src, seg.sport)
        now = self.clock.now()
        conn = self.conns.get(key)
        if conn is not None and conn.state is State.TIME_WAIT and self._reopens(conn, seg):
            iss = seqnum.add(conn.snd_max, 65535 + 2)
            self.apply(conn, conn.abort(now))
            self._listen(ip, seg, iss)
        elif conn is not None:
            self.apply(conn, conn.on_segment(seg, now))
        else:
            self._listen(ip, seg, None)

    def _reopens(self, conn: Connection, seg: TCPSegment) -> bool:
        """RFC 1122 4.2.2.13 (MAY-2) and RFC 6191: a new SYN may end TIME-WAIT (where `conn`
        is) and open a new connection if its sequence number (or, with timestamps, its TSval)
        is larger."""
        if seg.flags & (ACK | RST) or not seg.flags & SYN or seg.dport not in self.listeners:
            return False
        ts = seg.option("TS")
        if conn.neg.timestamps and ts is not None:
            return seqnum.gt(ts[1], conn.ts_recent)
        return seqnum.gt(seg.seq, conn.rcv_nxt)

    def _listen(self, ip: IPv4, seg: TCPSegment, iss: int | None) -> None:
        """LISTEN (RFC 9293 3.10.7.2), or CLOSED (3.10.7.1) when nobody listens."""
        listener = self.listeners.get(seg.dport)
        if listener is None:
            reply = reset_for(seg, self.cfg.rst_window)
            if reply is not None:
                self._send_tcp(ip.src, reply)
            return
        if seg.flags & RST:
            return                                   # first check: ignore a RST
        if seg.flags & ACK:
            self._send_tcp(ip.src, reset_for(seg, self.cfg.rst_window))   # second: <SEQ=SEG.ACK><CTL=RST>
            return
        if not seg.flags & SYN:
            return                                   # fourth: anything else is dropped
        if len(listener.accept_queue) > listener.backlog:
            self.drops["accept queue full"] += 1
            return
        conn = self._new_connection(inherit(listener.opts), seg.dport, (ip.src, seg.sport), iss)
        self.conns[(seg.dport, ip.src, seg.sport)] = conn
        self.parents[conn] = listener
        self.apply(conn, conn.accept_syn(seg, self.clock.now()))

    def _icmp(self, ip: IPv4) -> None:
        msg = icmp.decode(ip)
        if msg.type == icmp.ECHO_REQUEST and msg.code == 0:
            self.link.send(icmp.echo_reply(ip, msg))
            return
        if msg.quoted is None or msg.quoted.proto != IPPROTO_TCP or msg.quoted.src != self.address:
            return
        conn = self.conns.get((msg.sport, msg.quoted.dst, msg.dport))
        meaning = icmp.classify(msg)
        if conn is None or meaning is None:
            return
        code, hard, mtu = meaning
        self.apply(conn, conn.on_icmp(IcmpError(code, hard, msg.seq, mtu), self.clock.now()))

    # ------------------------------------------------------------------ time

    def next_deadline(self) -> float | None:
        """The earliest pending timer (or held packet of an impaired link), clock seconds."""
        times = list(self.deadlines.values())
        link_deadline = getattr(self.link, "next_deadline", None)
        if link_deadline is not None and link_deadline() is not None:
            times.append(link_deadline())
        return min(times, default=None)

    def run_timers(self) -> None:
        """Fire every timer due at clock.now()."""
        now = self.clock.now()
        release = getattr(self.link, "release", None)
        if release is not None:
            release()
        for _ in range(8):      # a timer may arm another that is already due
            due = [c for c, when in self.deadlines.items() if when <= now]
            if not due:
                return
            for conn in due:
                self.apply(conn, conn.on_timer(now))

    def pump(self) -> int:
        """Process every packet waiting on the link now, then due timers; returns how many."""
        count = 0
        while (packet := self.link.recv(0)) is not None:
            self.receive(packet)
            count += 1
        self.run_timers()
        return count

    def wait(self, ready: Callable[[], bool], timeout: float | None, code: int) -> None:
        """Run the I/O loop until `ready()`; TimeoutError after `timeout` seconds."""
        if not self.clock.can_block:
            raise error(code, "would block: drive a virtual clock with poll and retries")
        end = None if timeout is None else self.clock.now() + timeout
        while not ready():
            now = self.clock.now()
            if end is not None and now >= end:
                raise TimeoutError("timed out")
            limit = [t for t in (self.next_deadline(), end) if t is not None]
            packet = self.link.recv(max(0.0, min(limit) - now) if limit else 0.5)
            burst = BURST
            while packet is not None:           # what has queued up meanwhile, in one go
                self.receive(packet)
                burst -= 1
                packet = self.link.recv(0) if burst else None
            self.run_timers()

    def poll(self, entries: Iterable[tuple[Socket, int]], timeout: float | None = None
             ) -> list[tuple[Socket, int]]:
        """Like select.poll over stack sockets; `timeout` in seconds (None: forever). With a
        virtual clock it never waits: it reports what is ready now."""
        entries = list(entries)

        def ready() -> list[tuple[Socket, int]]:
            return [(s, r) for s, ev in entries if (r := s.revents(ev))]

        if not ready() and timeout != 0 and self.clock.can_block:
            try:
                self.wait(lambda: bool(ready()), timeout, errno.EAGAIN)
            except TimeoutError:
                return []
        return ready()
