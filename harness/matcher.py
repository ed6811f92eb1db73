"""Field-by-field comparison of an outbound segment with the script line that expects it.

Checked always: the packet is well formed IPv4/TCP, both checksums are right, flags (but PSH
where the caller says the sender may set it freely), seq, payload length, zeros after an EOL
option, and the options in order (unless written `<...>`; `<{...}>` takes them in any order
with any NOP/EOL padding). Checked when written: ack, win,
urg, IP tos (IPv6: traffic class), ttl (hop limit), ECN bits, IP id (IPv4), flow label
(IPv6), addresses and IP options. Values written `*` match anything; a set (`1000..65535`,
`>=1000`, `1000|1001`, harness.values) matches any of its values, and where seq, end or
length is a set, the segment's start + length must also be in the end's set. TS val is the target's
own clock: compared only with packetdrill's --tcp_ts_tick_usecs, within the timing
tolerance, after the offset learned from the first outbound timestamp.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from harness.ip import IP, IPv6
from harness.model import ANY, PacketEvent
from harness.values import matches
from harness.peer import MOD, Peer, option_text
from harness.tcp import PSH, RST, SYN, TCPSegment, flags_text


@dataclass
class Difference:
    field: str
    expected: str
    actual: str

    def __str__(self) -> str:
        return f"{self.field}: expected {self.expected}, got {self.actual}"


def compare(event: PacketEvent, ip: IP, seg: TCPSegment, peer: Peer,
            sent: bytes | None = None, free_psh: bool = False) -> list[Difference]:
    """`sent`: the bytes the script wrote on this connection, when known. `free_psh`: the
    sender may set PSH as it likes on this segment (RFC 1122 4.2.2.2), so it is not compared."""
    diffs: list[Difference] = []

    def check(name: str, expected: object, actual: object) -> None:
        if expected is not ANY and expected is not None and not matches(expected, actual):
            diffs.append(Difference(name, str(expected), str(actual)))

    if not ip.checksum_ok:
        diffs.append(Difference("ip checksum", "valid", f"{ip.checksum:#06x} (wrong)"))
    if not seg.checksum_ok:
        diffs.append(Difference("tcp checksum", "valid", f"{seg.checksum:#06x} (wrong)"))
    allowed = (event.flags, *event.flag_alternatives)       # `R|R.`: any of them
    if all((flags ^ seg.flags) & ~(PSH if free_psh else 0) for flags in allowed):
        diffs.append(Difference("flags", "|".join(map(flags_text, allowed)), flags_text(seg.flags)))
    # RFC 793 3.4 / RFC 9293 3.10.7.1: a reset answering a segment without ACK is
    # <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>; its 0 is absolute, not relative to an ISN.
    absolute_zero_rst = event.flags & RST and event.seq == 0 and seg.seq == 0
    if not absolute_zero_rst:
        check("seq", _mod(event.seq), peer.relative_seq(seg))
    check("length", event.length, len(seg.payload))
    if not all(isinstance(v, int) for v in (event.seq, event.end, event.length)):
        check("end", _mod(event.end), (peer.relative_seq(seg) + len(seg.payload)) % MOD)
    if event.ack is not None:
        check("ack", _mod(event.ack), peer.script_ack(seg))
    check("win", event.win, seg.window)
    check("urg", event.urg, seg.urg)
    if "tos" in event.ip:
        tos = event.ip["tos"]
        check("tos", tos if tos is ANY else f"{tos:#04x}", f"{ip.tos:#04x}")
    check("ttl", event.ip.get("ttl"), ip.ttl)
    check("src", event.ip.get("src"), ip.src)
    check("dst", event.ip.get("dst"), ip.dst)
    _compare_version_fields(event, ip, check)
    if event.ports is not None:
        check("ports", "%d>%d" % event.ports, f"{seg.sport}>{seg.dport}")
    if "ecn" in event.ip and not (event.ip["ecn"] == -1 and ip.tos & 3 in (1, 2)):
        check("ecn", _ecn(event.ip["ecn"]), _ecn(ip.tos & 3))
    padding = _after_eol(ip.payload[20:(seg.data_offset or 5) * 4])
    if padding.strip(b"\0"):
        diffs.append(Difference("option padding", "zeros after EOL (RFC 9293 3.1, MUST-69)",
                                "0x" + padding.hex()))
    if event.options is not None:
        if event.any_layout:
            _compare_option_set(event.options, event.may_lack, _script_options(seg.options, peer), diffs)
        else:
            _compare_options(event.options, _script_options(seg.options, peer), diffs)
        _compare_ts_val(event.options, seg, peer, diffs)
    if sent is not None and seg.payload and not seg.flags & SYN:
        _compare_payload((peer.relative_seq(seg) - 1) % MOD, seg.payload, sent, diffs)
    return diffs


def _mod(value: object) -> object:
    """A written sequence number modulo 2**32 (a set is written as relative numbers)."""
    return value % MOD if isinstance(value, int) else value


def _compare_version_fields(event: PacketEvent, ip: IP, check: Callable[[str, object, object], None]) -> None:
    """The fields only one IP version has; written for the other, they cannot match."""
    six = isinstance(ip, IPv6)
    absent = "none (not in an IPv6 header)" if six else "none (not in an IPv4 header)"
    check("ip id", event.ip.get("id"), absent if six else ip.ident)
    if "ipopt" in event.ip:
        check("ip options", "0x" + event.ip["ipopt"].hex(), absent if six else "0x" + ip.ip_options.hex())
    check("flowlabel", event.ip.get("flowlabel"), ip.flowlabel if six else absent)


def _script_options(options: list, peer: Peer) -> list:
    """The segment's options with SACK blocks in the script's numbering of our sequence space."""
    return [("sack", peer.script_sack(o[1])) if o[0] == "sack" else o for o in options]


def _compare_payload(offset: int, payload: bytes, sent: bytes, diffs: list[Difference]) -> None:
    """The segment's bytes must be the ones written at its place in the stream."""
    expected = sent[offset:offset + len(payload)]
    if len(expected) < len(payload):
        return          # beyond what the script wrote: the length and seq checks speak
    if payload != expected:
        first = next(i for i, (a, b) in enumerate(zip(payload, expected)) if a != b)
        diffs.append(Difference("payload", f"the bytes written at stream offset {offset}",
                                f"byte {first} differs ({payload[first]:#04x}, "
                                f"written {expected[first]:#04x})"))


