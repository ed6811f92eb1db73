"""Mutants of what is on the wire: checksums, options and MSS (RFC 9293 3.1-3.2, 3.7.1), the
window field, the urgent pointer (3.8.5), IP fields the application sets (RFC 1122 4.2.4.2,
4.2.2.19), addresses (RFC 1122 4.2.3.10), the ISN clock, and IPv4 precedence (RFC 2873)."""

from __future__ import annotations

import errno
import ipaddress
import select
from dataclasses import replace

from stack import connection, handshake, host, seqnum, socket as stack_socket
from stack.connection import Connection
from stack.events import State
from stack.host import Host
from stack.isn import IsnGenerator
from stack.wire import ACK, RST, SYN, URG, Malformed, TCPSegment, decode_ipv4, decode_options

from harness.mutate.patching import Patch, constant, guard, method, mutant

C = Connection


def _decoded(change):
    """Segments as the host decodes them, changed by `change(segment)`."""
    def build(orig):
        def decode(raw: bytes, src: str, dst: str, strict: bool = True) -> TCPSegment:
            return change(orig(raw, src, dst, strict), raw)
        return decode
    return method(host, "decode_tcp", build)


def _strict_options(seg: TCPSegment, raw: bytes) -> TCPSegment:
    offset = raw[12] >> 4
    try:
        decode_options(raw[20:offset * 4], strict=True)
    except Malformed as exc:
        raise RuntimeError(f"option parser crashed: {exc}") from None
    return seg


def _unknown_option_drops(seg: TCPSegment, raw: bytes) -> TCPSegment:
    if seg.option("raw") is not None:
        raise Malformed("unknown TCP option")
    return seg


def _cut_at_nop(seg: TCPSegment, raw: bytes) -> TCPSegment:
    if ("nop",) in seg.options:
        seg.options = seg.options[:seg.options.index(("nop",))]
    return seg


_KNOWN_KINDS = frozenset({0, 1, 2, 3, 4, 5, 8})


def _unknown_option_one_octet(seg: TCPSegment, raw: bytes) -> TCPSegment:
    """The first unknown option is taken as one octet: its length octet is parsed as the
    next option's kind."""
    area = raw[20:(raw[12] >> 4) * 4]
    i = 0
    while i < len(area) and area[i] in _KNOWN_KINDS and area[i] != 0:
        i += 1 if area[i] == 1 else max(area[i + 1] if i + 1 < len(area) else 1, 1)
    if i < len(area) and area[i] not in _KNOWN_KINDS:
        seg.options = (decode_options(area[:i], strict=False)
                       + decode_options(area[i + 1:], strict=False))
    return seg


def _broadcast_taken(orig):
    """A datagram to a broadcast or multicast address is taken as if sent to this host."""
    def receive(self: Host, packet: bytes) -> None:
        try:
            dst = decode_ipv4(packet).dst
        except Malformed:
            dst = self.address
        group = ipaddress.IPv4Address(dst)
        if dst != self.address and (group.is_multicast or dst == "255.255.255.255"
                                    or group == self.subnet.broadcast_address):
            real, self.address = self.address, dst
            try:
                orig(self, packet)
            finally:
                self.address = real
        else:
            orig(self, packet)
    return receive


def _source_address(pick):
    """Segments leave from the address `pick(host, segment)` names (None: the host's)."""
    def build(orig):
        def packet(self: Host, dst: str, seg: TCPSegment, tos: int, ttl: int) -> bytes:
            other = pick(self, seg)
            if other is None:
                return orig(self, dst, seg, tos, ttl)
            real, self.address = self.address, other
            try:
                return orig(self, dst, seg, tos, ttl)
            finally:
                self.address = real
        return packet
    return method(Host, "_packet", build)


def _refuse_bind(sock, address) -> None:
    raise stack_socket.error(errno.EADDRNOTAVAIL)


def _eol_drops(seg: TCPSegment, raw: bytes) -> TCPSegment:
    if ("eol",) in seg.options:
        raise Malformed("EOL option")
    return seg


def _options_only_on_syn(seg: TCPSegment, raw: bytes) -> TCPSegment:
    if not seg.flags & SYN:
        seg.options = []
    return seg


