"""IPv4 and TCP on the wire: struct-based encoding and decoding.

Theory of operation: a packet is decoded into plain dataclasses (`IPv4`, `TCPSegment`)
and encoded back from them. Decoding validates every header field it relies on and raises
`Malformed` with a short, stable reason, so a receiver can count and report drops. Encoding
computes lengths and checksums unless the caller asks for specific (also wrong) values, so
the harness can build malformed packets with the same code.

Rules for this module: no I/O, no clocks, no connection state; struct only (scapy is far too
slow for a data path). RFC 791 section 3.1 (IPv4 header), RFC 9293 section 3.1 (TCP header)
and 3.2 (options), RFC 7323 (wscale, timestamps), RFC 2018 (SACK).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

IPPROTO_ICMP = 1
IPPROTO_TCP = 6

FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
FLAG_LETTERS = (("S", SYN), ("F", FIN), ("R", RST), ("P", PSH), ("U", URG), ("E", ECE),
                ("W", CWR), (".", ACK))

# TCP option kinds (RFC 9293 3.2, RFC 7323, RFC 2018).
OPT_EOL, OPT_NOP, OPT_MSS, OPT_WSCALE, OPT_SACK_OK, OPT_SACK, OPT_TS = 0, 1, 2, 3, 4, 5, 8
_OPT_FIXED_LEN = {OPT_MSS: 4, OPT_WSCALE: 3, OPT_SACK_OK: 2, OPT_TS: 10}

_IP_HDR = struct.Struct("!BBHHHBBH4s4s")
_TCP_HDR = struct.Struct("!HHIIBBHHH")


class Malformed(ValueError):
    """A packet that cannot be accepted; `str(error)` is the drop reason."""


Option = tuple  # ("mss", 1460) | ("wscale", 7) | ("sackOK",) | ("sack", [(l, r), ...])
#                 | ("TS", val, ecr) | ("nop",) | ("eol",) | ("raw", kind, bytes)


@dataclass
class TCPSegment:
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    window: int
    urg: int = 0
    options: list[Option] = field(default_factory=list)
    payload: bytes = b""
    checksum: int | None = None      # None: compute on encode; decoded: the value on the wire
    data_offset: int | None = None   # None: compute on encode
    checksum_ok: bool = True         # set by decode
    reserved: int = 0

    @property
    def seg_len(self) -> int:
        """SEG.LEN: payload octets plus one each for SYN and FIN (RFC 9293 3.3.1)."""
        return len(self.payload) + bool(self.flags & SYN) + bool(self.flags & FIN)

    def option(self, name: str) -> Option | None:
        for opt in self.options:
            if opt[0] == name:
                return opt
        return None


@dataclass
class IPv4:
    src: str
    dst: str
    proto: int = IPPROTO_TCP
    tos: int = 0
    ttl: int = 64
    ident: int = 0
    flags_frag: int = 0x4000          # DF
    payload: bytes = b""
    checksum: int | None = None
    checksum_ok: bool = True
    total_length: int | None = None
    ihl: int = 5
    ip_options: bytes = b""


_MASKS: dict[int, int] = {}


def _fold(total: int, nonzero: bool) -> int:
    """The one's complement of the one's-complement sum whose value mod 0xFFFF is `total`."""
    bits = total.bit_length()
    while bits > 4096:              # halve big numbers first: shifts are cheaper than division
        half = (bits >> 5) << 4     # a multiple of 16 bits, and 2**(16k) = 1 (mod 0xFFFF)
        mask = _MASKS.get(half)
        if mask is None:
            mask = (1 << half) - 1
            if half <= 16384:       # at most 1,024 masks of at most 2 KiB are kept
                _MASKS[half] = mask
        total = (total >> half) + (total & mask)
        bits = total.bit_length()
    total %= 0xFFFF
    if total == 0 and nonzero:
        total = 0xFFFF              # a non-zero one's-complement sum is never +0
    return ~total & 0xFFFF


def _words(data: bytes) -> int:
    """`data` as one big number, padded to whole 16-bit words: since 2**16 = 1 (mod 0xFFFF),
    it is congruent to the sum of its words, which is what the Internet checksum adds up."""
    value = int.from_bytes(data, "big")
    return value << 8 if len(data) & 1 else value


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of `data`: end-around-carry addition of 16-bit
    words, computed as a remainder mod 0xFFFF of the whole buffer read as one integer."""
    value = _words(data)
    return _fold(value, value != 0)


