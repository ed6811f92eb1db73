"""The harness's own codec (harness.checksum, harness.tcp, harness.ip) against scapy.

Segments built by the harness are taken apart by scapy, and segments built by scapy are taken
apart by the harness; every header field, option and checksum is compared both ways. Broken
and truncated packets must give `Malformed`, never another exception. The harness judges the
project's stack, so it must not use the stack's codec: the last test checks its imports.
"""

from __future__ import annotations

import ast
import ipaddress
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, TCPOptions
from scapy.layers.inet6 import IPv6 as ScapyIPv6
from scapy.packet import Raw
from scapy.utils import checksum as scapy_checksum

from harness.checksum import checksum
from harness.errors import Malformed
from harness.icmp import build_icmp_error
from harness.ip import IPv4, IPv6, decode, encode, encode_v4
from harness.tcp import TCPSegment, ace_text, encode_options, flags_text, flags_value

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ROOT = Path(__file__).resolve().parents[2]
_SCAPY_KINDS = set(TCPOptions[0])
_OPTIONS_FIELD = next(f for f in TCP.fields_desc if f.name == "options")

u8, u16, u32 = st.integers(0, 0xFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)
v4_address = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
v6_address = st.integers(0, 2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n)))
# Kinds the harness keeps raw: Fast Open, the experimental kinds, and kinds neither side knows.
raw_kind = st.sampled_from([34, 253, 254]) | st.integers(6, 252).filter(
    lambda k: k not in _SCAPY_KINDS and k not in (8,))

tcp_option = st.one_of(
    st.just(("nop",)),
    st.just(("sackOK",)),
    st.tuples(st.just("mss"), u16),
    st.tuples(st.just("wscale"), u8),
    st.tuples(st.just("TS"), u32, u32),
    st.tuples(st.just("sack"), st.lists(st.tuples(u32, u32), min_size=1, max_size=4)),
    st.tuples(st.just("raw"), raw_kind, st.binary(max_size=16)),
)


def _fit(options: list) -> list:
    """The longest head of `options` a TCP header has room for (40 octets)."""
    while len(encode_options(options)) > 40:
        options = options[:-1]
    return options


tcp_options = st.lists(tcp_option, max_size=6).map(_fit)


def _route(kind: int) -> st.SearchStrategy[bytes]:
    """A loose (131) or strict (137) source route still under way, or a record route (7)."""
    return st.lists(v4_address, min_size=1, max_size=4).flatmap(lambda hops: st.integers(
        1, len(hops)).map(lambda at: bytes((kind, 3 + 4 * len(hops), 4 * at))
                          + b"".join(ipaddress.IPv4Address(h).packed for h in hops)))


# IP options scapy reads the same way: no-operations, router alert, one route at most (scapy
# takes the final destination from the last one), all padded by the harness.
ip_options = st.tuples(st.lists(st.sampled_from([b"\x01", b"\x94\x04\x00\x00"]), max_size=3),
                       st.none() | st.sampled_from([7, 131, 137]).flatmap(_route)).map(
    lambda parts: b"".join(parts[0]) + (parts[1] or b"")).filter(lambda o: len(o) <= 40)

payload = st.binary(max_size=1600)
# flags: the eight control bits and AE (bit 8); reserved: the three bits before AE.
segment = st.builds(TCPSegment, sport=u16, dport=u16, seq=u32, ack=u32, flags=st.integers(0, 0x1FF),
                    window=u16, urg=u16, options=tcp_options, payload=payload,
                    reserved=st.integers(0, 7).map(lambda bits: bits << 1))
ipv4_header = st.builds(IPv4, src=v4_address, dst=v4_address, tos=u8, ttl=u8, ident=u16,
                        flags_frag=st.sampled_from([0, 0x4000]), ip_options=ip_options)
ipv6_header = st.builds(IPv6, src=v6_address, dst=v6_address, tos=u8, ttl=u8,
                        flowlabel=st.integers(0, 0xFFFFF))


def from_scapy_options(options: list) -> list:
    """scapy's decoded TCP options in the harness's notation."""
    out = []
    for name, value in options:
        if name in ("EOL", "NOP", "SAckOK"):
            out.append({"EOL": ("eol",), "NOP": ("nop",), "SAckOK": ("sackOK",)}[name])
        elif name in ("MSS", "WScale"):
            out.append((name.lower(), value))
        elif name == "Timestamp":
            out.append(("TS", *value))
        elif name == "SAck":
            out.append(("sack", [tuple(value[i:i + 2]) for i in range(0, len(value), 2)]))
        else:                               # any other kind, as the octets scapy would send
            octets = _OPTIONS_FIELD.i2m(None, [(name, value)])
            out.append(("raw", octets[0], octets[2:octets[1]]))
    return out


