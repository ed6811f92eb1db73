"""Both IP versions on the wire, as the runner sees them: IPv4 (RFC 791 3.1) and IPv6
(RFC 8200 3), each carrying a TCP segment (harness.tcp).

The runner plays the remote peer in three address plans (packetdrill's `--ip_version`):
`ipv4`, `ipv6`, and `ipv4-mapped-ipv6` (IPv6 sockets, IPv4 on the wire). TCP itself is the
same in all of them; only the IP header and the checksum's pseudo-header differ
(RFC 9293 3.1 for IPv4's, RFC 8200 section 8.1 for IPv6's).

`decode` and `encode` take or give a whole IP packet, whichever version it is, so that the
rest of the runner (matching, notation, ladders) handles IPv4 and IPv6 segments alike: the
IPv6 header's traffic class and hop limit are read as `tos` and `ttl`, as packetdrill does.
Like harness.tcp, this is the harness's own code, not the stack's (stack/wire.py).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass

from harness import tcp
from harness.checksum import finish, word_sum
from harness.errors import Malformed
from harness.tcp import TCPSegment

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_ICMPV6 = 58
_V4_HDR = struct.Struct("!BBHHHBBH4s4s")     # version/IHL, TOS, total length, id,
V4_HEADER_LEN = _V4_HDR.size                # flags/fragment offset, TTL, protocol, checksum,
#                                             source, destination (RFC 791 3.1)
_V6_HDR = struct.Struct("!IHBB16s16s")       # version/class/flow, payload length, next, hops
V6_HEADER_LEN = _V6_HDR.size
VERSIONS = ("ipv4", "ipv4-mapped-ipv6", "ipv6")
_MORE_FRAGMENTS_OR_OFFSET = 0x3FFF          # of the flags/fragment offset field
_SOURCE_ROUTES = (131, 137)                 # loose and strict source and record route
_V4_MAX_OPTIONS = 40                        # IHL's 4 bits allow 60 header octets


@dataclass(slots=True)
class IPv4:
    """The header fields a case can set or check, in the header's order after the addresses;
    version, IHL and total length follow from the rest."""
    src: str
    dst: str
    tos: int = 0                      # type of service: DSCP and ECN
    ident: int = 0                    # identification
    flags_frag: int = 0x4000          # flags and fragment offset: Don't Fragment, offset 0
    ttl: int = 64                     # time to live
    proto: int = IPPROTO_TCP
    checksum: int | None = None       # to build: None computes it; decoded: the value received
    ip_options: bytes = b""           # as on the wire, padding included
    payload: bytes = b""              # decoded: the octets up to the total length
    checksum_ok: bool = True          # decoded: whether the header checksum was right


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


# -- pseudo-headers ------------------------------------------------------------------------

def _pseudo(src: bytes, dst: bytes, proto: int) -> int:
    """The pseudo-header's addresses and protocol as a word sum (harness.checksum), for both
    versions (RFC 9293 3.1, RFC 8200 8.1); the upper-layer length is added by its user."""
    return int.from_bytes(src + dst, "big") + proto


def final_destination(ip_options: bytes, dst: bytes) -> bytes:
    """The destination in TCP's pseudo-header: with a loose or strict source route under way,
    the route's last address, not the next hop the header names (RFC 9293 3.1: "the final
    destination"; RFC 791 3.1: the route data ends with it, and a pointer past the option's
    length means the route is done and the header's destination is the final one)."""
    i = 0
    while i < len(ip_options):
        kind = ip_options[i]
        if kind == 0:                                   # End of Option List
            break
        if kind == 1:                                   # No Operation
            i += 1
            continue
        if i + 1 == len(ip_options) or ip_options[i + 1] < 2:
            break                                       # no length, or a length that cannot be
        length = ip_options[i + 1]
        route_fits = length >= 7 and (length - 3) % 4 == 0 and i + length <= len(ip_options)
        if kind in _SOURCE_ROUTES and route_fits:
            pointer = ip_options[i + 2]
            return dst if pointer > length else ip_options[i + length - 4:i + length]
        i += length
    return dst


def _v4_octets(address: str) -> bytes:
    return socket.inet_pton(socket.AF_INET, address)


def _v6_octets(address: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, address)


def upper_checksum(ip: IPv6, body: bytes) -> int:
    """The checksum an upper-layer message `body` (its checksum field zero) should carry."""
    return finish(_pseudo(_v6_octets(ip.src), _v6_octets(ip.dst), ip.proto) + len(body)
                  + word_sum(body))