_ADDR: dict[str, bytes] = {}
_TEXT: dict[bytes, str] = {}


class _AddressValues(dict):
    """Dotted quad -> its four octets as one number (for checksums), computed once."""

    def __missing__(self, text: str) -> int:
        value = int.from_bytes(_addr(text), "big")
        if len(self) < 4096:
            self[text] = value
        return value


_ADDR_VALUE = _AddressValues()


def _addr(text: str) -> bytes:
    raw = _ADDR.get(text)
    if raw is None:
        raw = bytes(int(part) for part in text.split("."))
        if len(_ADDR) < 4096:
            _ADDR[text] = raw
    return raw


def _text(raw: bytes) -> str:
    text = _TEXT.get(raw)
    if text is None:
        text = ".".join(str(b) for b in raw)
        if len(_TEXT) < 4096:
            _TEXT[bytes(raw)] = text
    return text


_TS_ONLY = struct.Struct("!BBBBII")       # nop, nop, TS: what most segments carry (RFC 7323 3.2)
_TS_ONLY_HEAD = bytes((OPT_NOP, OPT_NOP, OPT_TS, 10))


def encode_options(options: list[Option]) -> bytes:
    if len(options) == 3 and options[2][0] == "TS" and options[0] == options[1] == ("nop",):
        return _TS_ONLY.pack(OPT_NOP, OPT_NOP, OPT_TS, 10, options[2][1] & 0xFFFFFFFF,
                             options[2][2] & 0xFFFFFFFF)
    out = bytearray()
    for opt in options:
        kind = opt[0]
        if kind == "nop":
            out.append(OPT_NOP)
        elif kind == "eol":
            out.append(OPT_EOL)
        elif kind == "mss":
            out += struct.pack("!BBH", OPT_MSS, 4, opt[1])
        elif kind == "wscale":
            out += struct.pack("!BBB", OPT_WSCALE, 3, opt[1])
        elif kind == "sackOK":
            out += bytes((OPT_SACK_OK, 2))
        elif kind == "sack":
            out += bytes((OPT_SACK, 2 + 8 * len(opt[1])))
            for left, right in opt[1]:
                out += struct.pack("!II", left & 0xFFFFFFFF, right & 0xFFFFFFFF)
        elif kind == "TS":
            out += struct.pack("!BBII", OPT_TS, 10, opt[1] & 0xFFFFFFFF, opt[2] & 0xFFFFFFFF)
        elif kind == "raw":
            out += bytes((opt[1], 2 + len(opt[2]))) + opt[2]
        elif kind == "bytes":           # literal option bytes, also malformed ones
            out += opt[1]
        else:
            raise ValueError(f"unknown TCP option {kind!r}")
    return bytes(out)


