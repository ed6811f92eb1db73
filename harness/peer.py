"""The remote peer the runner plays: its addresses, its view of sequence and timestamp
numbers, and the translation between a script's relative numbers and the wire.

packetdrill's rules, which every script in the field assumes:
- the runner's own sequence numbers: in a `.pkt` (`remote_relative`), as packetdrill numbers
  them, absolute on a SYN (its value is the runner's ISN for the connection) and relative
  to that ISN on every other segment, both in what is injected (seq) and in what is
  expected (ack, SACK blocks); in a YAML case as they go on the wire;
- the target's ISN is learned from its SYN or SYN-ACK, and every seq of an outbound
  segment, every ack and SACK block of an injected one, is relative to it;
- the target's TS val is learned from its first timestamp on each connection; TS ecr of
  injected segments is written in script units and translated by that offset; TS val of
  outbound segments is not compared (it is the target's clock, RFC 7323 section 5.4).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from harness.errors import CaseError
from harness.icmp import build_icmp_error
from harness.ip import IP, IPv4, IPv6, encode, header_length, is_address
from harness.model import ACKED, ANY, PacketEvent
from harness.options import Plan
from harness.tcp import ACCECN_ORDERS, ACK, SYN, TCPSegment, flags_text

TARGET_PORT = 8080
REMOTE_PORT = 40000
MOD = 1 << 32


@dataclass
class Peer:
    local_ip: str = Plan.local_ip       # the target's address
    remote_ip: str = Plan.remote_ip     # ours
    local_port: int = TARGET_PORT       # the current connection: the last one a line named
    remote_port: int = REMOTE_PORT
    isns: dict[tuple[int, int], int] = field(default_factory=dict)   # (local, remote port)
    script_isns: dict[tuple[int, int], int] = field(default_factory=dict)   # its SYN's script seq
    ts_offsets: dict[tuple[int, int], int] = field(default_factory=dict)   # per connection
    ip_version: str = Plan.ip_version
    ts_tick_usecs: int = 0             # packetdrill's --tcp_ts_tick_usecs (0: TS val unchecked)
    ts_tolerance_usecs: float = 4000.0
    remote_relative: bool = False      # packetdrill's numbering of our own sequence space
    remote_isns: dict[tuple[int, int], int] = field(default_factory=dict)   # ours, per connection
    fresh: bool = False                # packetdrill mode: a socket() made since the last connection began
    accepted: int = 0                  # connections to a new listener so far (packetdrill mode)
    last_acks: dict[tuple[int, int], int] = field(default_factory=dict)   # the target's latest ACK, on the wire

    def ts_val_error(self, script_val: int, wire_val: int) -> str | None:
        """Why an outbound TS val is wrong, or None. With a tick, packetdrill checks it: the
        script's value, moved into the target's clock by the offset learned from the first
        outbound timestamp, may be off by at most the tolerance in time (RFC 7323 5.4 leaves
        the clock's rate to the sender; the script states it)."""
        if not self.ts_tick_usecs or self.ts_offset is None:
            return None
        off = (wire_val - script_val - self.ts_offset) % MOD
        ticks = min(off, MOD - off)
        if ticks * self.ts_tick_usecs > self.ts_tolerance_usecs:
            return (f"bad outbound TCP timestamp value: {ticks} ticks of {self.ts_tick_usecs} us "
                    f"from the script's, more than {self.ts_tolerance_usecs:.0f} us")
        return None

    def learned(self) -> Peer:
        """A copy of what the peer has learned so far (ISNs, TS clocks, the current
        connection), for `forget` to go back to when a segment taken on trial is refused."""
        return copy.deepcopy(self)

    def forget(self, learned: Peer) -> None:
        """Go back to what `learned` had learned."""
        self.__dict__.update(copy.deepcopy(learned).__dict__)

    @property
    def ts_offset(self) -> int | None:
        """The target's TS clock offset on the current connection: learned per connection,
        as packetdrill does, since Linux offsets each connection's timestamps its own way."""
        return self.ts_offsets.get((self.local_port, self.remote_port))

    @property
    def isn(self) -> int:
        """The target's ISN on the current connection (0 before its SYN is seen)."""
        return self.isns.get((self.local_port, self.remote_port), 0)

    # -- inbound (`<`) ---------------------------------------------------------------------
    def packet(self, event: PacketEvent) -> bytes:
        """The bytes of an injected segment (or ICMP error), numbers translated to the wire."""
        if event.ports is not None:
            self.remote_port, self.local_port = event.ports
        for name in ("src", "dst"):
            if name in event.ip and not is_address(str(event.ip[name]), self.ip_version):
                raise CaseError(event.loc, f"'{name} {event.ip[name]}' is not an address of "
                                f"this run's IP version ({self.ip_version})")
        seq = self._own_wire(event) if event.icmp is None else 0
        ip = self._header(event, event.ip.get("src", self.remote_ip),
                          event.ip.get("dst", self.local_ip))
        if event.icmp is not None:
            quoted = encode(self._header(None, self.local_ip, self.remote_ip),
                            TCPSegment(self.local_port, self.remote_port, self._wire(event.seq),
                                       0, ACK, 0, payload=bytes(event.length)))
            return build_icmp_error(ip, event.icmp["type"], event.icmp["code"], quoted,
                                    event.icmp.get("mtu", 0), event.loc)
        seg = TCPSegment(self.remote_port, self.local_port, seq,
                         self._wire(event.ack or 0, bool(event.flags & SYN)), event.flags,
                         _required(event, "win"),
                         event.urg or 0, self._wire_options(event), self._payload(event))
        return _spoil(encode(ip, seg), event)

    def _header(self, event: PacketEvent | None, src: str, dst: str) -> IP:
        """The IP header of an injected packet, in this run's IP version."""
        if event is None:
            return IPv6(src, dst) if self.ip_version == "ipv6" else IPv4(src, dst)
        if self.ip_version != "ipv6":
            if "flowlabel" in event.ip:
                raise CaseError(event.loc, "'flowlabel' is an IPv6 field; this run is IPv4")
            return IPv4(src, dst, tos=self._tos(event), ttl=_ip_int(event, "ttl", 64),
                        ident=_ip_int(event, "id", 0), ip_options=event.ip.get("ipopt", b""))
        for name in ("id", "ipopt", "bad_ip_csum"):
            if name in event.ip:
                raise CaseError(event.loc, f"'{name}' is an IPv4 field; this run is IPv6 "
                                "(say which IP versions the case runs in: ip_version)")
        return IPv6(src, dst, tos=self._tos(event), ttl=_ip_int(event, "ttl", 64),
                    flowlabel=_ip_int(event, "flowlabel", 0))

    @property
    def remote_isn(self) -> int:
        """Our ISN on the current connection, in packetdrill's numbering (0 when unknown)."""
        return self.remote_isns.get((self.local_port, self.remote_port), 0) if self.remote_relative else 0

    def _own_wire(self, event: PacketEvent) -> int:
        """An injected segment's seq on the wire. packetdrill: a SYN's is absolute and sets
        our ISN (a SYN-ACK always, as it answers our target's SYN; a SYN for a connection
        that has none yet); any other's counts from that ISN."""
        if event.seq is ACKED:
            acked = self.last_acks.get((self.local_port, self.remote_port))
            if acked is None:
                raise CaseError(event.loc, "'acked': no segment the target sent on this connection "
                                "has acknowledged anything yet")
            return acked
        if event.flags & SYN and not event.flags & ACK and self.fresh and event.ports is None:
            # packetdrill gives each connection to a new listener a port of its own
            self.remote_port = REMOTE_PORT + self.accepted
            self.accepted += 1
        if event.flags & SYN:
            self.fresh = False
        key = (self.local_port, self.remote_port)
        if event.flags & SYN:
            if event.flags & ACK or key not in self.remote_isns:
                self.remote_isns[key] = event.seq % MOD
            return event.seq % MOD
        return (event.seq + self.remote_isn) % MOD

    def script_ack(self, seg: TCPSegment) -> int:
        """An outbound segment's ack in the script's numbering (a SYN's is absolute)."""
        return seg.ack if seg.flags & SYN else (seg.ack - self.remote_isn) % MOD

    def script_sack(self, blocks: list[tuple[int, int]]) -> list[tuple[int, int]]:
        return [((l - self.remote_isn) % MOD, (r - self.remote_isn) % MOD) for l, r in blocks]

    def _wire(self, target_seq: int, syn: bool = False) -> int:
        """A number in the target's sequence space, as it is on the wire. packetdrill numbers
        it from the target's SYN's script value on a SYN only, from 0 (the ISN) elsewhere."""
        return (target_seq + self.isn + self._numbering_shift(syn)) % MOD

    def _numbering_shift(self, syn: bool, key: tuple[int, int] | None = None) -> int:
        if not self.remote_relative or syn:
            return 0
        return self.script_isns.get(key or (self.local_port, self.remote_port), 0)

    def _payload(self, event: PacketEvent) -> bytes:
        return event.payload if event.payload is not None else bytes(event.length)

    def _tos(self, event: PacketEvent) -> int:
        tos = _ip_int(event, "tos", 0)
        if event.ip.get("ecn") == -1:
            raise CaseError(event.loc, "ect01 (either ECT codepoint) is only for expected segments")
        return (tos & ~3) | event.ip["ecn"] if "ecn" in event.ip else tos

    def _wire_options(self, event: PacketEvent) -> list:
        if event.options is None:
            raise CaseError(event.loc, "'<...>' is only allowed on expected ('>') segments")
        out = []
        for opt in event.options:
            if any(v is ANY for v in opt[1:]):
                raise CaseError(event.loc, "'*' is only allowed on expected ('>') segments")
            if opt[0] == "TS":
                ecr = opt[2] + self.ts_offset if self.ts_offset is not None and opt[2] else opt[2]
                out.append(("TS", opt[1], ecr % MOD))
            elif opt[0] == "sack":
                out.append(("sack", [(self._wire(l), self._wire(r)) for l, r in opt[1]]))
            else:
                out.append(opt)
        return out

    # -- packetdrill's socket under test -----------------------------------------------------
    def new_socket(self) -> None:
        """The script made a socket: in packetdrill it becomes the socket under test, and the
        next connection (its SYN, or a SYN to it when it listens) is the one lines speak of."""
        self.fresh = self.remote_relative

    def under_test(self, seg: TCPSegment, event: PacketEvent) -> bool:
        """Whether an outbound segment is the socket under test's, as packetdrill sees it:
        segments of other connections (the FIN of a socket closed before a new one was
        made) are not compared with any line. With packetdrill's numbering only; a line
        naming its ports takes any segment."""
        if not self.remote_relative or event.ports is not None:
            return True
        if self.fresh:
            return bool(seg.flags & SYN) and not seg.flags & ACK   # the new socket's connect
        return (seg.sport, seg.dport) == (self.local_port, self.remote_port)

    # -- outbound (`>`) --------------------------------------------------------------------
    def learn(self, event: PacketEvent, seg: TCPSegment) -> None:
        """Learn the target's ISN, ports and TS clock from the segment matched to `event`."""
        self.local_port, self.remote_port = seg.sport, seg.dport
        self.fresh = False
        if seg.flags & ACK:
            self.last_acks[(seg.sport, seg.dport)] = seg.ack
        if seg.flags & SYN:      # a SYN's sequence number is the ISN by definition
            self.isns[(seg.sport, seg.dport)] = (seg.seq - event.seq) % MOD
            self.script_isns[(seg.sport, seg.dport)] = event.seq % MOD
        ts = seg.option("TS")
        if ts is not None and (seg.sport, seg.dport) not in self.ts_offsets:
            script_ts = next((o for o in event.options or [] if o[0] == "TS"), None)
            base = script_ts[1] if script_ts and script_ts[1] is not ANY else 0
            self.ts_offsets[(seg.sport, seg.dport)] = (ts[1] - base) % MOD

    def relative_seq(self, seg: TCPSegment) -> int:
        """An outbound segment's seq relative to the ISN of its own connection."""
        key = (seg.sport, seg.dport)
        shift = self._numbering_shift(bool(seg.flags & SYN), key)
        return (seg.seq - self.isns.get(key, 0) - shift) % MOD

    def notation(self, ip: IP, seg: TCPSegment, with_ip: bool = False) -> str:
        """A segment in the script's own notation, numbers relative where the script's are."""
        start = self.relative_seq(seg)
        text = f"{flags_text(seg.flags)} {start}:{(start + len(seg.payload)) % MOD}({len(seg.payload)})"
        if seg.flags & ACK:
            text += f" ack {self.script_ack(seg)}"
        text += f" win {seg.window}"
        if seg.urg:
            text += f" urg {seg.urg}"
        if seg.options:
            shown = [("sack", self.script_sack(o[1])) if o[0] == "sack" else o for o in seg.options]
            text += " <" + ",".join(option_text(o) for o in shown) + ">"
        if with_ip:
            text = f"(tos {ip.tos:#04x}, ttl {ip.ttl}) {seg.sport}>{seg.dport} " + text
        return text


def _spoil(packet: bytes, event: PacketEvent) -> bytes:
    """Make the checksums a case asks to be wrong wrong (`[bad_csum]`, `[bad_ip_csum]`)."""
    data = bytearray(packet)
    if event.ip.get("bad_ip_csum"):
        data[11] ^= 0xFF
    if event.ip.get("bad_csum"):
        data[header_length(packet) + 17] ^= 0xFF
    return bytes(data)


def option_text(opt: tuple) -> str:
    name = opt[0]
    if name == "TS":
        return f"TS val {_v(opt[1])} ecr {_v(opt[2])}"
    if name == "sack":
        return "sack " + " ".join(f"{_v(l)}:{_v(r)}" for l, r in opt[1])
    if name == "raw" and opt[1] == 34:                           # TCP Fast Open
        return "FO" + (f" {opt[2].hex()}" if opt[2] else "")
    if name == "raw" and opt[1] == 19 and len(opt[2]) == 16:    # MD5 signature (RFC 2385)
        return f"md5 {opt[2].hex()}"
    if name == "raw" and opt[1] in (172, 174) and len(opt[2]) % 3 == 0:   # AccECN (RFC 9768)
        order = ACCECN_ORDERS["e0b" if opt[1] == 172 else "e1b"][1]
        return "ECN " + " ".join(f"{field} {int.from_bytes(opt[2][i * 3:i * 3 + 3], 'big')}"
                                 for i, field in enumerate(order[:len(opt[2]) // 3]))
    if name == "raw" and opt[1] == 254 and opt[2][:2] == b"\xf9\x89":   # experimental TFO
        return "FOEXP" + (f" {opt[2][2:].hex()}" if opt[2][2:] else "")
    if name == "raw":
        return f"opt {opt[1]}" + (f" 0x{opt[2].hex()}" if opt[2] else "")
    if name == "bytes":
        return f"opt {opt[1][0]} len {opt[1][1]}" + (f" 0x{opt[1][2:].hex()}" if len(opt[1]) > 2 else "")
    return " ".join([name, *(_v(v) for v in opt[1:])])


def _v(value: object) -> str:
    return "*" if value is ANY else str(value)


def _required(event: PacketEvent, name: str) -> int:
    value = getattr(event, name)
    if value is None:
        raise CaseError(event.loc, f"an injected segment needs '{name} N'")
    return value


def _ip_int(event: PacketEvent, name: str, default: int) -> int:
    value = event.ip.get(name, default)
    if value is ANY:
        raise CaseError(event.loc, "'*' is only allowed on expected ('>') segments")
    return int(value)