def _bad_checksum(flip: int):
    def build(orig):
        def packet(ip, seg: TCPSegment) -> bytes:
            raw = bytearray(orig(ip, seg))
            at = (raw[0] & 0xF) * 4 + 16
            raw[at] ^= flip
            return bytes(raw)
        return packet
    return method(host, "build", build)


def _negotiated(change):
    def build(orig):
        def negotiate(ours, syn: TCPSegment):
            return change(orig(ours, syn), syn)
        return negotiate
    return method(handshake, "negotiate", build)


def _syn_options_without_mss(orig):
    def options(offer, tsval: int = 0, tsecr: int = 0) -> list[tuple]:
        return [opt for opt in orig(offer, tsval, tsecr) if opt[0] != "mss"]
    return options


def _mss_everywhere(orig):
    def options(neg, tsval: int, tsecr: int, sack_blocks) -> list[tuple]:
        return [("mss", 1460), *orig(neg, tsval, tsecr, sack_blocks)]
    return options


def _signed_window(orig):
    def take(self: Connection, seg: TCPSegment, force: bool = False) -> None:
        if seg.window & 0x8000 and not seg.flags & SYN:
            seg = replace(seg, window=seg.window - 0x10000)
        orig(self, seg, force)
        self.snd_wnd = max(self.snd_wnd, 0)
    return take


def _window_16_bits(orig):
    def take(self: Connection, seg: TCPSegment, force: bool = False) -> None:
        orig(self, seg, force)
        self.snd_wnd &= 0xFFFF
    return take


def _urgent_shifted(then):
    def build(orig):
        def mark(self: Connection, seg: TCPSegment) -> None:
            orig(self, seg)
            then(self, seg)
        return mark
    return build


def _no_pollpri(orig):
    def revents(self, events: int) -> int:
        return orig(self, events) & ~select.POLLPRI
    return revents


def _urgent_not_advanced(orig):
    """RCV.UP is taken from the first urgent segment and never moved on."""
    def urgent(self: Connection, seg: TCPSegment) -> None:
        if self.rcv_up is None or not seqnum.gt(self.rcv_up, self.rcv_nxt):
            orig(self, seg)
    return urgent


def _ip_field(field: str, value: int):
    def build(orig):
        def packet(self: Host, dst: str, seg: TCPSegment, tos: int, ttl: int) -> bytes:
            fields = {"tos": tos, "ttl": ttl, field: value}
            return orig(self, dst, seg, fields["tos"], fields["ttl"])
        return packet
    return method(Host, "_packet", build)


def _tos_only_before_connect(orig: dict) -> dict:
    setters = dict(orig)
    key = next(k for k in setters if k[1] == stack_socket._pysocket.IP_TOS
               and k[0] == stack_socket._IP)
    first = setters[key]
    setters[key] = lambda sock, number, raw: first(sock, number, raw) if sock.conn is None else None
    return setters


def _ip_options_dropped(orig):
    def receive(self: Host, packet: bytes) -> None:
        if packet and packet[0] & 0xF > 5:
            self.drops["IP options"] += 1
            return
        orig(self, packet)
    return receive


def _invalid_source_taken(orig):
    def receive(self: Host, packet: bytes) -> None:
        try:
            self._valid_peers[decode_ipv4(packet).src] = True
        except Malformed:
            pass
        orig(self, packet)
    return receive


def _open_anywhere(orig):
    def open_(self: Host, sock, remote):
        self._valid_peers[remote[0]] = True
        return orig(self, sock, remote)
    return open_


def _precedence(ip) -> int:
    return ip.tos >> 5


def _precedence_change_resets(orig):
    def tcp(self: Host, ip, seg: TCPSegment) -> None:
        conn = self.conns.get((seg.dport, ip.src, seg.sport))
        if conn is not None and conn.state is not State.CLOSED:
            seen = conn.__dict__.setdefault("mutant_precedence", _precedence(ip))
            if seen != _precedence(ip) and not seg.flags & RST:
                self.apply(conn, conn.abort(self.clock.now()))
                return
        orig(self, ip, seg)
    return tcp