def expected_options(options: list, encoded_length: int) -> list:
    """What decoding gives back: the options, then an EOL if zeros pad the area."""
    return options + [("eol",)] if encoded_length % 4 else options


def assert_same_segment(ours: TCPSegment, theirs: TCP) -> None:
    assert (ours.sport, ours.dport, ours.seq, ours.ack) == \
        (theirs.sport, theirs.dport, theirs.seq, theirs.ack)
    assert (ours.data_offset, ours.reserved, ours.flags, ours.window, ours.checksum, ours.urg) == \
        (theirs.dataofs, theirs.reserved << 1, int(theirs.flags), theirs.window,
         theirs.chksum, theirs.urgptr)
    assert ours.options == from_scapy_options(theirs.options)
    assert ours.payload == bytes(theirs.payload)


def scapy_checksums(packet: IP | ScapyIPv6) -> tuple[int | None, int]:
    """The checksums scapy computes for `packet` (IP header, TCP) with its own code."""
    fresh = packet.copy()
    if isinstance(fresh, IP):
        del fresh.chksum
    del fresh[TCP].chksum
    again = type(packet)(bytes(fresh))
    return (again.chksum if isinstance(again, IP) else None), again[TCP].chksum


# -- the harness builds, scapy reads ---------------------------------------------------------

@SETTINGS
@given(ip=ipv4_header, seg=segment)
def test_ipv4_segments_the_harness_builds_read_the_same_in_scapy(ip: IPv4, seg: TCPSegment):
    raw = encode(ip, seg)
    theirs = IP(raw)
    padded_options = ip.ip_options + bytes(-len(ip.ip_options) % 4)
    assert (theirs.version, theirs.ihl * 4, theirs.len) == (4, 20 + len(padded_options), len(raw))
    assert (theirs.tos, theirs.id, int(theirs.flags) << 13 | theirs.frag, theirs.ttl, theirs.proto) == \
        (ip.tos, ip.ident, ip.flags_frag, ip.ttl, 6)
    assert (theirs.src, theirs.dst) == (ip.src, ip.dst)
    assert raw[20:theirs.ihl * 4] == padded_options
    assert scapy_checksums(theirs) == (theirs.chksum, theirs[TCP].chksum)
    options = encode_options(seg.options)
    assert theirs[TCP].dataofs == 5 + (len(options) + 3) // 4
    assert (theirs[TCP].sport, theirs[TCP].dport, theirs[TCP].seq, theirs[TCP].ack,
            theirs[TCP].window, theirs[TCP].urgptr) == (seg.sport, seg.dport, seg.seq, seg.ack,
                                                         seg.window, seg.urg)
    assert int(theirs[TCP].flags) == seg.flags and theirs[TCP].reserved << 1 == seg.reserved
    assert from_scapy_options(theirs[TCP].options) == expected_options(seg.options, len(options))
    assert bytes(theirs[TCP].payload) == seg.payload


@SETTINGS
@given(ip=ipv6_header, seg=segment)
def test_ipv6_segments_the_harness_builds_read_the_same_in_scapy(ip: IPv6, seg: TCPSegment):
    raw = encode(ip, seg)
    theirs = ScapyIPv6(raw)
    assert (theirs.version, theirs.tc, theirs.fl, theirs.plen, theirs.nh, theirs.hlim) == \
        (6, ip.tos, ip.flowlabel, len(raw) - 40, 6, ip.ttl)
    assert ipaddress.ip_address(theirs.src) == ipaddress.ip_address(ip.src)
    assert ipaddress.ip_address(theirs.dst) == ipaddress.ip_address(ip.dst)
    assert scapy_checksums(theirs)[1] == theirs[TCP].chksum
    options = encode_options(seg.options)
    assert from_scapy_options(theirs[TCP].options) == expected_options(seg.options, len(options))
    assert bytes(theirs[TCP].payload) == seg.payload


# -- scapy builds, the harness reads ---------------------------------------------------------

def to_scapy_options(options: list) -> list:
    out = []
    for opt in options:
        name = opt[0]
        if name in ("nop", "sackOK"):
            out.append(("NOP", None) if name == "nop" else ("SAckOK", b""))
        elif name in ("mss", "wscale"):
            out.append(({"mss": "MSS", "wscale": "WScale"}[name], opt[1]))
        elif name == "TS":
            out.append(("Timestamp", (opt[1], opt[2])))
        elif name == "sack":
            out.append(("SAck", tuple(n for block in opt[1] for n in block)))
        else:
            out.append((opt[1], opt[2]))
    return out


