"""Both IP versions on the wire, as the runner sees them: IPv4 through `stack.wire`, IPv6 here.

The runner plays the remote peer in three address plans (packetdrill's `--ip_version`):
`ipv4`, `ipv6`, and `ipv4-mapped-ipv6` (IPv6 sockets, IPv4 on the wire). TCP itself is the
same in all of them; only the IP header and the checksum's pseudo-header differ
(RFC 8200 section 3 for the IPv6 header, section 8.1 for the pseudo-header; RFC 9293 3.1).

`decode` and `encode` take or give a whole IP packet, whichever version it is, so that the
rest of the runner (matching, notation, ladders) handles IPv4 and IPv6 segments alike: the
IPv6 header's traffic class and hop limit are read as `tos` and `ttl`, as packetdrill does.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass, replace

from stack.wire import (IPPROTO_TCP, IPv4, Malformed, TCPSegment, build, checksum, decode_tcp,
                        encode_tcp, parse)

IPPROTO_ICMPV6 = 58
_V6_HDR = struct.Struct("!IHBB16s16s")       # version/class/flow, payload length, next, hops
V6_HEADER_LEN = _V6_HDR.size
VERSIONS = ("ipv4", "ipv4-mapped-ipv6", "ipv6")


@dataclass
class IPv6:
    src: str
    dst: str
    proto: int = IPPROTO_TCP          # next header (no extension headers are built or read)
    tos: int = 0                      # traffic class: DSCP and ECN, as IPv4's TOS octet
    ttl: int = 64                     # hop limit
    flowlabel: int = 0
    payload: bytes = b""
    payload_length: int | None = None
    checksum_ok: bool = True          # IPv6 has no header checksum
    ip_options: bytes = b""


IP = IPv4 | IPv6


def socket_address(ip_version: str, address: str, family: int) -> str:
    """`address` (the plan's, of the wire's family) as a socket of `family` names it: an IPv6
    socket in the ipv4-mapped-ipv6 plan names an IPv4 peer ::ffff:a.b.c.d (RFC 4291 2.5.5.2)."""
    if family == socket.AF_INET6 and ip_version == "ipv4-mapped-ipv6":
        return "::ffff:" + address
    return address


def _checksum6(src: str, dst: str, proto: int, body: bytes) -> int:
    head = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
            + struct.pack("!IxxxB", len(body), proto))
    return checksum(head + body)


def encode_v6(ip: IPv6, upper: bytes) -> bytes:
    length = ip.payload_length if ip.payload_length is not None else len(upper)
    first = (6 << 28) | ((ip.tos & 0xFF) << 20) | (ip.flowlabel & 0xFFFFF)
    return _V6_HDR.pack(first, length, ip.proto, ip.ttl,
                        socket.inet_pton(socket.AF_INET6, ip.src),
                        socket.inet_pton(socket.AF_INET6, ip.dst)) + upper


def upper_checksum(ip: IPv6, body: bytes) -> int:
    """The checksum an upper-layer message `body` (its checksum field zero) should carry."""
    return _checksum6(ip.src, ip.dst, ip.proto, body)


def _tcp6(ip: IPv6, seg: TCPSegment) -> bytes:
    raw = bytearray(encode_tcp(replace(seg, checksum=0), "0.0.0.0", "0.0.0.0"))
    csum = seg.checksum if seg.checksum is not None else _checksum6(ip.src, ip.dst, IPPROTO_TCP, bytes(raw))
    raw[16:18] = csum.to_bytes(2, "big")
    return bytes(raw)


def decode_v6(raw: bytes) -> IPv6:
    """An IPv6 header (RFC 8200 3); the payload is cut to the payload length."""
    if len(raw) < V6_HEADER_LEN:
        raise Malformed(f"IPv6 header truncated ({len(raw)} bytes)")
    first, length, nxt, hops, src, dst = _V6_HDR.unpack_from(raw)
    if first >> 28 != 6:
        raise Malformed(f"IP version {first >> 28}, not 6")
    if V6_HEADER_LEN + length > len(raw):
        raise Malformed(f"IPv6 payload length {length} does not fit {len(raw)} bytes")
    return IPv6(socket.inet_ntop(socket.AF_INET6, src), socket.inet_ntop(socket.AF_INET6, dst),
                nxt, (first >> 20) & 0xFF, hops, first & 0xFFFFF,
                bytes(raw[V6_HEADER_LEN:V6_HEADER_LEN + length]), payload_length=length)


def decode(raw: bytes) -> tuple[IP, TCPSegment]:
    """An IPv4 or IPv6 packet carrying TCP; raises `Malformed` for anything else."""
    if not raw:
        raise Malformed("empty packet")
    if raw[0] >> 4 == 4:
        return parse(raw)
    ip = decode_v6(raw)
    if ip.proto != IPPROTO_TCP:
        raise Malformed(f"IPv6 next header {ip.proto}, not TCP")
    seg = decode_tcp(ip.payload, "0.0.0.0", "0.0.0.0")
    seg.checksum_ok = _checksum6(ip.src, ip.dst, IPPROTO_TCP, ip.payload) == 0
    return ip, seg


def encode(ip: IP, seg: TCPSegment) -> bytes:
    """One packet carrying `seg`, checksums computed unless given."""
    if isinstance(ip, IPv4):
        return build(ip, seg)
    return encode_v6(ip, _tcp6(ip, seg))


def header_length(raw: bytes) -> int:
    """Where the IP packet's payload starts."""
    return (raw[0] & 0xF) * 4 if raw[0] >> 4 == 4 else V6_HEADER_LEN


def protocol(raw: bytes) -> int:
    """The IP protocol (IPv6: next header) of a packet, -1 when it is too short to say."""
    if len(raw) >= 20 and raw[0] >> 4 == 4:
        return raw[9]
    if len(raw) >= V6_HEADER_LEN and raw[0] >> 4 == 6:
        return raw[6]
    return -1


def is_address(text: str, ip_version: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return (":" in text) == (ip_version == "ipv6")
