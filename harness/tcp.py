"""TCP segments on the wire as the harness reads and writes them: the header (RFC 9293
section 3.1), its options (RFC 9293 3.2 and the RFC that defines each kind), and the control
bits in the letters scripts use.

This is the judge's own codec. The project's stack has another (stack/wire.py) and must not
be judged with it: a bug shared by the decoder and the thing decoded would pass unseen. The
tests hold this module against scapy instead.

Nothing here knows IP. The TCP checksum also covers a pseudo-header of the IP version in use
(RFC 9293 3.1 for IPv4, RFC 8200 8.1 for IPv6); harness.ip passes its addresses and protocol
in as `pseudo`, a number congruent to their 16-bit words' sum (harness.checksum), and this
module adds the TCP length.

Options are tuples, the same the script grammar writes:
  ("eol",)  ("nop",)  ("mss", n)  ("wscale", n)  ("sackOK",)  ("sack", [(left, right), ...])
  ("TS", val, ecr)    ("raw", kind, data) for every other kind: TCP Fast Open (34, RFC 7413),
                      the shared experimental kinds 253 and 254 (RFC 6994), unknown ones
  ("bytes", octets)   built only: octets sent as they are, also a malformed option.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Callable

from harness.checksum import finish, word_sum
from harness.errors import Malformed

# Control bits, the low octet of the header's fourth 32-bit word (RFC 9293 3.1; CWR and
# ECE are RFC 3168's). AE is Accurate ECN's (RFC 9768 3.2.1), the last of the four bits before
# them (RFC 3540's NS): here it is bit 8 of `flags`, and `reserved` keeps the other three.
FIN, SYN, RST, PSH, ACK, URG, ECE, CWR, AE = 1, 2, 4, 8, 16, 32, 64, 128, 256
# Scripts write them as tcpdump does, in this order; '.' is ACK and '-' no bit at all.
_LETTERS = (("S", SYN), ("F", FIN), ("R", RST), ("P", PSH), ("U", URG), ("E", ECE),
            ("W", CWR), ("A", AE), (".", ACK))
_BIT = dict(_LETTERS)
# RFC 9768 3.2.2: the ACE counter is AE, CWR and ECE read as one 3-bit number, AE highest.
# packetdrill writes it as a digit among the flags (`.5`, `P5.`) in place of E, W and A.
ACE_BITS = ((4, AE), (2, CWR), (1, ECE))

# Option kinds: End of Option List, No-Operation, Maximum Segment Size (RFC 9293 3.2),
# Window Scale and Timestamps (RFC 7323 2.2, 3.2), SACK-Permitted and SACK (RFC 2018 2, 3).
EOL, NOP, MSS, WSCALE, SACK_OK, SACK, TIMESTAMPS = 0, 1, 2, 3, 4, 5, 8
# The one length (kind and length octets included) each of these may have.
# The AccECN option's two kinds by their first counter, and the order of their 24-bit
# counters (RFC 9768 3.2.3): bytes received with ECT(0), CE and ECT(1), or the reverse.
ACCECN_ORDERS = {"e0b": (172, ("e0b", "ceb", "e1b")), "e1b": (174, ("e1b", "ceb", "e0b"))}
_FIXED_LENGTH = {MSS: 4, WSCALE: 3, SACK_OK: 2, TIMESTAMPS: 10}
_MAX_OPTIONS = 40        # the data offset's 4 bits allow 60 header octets, 20 are fixed

_HEADER = struct.Struct("!HHIIBBHHH")   # ports, seq, ack, offset+reserved, bits, window,
_HEADER_LEN = _HEADER.size              # checksum, urgent pointer
_U16 = struct.Struct("!H")
_U32_PAIR = struct.Struct("!II")
_WORD = 0xFFFFFFFF

Option = tuple


@dataclass(slots=True)
class TCPSegment:
    sport: int                       # source port
    dport: int                       # destination port
    seq: int                         # sequence number
    ack: int                         # acknowledgment number
    flags: int                       # control bits
    window: int
    urg: int = 0                     # urgent pointer
    options: list[Option] = field(default_factory=list)
    payload: bytes = b""             # the data after the header
    checksum: int | None = None      # to build: None computes it; decoded: the value received
    data_offset: int | None = None   # to build: None computes it from the options
    checksum_ok: bool = True         # decoded: whether the checksum was right
    reserved: int = 0                # the 4 bits between data offset and control bits

    def option(self, name: str) -> Option | None:
        """The first option called `name`, or None."""
        return next((opt for opt in self.options if opt[0] == name), None)


def flags_text(flags: int) -> str:
    """The control bits as a script writes them: 'S.' for SYN and ACK, '-' for none."""
    return "".join(letter for letter, bit in _LETTERS if flags & bit) or "-"


def flags_value(text: str) -> int:
    """The control bits `text` names (the inverse of `flags_text`); a digit 0-7 is the ACE
    counter, which excludes the letters E, W and A (packetdrill's rule)."""
    if text == "-":
        return 0
    value = 0
    ace_seen = ecn_seen = False
    for letter in text:
        if letter in "01234567":
            if ace_seen or ecn_seen:
                raise ValueError(f"conflicting TCP flag {letter!r}: one ACE digit, and not with E, W or A")
            ace_seen = True
            value |= sum(bit for weight, bit in ACE_BITS if int(letter) & weight)
            continue
        if letter not in _BIT:
            raise ValueError(f"unknown TCP flag {letter!r} (expected one of S F R P U E W A . - "
                             "or an ACE digit 0-7)")
        if letter in "EWA":
            if ace_seen:
                raise ValueError(f"conflicting TCP flag {letter!r}: the ACE digit already sets E, W and A")
            ecn_seen = True
        value |= _BIT[letter]
    return value


def ace_text(flags: int) -> str:
    """The ACE counter of a segment's bits, as a digit (RFC 9768 3.2.2)."""
    return str(sum(weight for weight, bit in ACE_BITS if flags & bit))


# -- building ------------------------------------------------------------------------------

_BUILDERS: dict[str, Callable[[Option], bytes]] = {
    "eol": lambda opt: bytes((EOL,)),
    "nop": lambda opt: bytes((NOP,)),
    "mss": lambda opt: struct.pack("!BBH", MSS, 4, opt[1]),
    "wscale": lambda opt: bytes((WSCALE, 3, opt[1])),
    "sackOK": lambda opt: bytes((SACK_OK, 2)),
    "sack": lambda opt: bytes((SACK, 2 + 8 * len(opt[1]))) + b"".join(
        _U32_PAIR.pack(left & _WORD, right & _WORD) for left, right in opt[1]),
    "TS": lambda opt: struct.pack("!BBII", TIMESTAMPS, 10, opt[1] & _WORD, opt[2] & _WORD),
    "raw": lambda opt: bytes((opt[1], 2 + len(opt[2]))) + opt[2],
    "bytes": lambda opt: bytes(opt[1]),
}


def encode_options(options: list[Option]) -> bytes:
    """The option octets, unpadded."""
    out = []
    for opt in options:
        builder = _BUILDERS.get(opt[0])
        if builder is None:
            raise ValueError(f"unknown TCP option {opt[0]!r}")
        try:
            out.append(builder(opt))
        except (struct.error, ValueError, OverflowError) as exc:
            raise ValueError(f"TCP option {opt!r} does not fit its fields: {exc}") from None
    return b"".join(out)


def encode(seg: TCPSegment, pseudo: int) -> bytes:
    """The segment's octets. Sequence numbers, window and urgent pointer are taken modulo
    their field's size; checksum and data offset are computed unless the segment gives them
    (a case may ask for wrong ones)."""
    options = encode_options(seg.options)
    options += bytes(-len(options) % 4)          # padded with zeros to a 32-bit boundary
    if len(options) > _MAX_OPTIONS:
        raise ValueError(f"TCP options take {len(options)} octets; a header holds {_MAX_OPTIONS}")
    offset = seg.data_offset if seg.data_offset is not None else (_HEADER_LEN + len(options)) // 4
    if not 0 <= offset <= 15:
        raise ValueError(f"TCP data offset {offset} does not fit its 4 bits")
    header = _HEADER.pack(seg.sport, seg.dport, seg.seq & _WORD, seg.ack & _WORD,
                          offset << 4 | seg.reserved & 0xE | bool(seg.flags & AE), seg.flags & 0xFF,
                          seg.window & 0xFFFF, 0, seg.urg & 0xFFFF) + options
    csum = seg.checksum
    if csum is None:
        length = len(header) + len(seg.payload)
        csum = finish(pseudo + length + word_sum(header) + word_sum(seg.payload))
    return b"".join((header[:16], _U16.pack(csum), header[18:], seg.payload))


# -- reading -------------------------------------------------------------------------------

def decode(raw: bytes, pseudo: int) -> TCPSegment:
    """A segment from its octets; `Malformed` when the header or an option does not fit.
    A wrong checksum is not an error: `checksum_ok` says it, for the matcher to report."""
    if len(raw) < _HEADER_LEN:
        raise Malformed(f"TCP header truncated: {len(raw)} octets, fewer than {_HEADER_LEN}")
    sport, dport, seq, ack, offset_bits, flags, window, csum, urg = _HEADER.unpack_from(raw)
    offset = offset_bits >> 4
    if offset < 5:
        raise Malformed(f"TCP data offset {offset} is below 5, the fixed header's 5 words")
    if offset * 4 > len(raw):
        raise Malformed(f"TCP data offset {offset} ({offset * 4} octets) runs past the "
                        f"segment's {len(raw)} octets")
    options = decode_options(raw[_HEADER_LEN:offset * 4])
    ok = finish(pseudo + len(raw) + word_sum(raw)) == 0
    return TCPSegment(sport, dport, seq, ack, flags | (AE if offset_bits & 1 else 0), window, urg,
                      options, bytes(raw[offset * 4:]), csum, offset, ok, offset_bits & 0xE)


def decode_options(area: bytes) -> list[Option]:
    """The options in the header's option area (RFC 9293 3.1: a single octet of kind for EOL
    and NOP, else kind, length, data). Reading stops at EOL; what follows it is padding."""
    options: list[Option] = []
    i, end = 0, len(area)
    while i < end:
        kind = area[i]
        if kind == NOP:
            options.append(("nop",))
            i += 1
            continue
        if kind == EOL:
            options.append(("eol",))
            break
        if i + 1 == end:
            raise Malformed(f"TCP option {kind} has no length octet: the option area ends")
        length = area[i + 1]
        if length < 2 or i + length > end:
            raise Malformed(f"TCP option {kind} has length {length}, which does not fit the "
                            f"{end - i} octets left of the option area")
        options.append(_option(kind, area, i, length))
        i += length
    return options


def _option(kind: int, area: bytes, start: int, length: int) -> Option:
    """The option of `kind` and `length` at `start` in `area`."""
    fixed = _FIXED_LENGTH.get(kind)
    if fixed is not None and length != fixed or kind == SACK and (length - 2) % 8:
        expected = f"{fixed}" if fixed is not None else "2 + 8 per block"
        raise Malformed(f"TCP option {kind} has length {length}, not {expected}")
    data = start + 2
    if kind == TIMESTAMPS:
        return ("TS", *_U32_PAIR.unpack_from(area, data))
    if kind == MSS:
        return ("mss", _U16.unpack_from(area, data)[0])
    if kind == WSCALE:
        return ("wscale", area[data])
    if kind == SACK_OK:
        return ("sackOK",)
    if kind == SACK:
        return ("sack", [_U32_PAIR.unpack_from(area, at) for at in range(data, start + length, 8)])
    return ("raw", kind, bytes(area[data:start + length]))