# -- IPv4 (RFC 791 3.1) --------------------------------------------------------------------

def encode_v4(ip: IPv4, upper: bytes) -> bytes:
    """An IPv4 header carrying `upper`: options padded with zeros to a 32-bit boundary,
    lengths computed, the header checksum computed unless `ip` gives one."""
    options = ip.ip_options + bytes(-len(ip.ip_options) % 4)
    if len(options) > _V4_MAX_OPTIONS:
        raise ValueError(f"IPv4 options take {len(options)} octets; a header holds {_V4_MAX_OPTIONS}")
    ihl = (V4_HEADER_LEN + len(options)) // 4
    header = _V4_HDR.pack(4 << 4 | ihl, ip.tos, ihl * 4 + len(upper), ip.ident, ip.flags_frag,
                          ip.ttl, ip.proto, 0, _v4_octets(ip.src), _v4_octets(ip.dst)) + options
    csum = ip.checksum if ip.checksum is not None else finish(word_sum(header))
    return b"".join((header[:10], csum.to_bytes(2, "big"), header[12:], upper))


def decode_v4(raw: bytes) -> IPv4:
    """An IPv4 header; the payload is cut to the total length (a link may pad a frame)."""
    if len(raw) < V4_HEADER_LEN:
        raise Malformed(f"IPv4 header truncated: {len(raw)} octets, fewer than {V4_HEADER_LEN}")
    first, tos, total, ident, flags_frag, ttl, proto, csum, src, dst = _V4_HDR.unpack_from(raw)
    if first >> 4 != 4:
        raise Malformed(f"IP version {first >> 4}, not 4")
    header_len = (first & 0xF) * 4
    if not V4_HEADER_LEN <= header_len <= len(raw):
        raise Malformed(f"IPv4 header length {first & 0xF} words invalid for {len(raw)} octets")
    if not header_len <= total <= len(raw):
        raise Malformed(f"IPv4 total length {total} does not fit {len(raw)} octets")
    return IPv4(socket.inet_ntop(socket.AF_INET, src), socket.inet_ntop(socket.AF_INET, dst),
                tos, ident, flags_frag, ttl, proto, csum, raw[V4_HEADER_LEN:header_len],
                raw[header_len:total], finish(word_sum(raw[:header_len])) == 0)


# -- IPv6 (RFC 8200 3) ---------------------------------------------------------------------

def encode_v6(ip: IPv6, upper: bytes) -> bytes:
    length = ip.payload_length if ip.payload_length is not None else len(upper)
    first = (6 << 28) | ((ip.tos & 0xFF) << 20) | (ip.flowlabel & 0xFFFFF)
    return _V6_HDR.pack(first, length, ip.proto, ip.ttl, _v6_octets(ip.src),
                        _v6_octets(ip.dst)) + upper


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


# -- TCP in either ---------------------------------------------------------------------------

def decode(raw: bytes) -> tuple[IP, TCPSegment]:
    """An IPv4 or IPv6 packet carrying TCP; raises `Malformed` for anything else."""
    raw = bytes(raw)
    if not raw:
        raise Malformed("empty packet")
    ip: IP
    if raw[0] >> 4 == 4:
        ip = decode_v4(raw)
        if ip.proto != IPPROTO_TCP:
            raise Malformed(f"IP protocol {ip.proto}, not TCP")
        if ip.flags_frag & _MORE_FRAGMENTS_OR_OFFSET:
            raise Malformed("IP fragment")
        pseudo = _pseudo(raw[12:16], final_destination(ip.ip_options, raw[16:20]), IPPROTO_TCP)
    else:
        ip = decode_v6(raw)
        if ip.proto != IPPROTO_TCP:
            raise Malformed(f"IPv6 next header {ip.proto}, not TCP")
        pseudo = _pseudo(raw[8:24], raw[24:40], IPPROTO_TCP)
    return ip, tcp.decode(ip.payload, pseudo)


def encode(ip: IP, seg: TCPSegment) -> bytes:
    """One packet carrying `seg`, checksums computed unless given."""
    if isinstance(ip, IPv4):
        dst = final_destination(ip.ip_options, _v4_octets(ip.dst))
        return encode_v4(ip, tcp.encode(seg, _pseudo(_v4_octets(ip.src), dst, IPPROTO_TCP)))
    pseudo = _pseudo(_v6_octets(ip.src), _v6_octets(ip.dst), IPPROTO_TCP)
    return encode_v6(ip, tcp.encode(seg, pseudo))


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