def scapy_segment(seg: TCPSegment) -> TCP:
    """`seg` built by scapy. scapy, like the harness, counts the lowest reserved bit (once NS,
    now AE) as a flag."""
    header = TCP(sport=seg.sport, dport=seg.dport, seq=seg.seq, ack=seg.ack,
                 flags=seg.flags, reserved=seg.reserved >> 1,
                 window=seg.window, urgptr=seg.urg, options=to_scapy_options(seg.options))
    return header / Raw(seg.payload)


@SETTINGS
@given(ip=ipv4_header, seg=segment)
def test_ipv4_segments_scapy_builds_read_the_same_in_the_harness(ip: IPv4, seg: TCPSegment):
    options = IP(bytes(IP(options=[Raw(ip.ip_options)]))).options    # scapy's own reading
    packet = IP(src=ip.src, dst=ip.dst, tos=ip.tos, ttl=ip.ttl, id=ip.ident,
                flags=ip.flags_frag >> 13, options=options) / scapy_segment(seg)
    raw = bytes(packet)
    theirs = IP(raw)
    ours_ip, ours = decode(raw)
    assert ours_ip.checksum_ok and ours.checksum_ok
    assert (ours_ip.src, ours_ip.dst, ours_ip.tos, ours_ip.ttl, ours_ip.ident, ours_ip.checksum) == \
        (theirs.src, theirs.dst, theirs.tos, theirs.ttl, theirs.id, theirs.chksum)
    assert ours_ip.flags_frag == int(theirs.flags) << 13 | theirs.frag
    assert ours_ip.ip_options == raw[20:theirs.ihl * 4]
    assert ours_ip.payload == raw[theirs.ihl * 4:]
    assert_same_segment(ours, theirs[TCP])


@SETTINGS
@given(ip=ipv6_header, seg=segment)
def test_ipv6_segments_scapy_builds_read_the_same_in_the_harness(ip: IPv6, seg: TCPSegment):
    raw = bytes(ScapyIPv6(src=ip.src, dst=ip.dst, tc=ip.tos, hlim=ip.ttl, fl=ip.flowlabel)
                / scapy_segment(seg))
    theirs = ScapyIPv6(raw)
    ours_ip, ours = decode(raw)
    assert ours.checksum_ok
    assert (ours_ip.tos, ours_ip.ttl, ours_ip.flowlabel, ours_ip.payload_length) == \
        (theirs.tc, theirs.hlim, theirs.fl, theirs.plen)
    assert ipaddress.ip_address(ours_ip.src) == ipaddress.ip_address(theirs.src)
    assert_same_segment(ours, theirs[TCP])


@SETTINGS
@given(ip=ipv4_header | ipv6_header, seg=segment, data=st.data())
def test_a_changed_octet_under_the_tcp_checksum_is_caught(ip, seg: TCPSegment, data):
    """A segment scapy checksummed, one octet changed: in the pseudo-header's addresses, the
    TCP header's fixed part or the payload. The harness must see the wrong checksum that
    scapy's own computation disagrees with."""
    six = isinstance(ip, IPv6)
    layer = ScapyIPv6(src=ip.src, dst=ip.dst) if six else IP(src=ip.src, dst=ip.dst)
    raw = bytearray(bytes(layer / scapy_segment(seg)))
    start = 40 if six else 20
    places = [*range(8, 40)] if six else [*range(12, 20)]
    places += [*range(start, start + 12), *range(start + 14, start + 20)]
    places += [*range(len(raw) - len(seg.payload), len(raw))]
    at = data.draw(st.sampled_from(places))
    raw[at] ^= data.draw(st.integers(1, 0xFF))
    _, ours = decode(bytes(raw))
    assert not ours.checksum_ok
    assert scapy_checksums((ScapyIPv6 if six else IP)(bytes(raw)))[1] != ours.checksum


# -- the checksum itself, and the control bits -----------------------------------------------

@SETTINGS
@given(st.binary(max_size=3000) | st.sampled_from([b"", b"\0" * 7, b"\xff" * 8, b"\xff\xff\0\0"]))
def test_the_internet_checksum_is_scapys(data: bytes):
    assert checksum(data) == scapy_checksum(data)


def test_the_checksum_of_a_64_kib_tso_packet_is_scapys():
    data = bytes(range(256)) * 256
    assert checksum(data[:65535]) == scapy_checksum(data[:65535])
    assert checksum(data) == scapy_checksum(data)