def _precedence_mismatch_resets(orig):
    def tcp(self: Host, ip, seg: TCPSegment) -> None:
        conn = self.conns.get((seg.dport, ip.src, seg.sport))
        if conn is not None and conn.state is not State.CLOSED and not seg.flags & RST \
                and _precedence(ip) != conn.opts.tos >> 5:
            self.apply(conn, conn.abort(self.clock.now()))
            if conn.state is State.SYN_SENT or not seg.flags & ACK:
                self._send_tcp(ip.src, TCPSegment(seg.dport, seg.sport, seg.ack, 0, RST, 0))
            return
        orig(self, ip, seg)
    return tcp


def _precedence_syn_refused(orig):
    def tcp(self: Host, ip, seg: TCPSegment) -> None:
        if seg.flags & SYN and not seg.flags & (ACK | RST) and _precedence(ip) \
                and (seg.dport, ip.src, seg.sport) not in self.conns:
            self._send_tcp(ip.src, TCPSegment(seg.dport, seg.sport, 0, seqnum.add(seg.seq, 1),
                                              RST | ACK, 0))
            return
        orig(self, ip, seg)
    return tcp


MUTANTS = [
    mutant("checksum-not-verified", ["rfc9293:MUST-3", "rfc1122:4.2.2.7-b"],
           "segments with a wrong TCP checksum are accepted",
           _decoded(lambda seg, raw: replace(seg, checksum_ok=True))),
    mutant("checksum-wrong-on-send", ["rfc9293:MUST-2", "rfc1122:4.2.2.7-a"],
           "every segment sent has one bit of its checksum flipped", _bad_checksum(0x01)),
    mutant("checksum-complemented-on-send", ["rfc9293:MUST-2", "rfc1122:4.2.2.7-a"],
           "every segment sent carries the one's complement of its checksum", _bad_checksum(0xFF)),
    mutant("options-ignored-after-syn", ["rfc9293:MUST-5", "rfc1122:4.2.2.5-a"],
           "options are parsed on SYN segments only", _decoded(_options_only_on_syn)),
    mutant("unknown-option-drops-segment", ["rfc9293:MUST-6", "rfc1122:4.2.2.5-b"],
           "a segment with an option the stack does not know is dropped", _decoded(_unknown_option_drops)),
    mutant("bad-option-length-crashes", ["rfc9293:MUST-7", "rfc1122:4.2.2.5-c"],
           "an option with an illegal length crashes the stack",
           _decoded(_strict_options)),
    mutant("nop-ends-options", ["rfc9293:MUST-4", "rfc9293:MUST-64"],
           "options after a NOP are not parsed (NOP taken as the end of the list)",
           _decoded(_cut_at_nop)),
    mutant("unknown-option-length-ignored", ["rfc9293:MUST-68", "rfc9293:MUST-6", "rfc1122:4.2.2.5-b"],
           "an unknown option is taken as one octet, its length octet as the next option",
           _decoded(_unknown_option_one_octet)),
    mutant("eol-drops-segment", ["rfc9293:MUST-4", "rfc9293:MUST-69"],
           "a segment whose options contain EOL is dropped", _decoded(_eol_drops)),
    mutant("mss-option-not-sent", ["rfc9293:MUST-14", "rfc9293:SHLD-5", "rfc1122:4.2.2.6-a",
                                   "rfc1122:4.2.2.6-b"],
           "SYNs carry no MSS option",
           method(handshake, "syn_options", _syn_options_without_mss)),
    mutant("mss-option-on-every-segment", ["rfc9293:MUST-65"],
           "segments other than SYNs carry an MSS option",
           method(connection, "segment_options", _mss_everywhere)),
    mutant("peer-mss-ignored", ["rfc9293:MUST-14", "rfc1122:4.2.2.6-a", "rfc9293:MUST-16",
                                "rfc1122:4.2.2.6-e"],
           "the peer's MSS option is ignored: segments are sized by our MTU",
           _negotiated(lambda neg, syn: replace(neg, peer_mss=1460))),
    mutant("missing-mss-not-536", ["rfc9293:MUST-15", "rfc1122:4.2.2.6-d"],
           "without an MSS option the send MSS is 1460, not 536",
           _negotiated(lambda neg, syn: neg if syn.option("mss") else replace(neg, peer_mss=1460))),
    mutant("send-mss-ignores-options", ["rfc9293:MUST-16", "rfc1122:4.2.2.6-e"],
           "the effective send MSS does not subtract the timestamp option's 12 octets",
           method(C, "mss", lambda orig: property(lambda self: orig.fget(self)
                                                  + (12 if self.neg.timestamps else 0)))),
    mutant("send-mss-ignores-path-mtu", ["rfc9293:MUST-16", "rfc1122:4.2.2.6-e"],
           "the effective send MSS ignores the path MTU and TCP_MAXSEG",
           method(C, "mss", lambda orig: property(lambda self: max(
               self.neg.peer_mss - (12 if self.neg.timestamps else 0), 64)))),
    mutant("advertised-mss-too-large", ["rfc9293:MUST-67", "rfc1122:4.2.2.6-a"],
           "the MSS announced is MTU - 20, beyond what the host can receive",
           method(C, "adv_mss", lambda orig: property(lambda self: self.cfg.mtu - 20))),
    mutant("window-field-signed", ["rfc9293:MUST-1", "rfc1122:4.2.2.3-a"],
           "a window field of 32768 or more is read as negative (a closed window)",
           method(C, "_take_window", _signed_window)),
    mutant("window-kept-in-16-bits", ["rfc9293:REC-1", "rfc1122:4.2.2.3-b"],
           "the scaled send window is kept in 16 bits", method(C, "_take_window", _window_16_bits)),
    # urgent data (RFC 9293 3.8.5, RFC 1122 4.2.2.4)
    mutant("urgent-pointer-ignored", ["rfc9293:MUST-30", "rfc9293:MUST-32", "rfc1122:4.2.2.4-c",
                                      "rfc793:transition:ESTABLISHED:urg"],
           "the urgent pointer of arriving segments is ignored", guard(C, "_urgent", lambda self, seg: True)),
    mutant("urgent-ignored-in-fin-wait-1", ["rfc793:transition:FIN-WAIT-1:urg"],
           "the urgent pointer is ignored in FIN-WAIT-1",
           guard(C, "_urgent", lambda self, seg: self.state is State.FIN_WAIT_1)),
    mutant("urgent-not-signalled", ["rfc9293:MUST-32", "rfc1122:4.2.2.4-c"],
           "urgent data arrives without telling the application (poll never reports POLLPRI)",
           method(stack_socket.Socket, "revents", _no_pollpri)),
    mutant("urgent-pointer-not-advanced", ["rfc793:transition:ESTABLISHED:urg", "rfc9293:MUST-31",
                                           "rfc1122:4.2.2.4-b"],
           "a later segment's urgent pointer does not extend the urgent data already signalled",
           method(C, "_urgent", _urgent_not_advanced)),
    mutant("urgent-pending-hidden", ["rfc9293:MUST-33", "rfc1122:4.2.2.4-d"],
           "the application cannot learn that urgent data is pending",
           constant(C, "urgent_pending", False), constant(C, "at_mark", False)),
    mutant("urgent-never-sent", ["rfc9293:MUST-30", "rfc9293:MUST-62"],
           "MSG_OOB data goes without URG", guard(C, "_mark_urgent", lambda self, seg: True)),
    mutant("urgent-pointer-one-past", ["rfc9293:MUST-62", "rfc1122:4.2.2.4-a"],
           "the urgent pointer sent points one octet past the octet after the urgent data",
           method(C, "_mark_urgent", _urgent_shifted(
               lambda self, seg: setattr(seg, "urg", seg.urg + 1) if seg.flags & URG else None))),
    mutant("urgent-pointer-wraps", ["rfc9293:MUST-31", "rfc1122:4.2.2.4-b"],
           "an urgent pointer beyond 65535 wraps around instead of staying at 65535",
           method(C, "_mark_urgent", _urgent_shifted(
               lambda self, seg: setattr(seg, "urg", seqnum.diff(self.snd_up, seg.seq) & 0xFFFF)
               if seg.flags & URG else None))),
    mutant("zero-window-drops-rst-and-urg", ["rfc9293:MUST-66"],
           "with a zero receive window every segment is unacceptable, RST and URG included",
           guard(C, "_acceptable", lambda self, seg: self.rcv_wnd == 0, lambda self, seg: False)),
    # IP fields, addresses, ISN
    mutant("ttl-not-applied", ["rfc9293:MUST-49", "rfc1122:4.2.2.19-a"],
           "IP_TTL is ignored: segments go with TTL 64", _ip_field("ttl", 64)),
    mutant("tos-not-applied", ["rfc9293:MUST-48", "rfc1122:4.2.4.2-a", "rfc9293:SHLD-22",
                               "rfc1122:4.2.4.2-b"],
           "IP_TOS is ignored: segments go with TOS 0", _ip_field("tos", 0)),
    mutant("tos-fixed-once-connected", ["rfc9293:SHLD-21", "rfc1122:4.2.4.2-c"],
           "IP_TOS set on a connected socket has no effect",
           Patch(stack_socket, "_SETTERS", _tos_only_before_connect)),
    mutant("ip-options-drop-segment", ["rfc9293:MUST-50", "rfc1122:4.2.3.8-a"],
           "a segment in an IP datagram with options is dropped",
           method(Host, "receive", _ip_options_dropped)),
    mutant("invalid-source-answered", ["rfc9293:MUST-63", "rfc1122:4.2.3.10-b"],
           "segments from broadcast, multicast or loopback sources are processed",
           method(Host, "receive", _invalid_source_taken)),
    mutant("open-to-broadcast-allowed", ["rfc9293:MUST-46", "rfc1122:4.2.3.10-a", "rfc1122:4.2.3.14-a"],
           "an active OPEN toward a broadcast or multicast address is attempted",
           method(Host, "open", _open_anywhere)),
    mutant("broadcast-destination-accepted", ["rfc9293:MUST-57", "rfc1122:4.2.3.10-c",
                                              "rfc1122:4.2.3.14-b"],
           "segments sent to a broadcast or multicast address are processed (and answered)",
           method(Host, "receive", _broadcast_taken)),
    mutant("syn-from-unspecified-address", ["rfc9293:MUST-44", "rfc1122:4.2.3.7-a"],
           "an active open's SYN leaves from 0.0.0.0 instead of the address IP chooses",
           _source_address(lambda host, seg: "0.0.0.0" if seg.flags & (SYN | ACK) == SYN else None)),
    mutant("source-address-changes", ["rfc9293:MUST-45", "rfc1122:4.2.3.7-b"],
           "after the handshake, segments leave from another local address",
           _source_address(lambda host, seg: None if seg.flags & SYN else
                           str(ipaddress.IPv4Address(host.address) + 100))),
    mutant("bind-to-local-address-refused", ["rfc9293:MUST-43", "rfc1122:4.2.4.4-a"],
           "OPEN with a local address (bind to the host's address) fails with EADDRNOTAVAIL",
           guard(stack_socket.Socket, "bind", lambda sock, address: address[0] not in ("", "0.0.0.0"),
                 _refuse_bind)),
    mutant("isn-without-clock", ["rfc9293:MUST-8", "rfc1122:4.2.2.9-a"],
           "the ISN does not advance with time (a fixed function of the four-tuple)",
           method(IsnGenerator, "isn", lambda orig: lambda self, local, remote, now:
                  self._hash(b"isn", local, remote))),
    mutant("time-wait-syn-ignores-timestamps", ["rfc9293:SHLD-4"],
           "a SYN in TIME-WAIT is judged by its sequence number even when timestamps are on",
           method(Host, "_reopens", lambda orig: lambda self, conn, seg: not seg.flags & (ACK | RST)
                  and bool(seg.flags & SYN) and seg.dport in self.listeners
                  and seqnum.gt(seg.seq, conn.rcv_nxt))),
    # precedence (RFC 2873)
    mutant("precedence-change-resets", ["rfc2873:4.2-no-reset-on-precedence-change",
                                        "rfc2873:4-ignore-precedence"],
           "a segment whose precedence differs from the connection's first one resets it",
           method(Host, "_tcp", _precedence_change_resets)),
    mutant("precedence-mismatch-resets", ["rfc2873:4-allow-asymmetric-precedence",
                                          "rfc2873:4.1-handshake-ignores-precedence",
                                          "rfc2873:4-ignore-precedence"],
           "a segment whose precedence differs from our own resets the connection (RFC 793 rule)",
           method(Host, "_tcp", _precedence_mismatch_resets)),
    mutant("precedence-syn-refused", ["rfc2873:4.1-handshake-ignores-precedence",
                                      "rfc2873:4-ignore-precedence"],
           "a SYN with non-zero precedence is refused with a RST",
           method(Host, "_tcp", _precedence_syn_refused)),
]
