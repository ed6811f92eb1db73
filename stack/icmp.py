"""ICMP for IPv4 (RFC 792): decoding errors for TCP, answering echo requests.

Theory of operation: `decode` turns an ICMP message into an `Icmp` record; for errors it
also decodes the quoted IP header and the first 8 octets of its TCP header (ports and sequence
number), which is all RFC 792 guarantees. `classify` maps type/code to what TCP must do with
it under RFC 1122 4.2.3.9: hard error, soft error, path-MTU change, or nothing (source quench
is silently discarded, RFC 9293 MUST-55). `echo_reply` builds the answer to a ping (RFC 1122
3.2.2.6 MUST).
"""

from __future__ import annotations

import errno
import struct
from dataclasses import dataclass

from .wire import IPPROTO_ICMP, IPPROTO_TCP, IPv4, Malformed, checksum, decode_ipv4, encode_ipv4

ECHO_REPLY, DEST_UNREACH, SOURCE_QUENCH, ECHO_REQUEST, TIME_EXCEEDED, PARAM_PROBLEM = 0, 3, 4, 8, 11, 12
FRAG_NEEDED = 4

# Destination-unreachable codes -> (errno, hard?). RFC 1122 4.2.3.9: codes 0, 1 and 5 are
# soft; 2 (protocol) and 3 (port) are hard; 4 is path MTU discovery (RFC 1191). The errno
# values are Linux's (icmp_err_convert).
_UNREACH = {
    0: (errno.ENETUNREACH, False), 1: (errno.EHOSTUNREACH, False),
    2: (errno.ENOPROTOOPT, True), 3: (errno.ECONNREFUSED, True),
    5: (errno.EOPNOTSUPP, False), 6: (errno.ENETUNREACH, False), 7: (errno.EHOSTDOWN, False),
    9: (errno.ENETUNREACH, False), 10: (errno.EHOSTUNREACH, False),
    11: (errno.ENETUNREACH, False), 12: (errno.EHOSTUNREACH, False),
    13: (errno.EHOSTUNREACH, False),
}


@dataclass
class Icmp:
    type: int
    code: int
    rest: bytes                     # octets 4-7: identifier/sequence or unused/next-hop MTU
    data: bytes                     # everything after the 8-octet header
    quoted: IPv4 | None = None      # errors: the IP header we sent
    sport: int = 0                  # errors quoting TCP: the ports and sequence number
    dport: int = 0
    seq: int = 0


def decode(ip: IPv4) -> Icmp:
    raw = ip.payload
    if len(raw) < 8:
        raise Malformed(f"ICMP message truncated ({len(raw)} bytes)")
    if checksum(raw) != 0:
        raise Malformed("ICMP checksum")
    msg = Icmp(raw[0], raw[1], bytes(raw[4:8]), bytes(raw[8:]))
    if msg.type in (DEST_UNREACH, SOURCE_QUENCH, TIME_EXCEEDED, PARAM_PROBLEM):
        msg.quoted = _quoted_header(msg.data)
        tcp = msg.data[msg.quoted.ihl * 4:msg.quoted.ihl * 4 + 8]
        if msg.quoted.proto == IPPROTO_TCP and len(tcp) == 8:
            msg.sport, msg.dport, msg.seq = struct.unpack("!HHI", tcp)
    return msg


def _quoted_header(data: bytes) -> IPv4:
    """The quoted IP header; the quoted datagram is cut short, so its total length is not
    checked (RFC 792: header plus 64 bits of data)."""
    if len(data) < 20 or data[0] >> 4 != 4:
        raise Malformed("ICMP error without a quoted IPv4 header")
    ihl = data[0] & 0xF
    padded = data[:2] + struct.pack("!H", len(data)) + data[4:]
    if ihl < 5 or len(data) < ihl * 4:
        raise Malformed("ICMP error quotes a bad IPv4 header")
    return decode_ipv4(padded)


def classify(msg: Icmp) -> tuple[int, bool, int | None] | None:
    """(errno, hard, next-hop MTU or None) for an error TCP must heed; None to ignore it."""
    if msg.type == DEST_UNREACH:
        if msg.code == FRAG_NEEDED:
            return errno.EMSGSIZE, False, struct.unpack("!H", msg.rest[2:4])[0] or 576
        known = _UNREACH.get(msg.code)
        return None if known is None else (*known, None)
    if msg.type == TIME_EXCEEDED:
        return errno.EHOSTUNREACH, False, None        # soft (RFC 1122 4.2.3.9)
    if msg.type == PARAM_PROBLEM:
        return errno.EPROTO, False, None              # soft (RFC 1122 4.2.3.9)
    return None                                       # incl. source quench (MUST-55)


def echo_reply(request: IPv4, msg: Icmp, tos: int = 0) -> bytes:
    """The reply to an echo request: same identifier, sequence and data (RFC 792)."""
    body = bytearray(struct.pack("!BBH", ECHO_REPLY, 0, 0) + msg.rest + msg.data)
    body[2:4] = struct.pack("!H", checksum(bytes(body)))
    return encode_ipv4(IPv4(request.dst, request.src, IPPROTO_ICMP, tos=request.tos or tos,
                            payload=bytes(body)))