def test_control_bits_read_as_scripts_write_them_and_as_scapy_names_them():
    scapy_letter = {"S": "S", "F": "F", "R": "R", "P": "P", "U": "U", "E": "E", "W": "C",
                    "A": "N", ".": "A"}
    for bits in range(512):
        text = flags_text(bits)
        assert flags_value(text) == bits
        assert {scapy_letter[c] for c in text if c != "-"} == set(str(TCP(flags=bits).flags))
    with pytest.raises(ValueError, match="unknown TCP flag 'X'"):
        flags_value("SX")


def test_an_ace_digit_sets_ae_cwr_and_ece_as_one_counter_and_excludes_their_letters():
    # RFC 9768 3.2.2: ACE = AE*4 + CWR*2 + ECE
    assert flags_value(".5") == flags_value("EA.") and flags_value("P6.") == flags_value("WAP.")
    assert flags_value("F.0") == flags_value("F.")
    assert [ace_text(flags_value(f".{n}")) for n in range(8)] == [str(n) for n in range(8)]
    for bad in ("E.5", ".57", "5W."):
        with pytest.raises(ValueError, match="conflicting TCP flag"):
            flags_value(bad)


def test_icmp_errors_carry_the_checksum_scapy_computes():
    quoted = encode(IPv4("192.168.0.1", "192.0.2.1"), TCPSegment(8080, 40000, 7, 0, 0x10, 0))
    for ip, layer, field in ((IPv4("192.0.2.1", "192.168.0.1"), IP, "chksum"),
                             (IPv6("2001:db8::1", "fd3d:fa7b:d17d::"), ScapyIPv6, "cksum")):
        packet = layer(build_icmp_error(ip, 3, 4, quoted, mtu=1300))
        fresh = packet.copy()
        delattr(fresh.payload, field)
        assert getattr(layer(bytes(fresh)).payload, field) == getattr(packet.payload, field)


# -- what must be refused --------------------------------------------------------------------

@SETTINGS
@given(ip=ipv4_header | ipv6_header, seg=segment, data=st.data())
def test_every_truncated_packet_is_malformed(ip, seg: TCPSegment, data):
    raw = encode(ip, seg)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(Malformed):
        decode(raw[:cut])


@SETTINGS
@given(ip=ipv4_header | ipv6_header, seg=segment, data=st.data())
def test_damaged_headers_decode_or_are_malformed(ip, seg: TCPSegment, data):
    """Any octets of the IP and TCP headers changed: a `Malformed` at worst, and what does
    decode reads as scapy reads it."""
    raw = bytearray(encode(ip, seg))
    header_end = len(raw) - len(seg.payload)
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, header_end - 1))] = data.draw(u8)
    try:
        ours_ip, ours = decode(bytes(raw))
    except Malformed:
        return
    theirs = (IP if isinstance(ours_ip, IPv4) else ScapyIPv6)(bytes(raw))
    # Where the segment and its payload lie, from the (possibly damaged) header fields alone:
    # the IHL and total length (RFC 791 3.1), the payload length (RFC 8200 3), the data offset.
    if isinstance(ours_ip, IPv4):
        start, end = (raw[0] & 0xF) * 4, int.from_bytes(raw[2:4], "big")
    else:
        start, end = 40, 40 + int.from_bytes(raw[4:6], "big")
    assert ours.payload == raw[start + (raw[start + 12] >> 4) * 4:end]
    # scapy parses damaged IP options its own way and may then look for TCP elsewhere.
    assume(TCP in theirs and bytes(theirs[TCP])[:20] == raw[start:start + 20])
    assert (ours.sport, ours.dport, ours.seq, ours.ack, ours.window, ours.checksum) == \
        (theirs[TCP].sport, theirs[TCP].dport, theirs[TCP].seq, theirs[TCP].ack,
         theirs[TCP].window, theirs[TCP].chksum)


@SETTINGS
@given(ip=ipv4_header | ipv6_header, seg=segment, padding=st.binary(min_size=1, max_size=20))
def test_octets_past_the_ip_length_are_not_the_segments(ip, seg: TCPSegment, padding: bytes):
    """A link may pad a frame; the IP length says where the packet ends (RFC 791 3.1 total
    length, RFC 8200 3 payload length), for the harness as for scapy."""
    raw = encode(ip, seg)
    ours_ip, ours = decode(raw + padding)
    assert ours.checksum_ok and ours.payload == seg.payload
    assert ours_ip.payload == raw[-len(ours_ip.payload):]
    theirs = (IP if isinstance(ip, IPv4) else ScapyIPv6)(raw + padding)
    assert (theirs[Raw].load if Raw in theirs else b"") == seg.payload