def _after_eol(area: bytes) -> bytes:
    """The header bytes after an End of Option List up to the data offset (RFC 9293 3.1:
    they MUST be zero padding); empty without an EOL or past an option of bad length."""
    i = 0
    while i < len(area):
        if area[i] == 0:                # EOL
            return area[i + 1:]
        if area[i] == 1:                # NOP
            i += 1
        elif i + 1 < len(area) and area[i + 1] >= 2:
            i += area[i + 1]
        else:
            return b""
    return b""


def _ecn(bits: int) -> str:
    return {0: "noecn", 1: "ect1", 2: "ect0", 3: "ce", -1: "ect01"}[bits]


def _compare_options(expected: list, actual: list, diffs: list[Difference]) -> None:
    shown_expected = "<" + ",".join(option_text(o) for o in expected) + ">" if expected else "none"
    shown_actual = "<" + ",".join(option_text(o) for o in actual) + ">" if actual else "none"
    if len(expected) != len(actual):
        diffs.append(Difference("options", shown_expected, shown_actual))
        return
    for index, (want, got) in enumerate(zip(expected, actual)):
        if want[0] != got[0] or not _option_matches(want, got):
            diffs.append(Difference(f"option {index + 1}", option_text(want), option_text(got)))


def _compare_option_set(expected: list, may_lack: frozenset[int], actual: list,
                        diffs: list[Difference]) -> None:
    """`<{...}>`: each expected option once, in any order; NOP and EOL are the sender's
    padding (RFC 9293 3.1: an option may begin on any octet boundary; RFC 7323 Appendix A's
    NOPs are a suggestion), and any other option is one the line does not allow. An option
    whose index is in `may_lack` (`mss?`) may be missing; if there, its value must match."""
    left = [o for o in actual if o[0] not in ("nop", "eol")]
    missing = []
    for index, want in enumerate(expected):
        found = next((i for i, got in enumerate(left)
                      if got[0] == want[0] and _option_matches(want, got)), None)
        if found is not None:
            del left[found]
        elif index not in may_lack:
            missing.append(want)
    if missing or left:
        def listed(options: list) -> str:
            return ",".join(option_text(o) for o in options)
        got = f"<{listed(actual)}>" if actual else "none"
        if missing:
            got += f", missing {listed(missing)}"
        if left:
            got += f", not allowed {listed(left)}"
        shown = ",".join(_absent_ok_text(o) if i in may_lack else option_text(o)
                         for i, o in enumerate(expected))
        diffs.append(Difference("options (any layout)", "{" + shown + "}", got))


def _absent_ok_text(option: tuple) -> str:
    """An option `<{...}>` lets be missing, as written: `mss? <=1460`."""
    name, _, values = option_text(option).partition(" ")
    return f"{name}? {values}".rstrip()


def _compare_ts_val(expected: list, seg: TCPSegment, peer: Peer, diffs: list[Difference]) -> None:
    want, got = next((o for o in expected if o[0] == "TS"), None), seg.option("TS")
    if want is None or got is None or want[1] is ANY:
        return
    problem = peer.ts_val_error(want[1], got[1])
    if problem is not None:
        diffs.append(Difference("TS val", f"{want[1]} (+ the target's clock offset)", problem))


def _option_matches(want: tuple, got: tuple) -> bool:
    if want[0] == "TS":
        return want[2] is ANY or want[2] % MOD == got[2]     # TS val: the target's clock
    if want[0] == "sack":
        return len(want[1]) == len(got[1]) and all(
            (l % MOD, r % MOD) == tuple(b) for (l, r), b in zip(want[1], got[1]))
    return all(w is ANY or matches(w, g) for w, g in zip(want[1:], got[1:]))
