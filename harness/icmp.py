"""ICMP errors the runner injects (RFC 792; RFC 1122 4.2.3.9 says how TCP must react)."""

from __future__ import annotations

import struct

from stack.wire import IPPROTO_ICMP, IPv4, checksum, encode_ipv4


def build_icmp_error(ip: IPv4, icmp_type: int, code: int, quoted: bytes, mtu: int = 0) -> bytes:
    """An ICMP error about `quoted` (an IP packet the target sent): its header + 8 bytes."""
    rest = struct.pack("!HH", 0, mtu) if icmp_type == 3 and code == 4 else b"\0" * 4
    body = struct.pack("!BBH", icmp_type, code, 0) + rest + quoted[:28]
    body = body[:2] + struct.pack("!H", checksum(body)) + body[4:]
    ip.proto = IPPROTO_ICMP
    ip.payload = body
    return encode_ipv4(ip)