@SETTINGS
@given(st.binary(max_size=200))
def test_any_octets_decode_or_are_malformed(raw: bytes):
    try:
        decode(raw)
    except Malformed:
        pass


def _packet(tcp_header: bytes, ip: IPv4 = IPv4("192.0.2.1", "192.168.0.1")) -> bytes:
    """An IPv4 packet around a TCP header given octet by octet (its checksum left wrong)."""
    return encode_v4(ip, tcp_header)


def _tcp(offset: int, options: bytes) -> bytes:
    return bytes(12) + bytes((offset << 4, 0x10)) + bytes(6) + options


@pytest.mark.parametrize("options, reason", [
    (b"\x01\x01\x01\x02", "has no length octet"),
    (b"\x02\x00\x00\x00", "length 0"),
    (b"\x08\x01\x00\x00", "length 1"),
    (b"\x02\x08\x00\x00", "length 8, which does not fit"),
    (b"\x63\x05\x00\x00", "length 5, which does not fit the 4 octets left"),
    (b"\x02\x03\x05\x00", "length 3, not 4"),
    (b"\x03\x04\x07\x00", "length 4, not 3"),
    (b"\x04\x03\x00\x00", "length 3, not 2"),
    (b"\x08\x0c" + bytes(10), "length 12, not 10"),
    (b"\x05\x0b" + bytes(10), "length 11, not 2 \\+ 8 per block"),
])
def test_options_of_impossible_length_are_malformed(options: bytes, reason: str):
    with pytest.raises(Malformed, match=reason):
        decode(_packet(_tcp(5 + len(options) // 4, options)))


def test_headers_that_cannot_be_are_malformed():
    good = encode(IPv4("192.0.2.1", "192.168.0.1"), TCPSegment(1, 2, 3, 4, 0x10, 5))
    cases = {
        "TCP header truncated": _packet(bytes(19)),
        "data offset 4 is below 5": _packet(_tcp(4, b"")),
        "data offset 6 .* runs past": _packet(_tcp(6, b"")),
        "IP version 5": bytes((0x55,)) + good[1:],
        "IPv4 header length 4": bytes((0x44,)) + good[1:],
        "IPv4 total length 19 does not fit": good[:2] + (19).to_bytes(2, "big") + good[4:],
        "IPv4 total length 41 does not fit": good[:2] + (41).to_bytes(2, "big") + good[4:],
        "IP protocol 17, not TCP": good[:9] + b"\x11" + good[10:],
        "IP fragment": good[:6] + b"\x20\x00" + good[8:],
        "empty packet": b"",
    }
    for reason, raw in cases.items():
        with pytest.raises(Malformed, match=reason):
            decode(raw)


def test_an_unknown_option_and_padding_after_eol_are_kept_as_they_are():
    seg = TCPSegment(1, 2, 3, 4, 0x10, 5, options=[("raw", 99, b"abc"), ("eol",)])
    _, got = decode(encode(IPv4("192.0.2.1", "192.168.0.1"), seg))
    assert got.options == [("raw", 99, b"abc"), ("eol",)] and got.data_offset == 7


# -- the judge does not use the judged's code ------------------------------------------------

# These drive the stack itself (as a target, or against the kernel) and may use its API.
STACK_DRIVERS = {"harness/interop.py", "harness/stackbench.py", "harness/targets/stack.py"}
# The stack's mutants (rfcdrill mutate) patch the stack's own codec; they judge nothing.
STACK_CHANGERS = "harness/mutate/"


def _is_stack(module: str) -> bool:
    return module == "stack" or module.startswith("stack.")


def _imports_of_stack(path: Path) -> list[str]:
    """The stack modules `path` imports (its codec, its tcp_info packing, anything)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if _is_stack(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.module and _is_stack(node.module):
            found.append(node.module)
    return found


def test_no_harness_module_judges_with_the_stacks_code():
    offenders = {}
    for path in sorted((ROOT / "harness").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel not in STACK_DRIVERS and not rel.startswith(STACK_CHANGERS) \
                and (found := _imports_of_stack(path)):
            offenders[rel] = found
    assert offenders == {}


def test_the_import_check_sees_every_form_of_import(tmp_path):
    forms = ["import stack.wire", "from stack import wire", "from stack.wire import parse",
             "from stack import Host, wire as w", "from stack.tcpinfo import FIELDS", "import stack"]
    for line in forms:
        (tmp_path / "m.py").write_text(line + "\n")
        assert _imports_of_stack(tmp_path / "m.py"), line
    (tmp_path / "m.py").write_text("import stackless\nfrom harness import ip\nimport harness.tcp\n")
    assert _imports_of_stack(tmp_path / "m.py") == []
