"""ICMP errors the runner injects (RFC 792; RFC 1122 4.2.3.9 says how TCP must react).

A script names ICMPv4 types and codes. In an IPv6 run the same line becomes the ICMPv6
error with that meaning (RFC 4443 section 3), as packetdrill does: unreachable codes map to
Destination Unreachable codes, `frag_needed` to Packet Too Big, `time_exceeded` and
`parameter_problem` to their ICMPv6 types.
"""

from __future__ import annotations

import struct

from harness.checksum import checksum
from harness.errors import CaseError, Loc
from harness.ip import IPPROTO_ICMP, IPPROTO_ICMPV6, IP, IPv6, encode_v4, encode_v6, upper_checksum

UNREACHABLE, TIME_EXCEEDED, PARAMETER_PROBLEM = 3, 11, 12
FRAG_NEEDED = 4
# ICMPv4 unreachable code -> (ICMPv6 type, code): RFC 4443 3.1 (1: destination
# unreachable; 0 no route, 1 administratively prohibited, 3 address unreachable, 4 port
# unreachable), 3.4 (4/1: unrecognized next header), 3.2 (2: packet too big).
_V6_UNREACHABLE = {0: (1, 0), 1: (1, 3), 2: (4, 1), 3: (1, 4), 4: (2, 0), 5: (1, 5),
                   6: (1, 0), 7: (1, 3), 9: (1, 1), 10: (1, 1), 11: (1, 0), 12: (1, 3),
                   13: (1, 1)}
_V6_OTHER = {TIME_EXCEEDED: (3, 0), PARAMETER_PROBLEM: (4, 0)}
V6_MIN_MTU = 1280


def build_icmp_error(ip: IP, icmp_type: int, code: int, quoted: bytes, mtu: int = 0,
                     loc: Loc | None = None) -> bytes:
    """An ICMP error about `quoted` (an IP packet the target sent), carried in `ip`."""
    if isinstance(ip, IPv6):
        return _icmpv6_error(ip, icmp_type, code, quoted, mtu, loc)
    rest = struct.pack("!HH", 0, mtu) if icmp_type == UNREACHABLE and code == FRAG_NEEDED else b"\0" * 4
    body = struct.pack("!BBH", icmp_type, code, 0) + rest + quoted[:28]
    body = body[:2] + struct.pack("!H", checksum(body)) + body[4:]
    ip.proto = IPPROTO_ICMP
    return encode_v4(ip, body)


def _icmpv6_error(ip: IPv6, icmp_type: int, code: int, quoted: bytes, mtu: int,
                  loc: Loc | None) -> bytes:
    """The ICMPv6 error (RFC 4443 2.1) meaning what the ICMPv4 type and code mean; it quotes
    the IPv6 header and the first 8 bytes of TCP, as an ICMPv4 error would."""
    mapped = _V6_UNREACHABLE.get(code) if icmp_type == UNREACHABLE else _V6_OTHER.get(icmp_type)
    if mapped is None:
        raise CaseError(loc, f"ICMP type {icmp_type} code {code} has no ICMPv6 counterpart "
                        "(RFC 4443); this case cannot run in IPv6")
    v6_type, v6_code = mapped
    rest = struct.pack("!I", mtu or V6_MIN_MTU) if v6_type == 2 else b"\0" * 4
    body = struct.pack("!BBH", v6_type, v6_code, 0) + rest + quoted[:48]
    ip.proto = IPPROTO_ICMPV6
    body = body[:2] + struct.pack("!H", upper_checksum(ip, body)) + body[4:]
    return encode_v6(ip, body)