def decode_options(raw: bytes, strict: bool = True) -> list[Option]:
    """Parse the option area (RFC 9293 3.2); a malformed length is a `Malformed`. Not
    `strict` (a receiver, RFC 9293 3.1 MUST-7: handle an illegal length without crashing),
    parsing stops at a length of 0 or 1 or one past the area, as Linux's does, and an option
    of the wrong fixed length is skipped."""
    if len(raw) == 12 and raw[:4] == _TS_ONLY_HEAD:
        return [("nop",), ("nop",), ("TS", *_TS_ONLY.unpack_from(raw)[4:])]
    options: list[Option] = []
    i = 0
    while i < len(raw):
        kind = raw[i]
        if kind == OPT_EOL:
            options.append(("eol",))
            break
        if kind == OPT_NOP:
            options.append(("nop",))
            i += 1
            continue
        length = raw[i + 1] if i + 1 < len(raw) else 0
        if length < 2 or i + length > len(raw):
            if not strict:
                break
            raise Malformed(f"TCP option {kind} has bad length {length}")
        body = raw[i + 2:i + length]
        expected = _OPT_FIXED_LEN.get(kind)
        if expected is not None and length != expected or kind == OPT_SACK and (length - 2) % 8:
            if not strict:
                i += length
                continue
            raise Malformed(f"TCP option {kind} has bad length {length}")
        if kind == OPT_MSS:
            options.append(("mss", struct.unpack("!H", body)[0]))
        elif kind == OPT_WSCALE:
            options.append(("wscale", body[0]))
        elif kind == OPT_SACK_OK:
            options.append(("sackOK",))
        elif kind == OPT_SACK:
            blocks = [struct.unpack("!II", body[j:j + 8]) for j in range(0, len(body), 8)]
            options.append(("sack", blocks))
        elif kind == OPT_TS:
            options.append(("TS", *struct.unpack("!II", body)))
        else:
            options.append(("raw", kind, bytes(body)))
        i += length
    return options


def _pseudo_header(src: str, dst: str, proto: int, length: int) -> bytes:
    return _addr(src) + _addr(dst) + struct.pack("!BBH", 0, proto, length)


def _pseudo_sum(src: str, dst: str, proto: int, length: int) -> int:
    """The pseudo-header (RFC 9293 3.1) as a number congruent (mod 0xFFFF) to the sum of
    its 16-bit words: each 32-bit address counts as its two words do."""
    return _ADDR_VALUE[src] + _ADDR_VALUE[dst] + proto + length


def tcp_checksum(raw: bytes, src: str, dst: str) -> int:
    """The checksum a TCP segment `raw` (its checksum field zeroed) should carry."""
    return checksum(_pseudo_header(src, dst, IPPROTO_TCP, len(raw)) + raw)


def encode_tcp(seg: TCPSegment, src: str, dst: str) -> bytes:
    opts = encode_options(seg.options)
    opts += b"\0" * (-len(opts) % 4)
    offset = seg.data_offset if seg.data_offset is not None else 5 + len(opts) // 4
    header = _TCP_HDR.pack(seg.sport, seg.dport, seg.seq & 0xFFFFFFFF, seg.ack & 0xFFFFFFFF,
                           (offset << 4) | (seg.reserved & 0xF), seg.flags & 0xFF,
                           seg.window & 0xFFFF, 0, seg.urg & 0xFFFF)
    head = header + opts
    csum = seg.checksum
    if csum is None:
        length = len(head) + len(seg.payload)
        csum = _fold(_pseudo_sum(src, dst, IPPROTO_TCP, length) + int.from_bytes(head, "big")
                     + _words(seg.payload), True)
    return b"".join((head[:16], csum.to_bytes(2, "big"), head[18:], seg.payload))


def decode_tcp(raw: bytes, src: str, dst: str, strict: bool = True) -> TCPSegment:
    """Decode a TCP segment; `strict` as for `decode_options`."""
    if len(raw) < 20:
        raise Malformed(f"TCP header truncated ({len(raw)} bytes)")
    sport, dport, seq, ack, off_res, flags, window, csum, urg = _TCP_HDR.unpack_from(raw)
    offset = off_res >> 4
    if offset < 5 or offset * 4 > len(raw):
        raise Malformed(f"TCP data offset {offset} invalid for {len(raw)} bytes")
    options = decode_options(raw[20:offset * 4], strict)
    ok = _fold(_pseudo_sum(src, dst, IPPROTO_TCP, len(raw)) + _words(raw), True) == 0
    return TCPSegment(sport, dport, seq, ack, flags, window, urg, options, bytes(raw[offset * 4:]),
                      checksum=csum, data_offset=offset, checksum_ok=ok, reserved=off_res & 0xF)


def encode_ipv4(ip: IPv4) -> bytes:
    return _encode_ipv4(ip, ip.payload)


def _encode_ipv4(ip: IPv4, payload: bytes) -> bytes:
    opts = ip.ip_options + b"\0" * (-len(ip.ip_options) % 4)
    ihl = 5 + len(opts) // 4 if ip.ip_options else ip.ihl
    total = ip.total_length if ip.total_length is not None else ihl * 4 + len(payload)
    header = _IP_HDR.pack(0x40 | ihl, ip.tos, total, ip.ident, ip.flags_frag, ip.ttl, ip.proto,
                          0, _addr(ip.src), _addr(ip.dst)) + opts
    csum = ip.checksum if ip.checksum is not None else checksum(header)
    return b"".join((header[:10], csum.to_bytes(2, "big"), header[12:], payload))


def decode_ipv4(raw: bytes) -> IPv4:
    """Decode an IPv4 header (RFC 791 3.1); the payload is cut to the total length."""
    if len(raw) < 20:
        raise Malformed(f"IPv4 header truncated ({len(raw)} bytes)")
    vihl, tos, total, ident, ff, ttl, proto, csum, src, dst = _IP_HDR.unpack_from(raw)
    if vihl >> 4 != 4:
        raise Malformed(f"IP version {vihl >> 4}, not 4")
    ihl = vihl & 0xF
    if ihl < 5 or ihl * 4 > len(raw):
        raise Malformed(f"IPv4 header length {ihl} invalid")
    if total < ihl * 4 or total > len(raw):
        raise Malformed(f"IPv4 total length {total} does not fit {len(raw)} bytes")
    ok = checksum(raw[:ihl * 4]) == 0
    return IPv4(_text(src), _text(dst), proto, tos, ttl, ident, ff, bytes(raw[ihl * 4:total]),
                checksum=csum, checksum_ok=ok, total_length=total, ihl=ihl,
                ip_options=bytes(raw[20:ihl * 4]) if ihl > 5 else b"")


def final_destination(ip: IPv4) -> str:
    """The destination in TCP's pseudo-header: with a loose or strict source route option
    still to be followed, the route's last address, not the IP header's next hop (RFC 9293
    3.1; RFC 791 3.1 keeps the final destination at the end of the route data). A completed
    route (pointer past its end) has brought the datagram there: the header's destination."""
    opts, i = ip.ip_options, 0
    while i < len(opts) and opts[i] != 0:
        if opts[i] == 1:
            i += 1
            continue
        if i + 1 >= len(opts) or opts[i + 1] < 2:
            break
        kind, length = opts[i], opts[i + 1]
        if kind in (0x83, 0x89) and length >= 7 and (length - 3) % 4 == 0 and i + length <= len(opts):
            completed = opts[i + 2] > length
            return ip.dst if completed else _text(opts[i + length - 4:i + length])
        i += length
    return ip.dst


def build(ip: IPv4, seg: TCPSegment) -> bytes:
    """One IPv4 packet carrying `seg`, checksums computed unless given."""
    return _encode_ipv4(ip, encode_tcp(seg, ip.src, final_destination(ip)))


def parse(raw: bytes) -> tuple[IPv4, TCPSegment]:
    """Decode an IPv4/TCP packet; raises `Malformed` for anything else."""
    ip = decode_ipv4(raw)
    if ip.proto != IPPROTO_TCP:
        raise Malformed(f"IP protocol {ip.proto}, not TCP")
    if ip.flags_frag & 0x3FFF:
        raise Malformed("IP fragment")
    return ip, decode_tcp(ip.payload, ip.src, final_destination(ip) if ip.ip_options else ip.dst)


def flags_text(flags: int) -> str:
    """tcpdump-style flag letters, e.g. 'S.' for SYN+ACK, '-' for none."""
    text = "".join(letter for letter, bit in FLAG_LETTERS if flags & bit)
    return text or "-"


def flags_value(text: str) -> int:
    """The inverse of `flags_text`; raises ValueError naming a bad letter."""
    if text == "-":
        return 0
    value = 0
    letters = dict(FLAG_LETTERS)
    for ch in text:
        if ch not in letters:
            raise ValueError(f"unknown TCP flag {ch!r} (expected one of S F R P U E W . -)")
        value |= letters[ch]
    return value
