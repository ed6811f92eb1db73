"""Ladder diagrams: a case's packets as an SVG sequence chart.

Time flows down, one row per packet. The remote peer (the runner) is the left rail, the
target the right one; injected segments point right, the target's point left. Numbers are
the script's: the target's sequence numbers (and the acks and SACK blocks that refer to
them) are relative to its ISN, learned from its first SYN in the packet list; the runner's
own numbers are written as they went on the wire, which is what a script writes.

When a case failed on an outbound segment, the segment the script expected is drawn dashed
and red beside the one that came (or alone at the end, if none came).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from html import escape

from harness.peer import Peer
from harness.result import Failure, PacketRecord
from harness.ip import IP, decode
from harness.errors import Malformed
from harness.tcp import SYN, TCPSegment

MOD = 1 << 32
LEFT, RIGHT, WIDTH = 150, 690, 860     # rails and canvas, in px
TOP, ROW, SLANT = 46, 40, 14            # first row, row pitch, how far an arrow drops
EXPECTED_STYLE = 'stroke="#c62828" stroke-dasharray="6 4"'


@dataclass
class Arrow:
    time: float
    inbound: bool           # injected by the runner, towards the target
    label: str
    kind: str = "packet"    # packet | actual (the segment that failed) | expected


def target_isns(packets: list[PacketRecord]) -> dict[tuple[int, int], int]:
    """The sequence number of the target's first SYN on each connection (local, remote port)."""
    isns: dict[tuple[int, int], int] = {}
    for packet in sorted(packets, key=lambda p: p.time):
        decoded = _decode(packet)
        if packet.direction == "out" and not isinstance(decoded, str) and decoded[1].flags & SYN:
            isns.setdefault((decoded[1].sport, decoded[1].dport), decoded[1].seq)
    return isns


def label(ip: IP, seg: TCPSegment, inbound: bool, isn: int) -> str:
    """A segment in script notation: the target's own numbers relative to its ISN, and on
    injected segments the ack and SACK blocks that refer to them; the runner's as they are."""
    if not inbound:
        return Peer(isns={(seg.sport, seg.dport): isn}).notation(ip, seg)
    options = [("sack", [((l - isn) % MOD, (r - isn) % MOD) for l, r in o[1]])
               if o[0] == "sack" else o for o in seg.options]
    return Peer().notation(ip, replace(seg, ack=(seg.ack - isn) % MOD, options=options))


def arrows(packets: list[PacketRecord], failure: Failure | None = None) -> list[Arrow]:
    """One arrow per packet in time order, plus the expected segment of a failed `>` line."""
    isns = target_isns(packets)
    out: list[Arrow] = []
    for packet in sorted(packets, key=lambda p: p.time):
        inbound = packet.direction == "in"
        decoded = _decode(packet)
        if isinstance(decoded, str):
            text = decoded
        else:
            seg = decoded[1]
            key = (seg.dport, seg.sport) if inbound else (seg.sport, seg.dport)
            text = label(*decoded, inbound, isns.get(key, 0))
        out.append(Arrow(packet.time, inbound, text))
    if failure is not None and _is_outbound_line(failure.script_line) and failure.expected:
        _mark_failure(out, failure)
    return out


def svg(packets: list[PacketRecord], failure: Failure | None = None,
        target: str = "target") -> str:
    """The ladder as an inline <svg> element (no ids, so many can share a page)."""
    drawn = arrows(packets, failure)
    height = TOP + ROW * max(len(drawn), 1) + 10
    parts = [f'<svg class="ladder" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
             f'height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" '
             f'data-arrows="{len(drawn)}">',
             f'<text x="{LEFT}" y="16" class="rail-name" text-anchor="middle">rfcdrill (remote peer)</text>',
             f'<text x="{RIGHT}" y="16" class="rail-name" text-anchor="middle">{escape(target)}</text>',
             f'<line x1="{LEFT}" y1="24" x2="{LEFT}" y2="{height - 4}" class="rail"/>',
             f'<line x1="{RIGHT}" y1="24" x2="{RIGHT}" y2="{height - 4}" class="rail"/>']
    if not drawn:
        parts.append(f'<text x="{(LEFT + RIGHT) // 2}" y="{TOP}" text-anchor="middle" '
                     'class="none">no packets</text>')
    parts.extend(_arrow_svg(arrow, TOP + ROW * i) for i, arrow in enumerate(drawn))
    parts.append("</svg>")
    return "".join(parts)


def _arrow_svg(arrow: Arrow, y: int) -> str:
    x1, x2 = (LEFT, RIGHT) if arrow.inbound else (RIGHT, LEFT)
    y2 = y + SLANT
    head = -10 if arrow.inbound else 10
    style = {"packet": 'stroke="#37474f"', "actual": 'stroke="#c62828"',
             "expected": EXPECTED_STYLE}[arrow.kind]
    fill = "#37474f" if arrow.kind == "packet" else "#c62828"
    prefix = {"packet": "", "actual": "actual: ", "expected": "expected: "}[arrow.kind]
    mid = (LEFT + RIGHT) // 2
    time = "" if arrow.kind == "expected" else f"{arrow.time:.6f}"
    return (f'<g class="arrow {arrow.kind}" data-dir="{"in" if arrow.inbound else "out"}">'
            f'<title>{escape(prefix + arrow.label)}</title>'
            f'<text x="{LEFT - 8}" y="{y + SLANT // 2 + 4}" text-anchor="end" class="time">{time}</text>'
            f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y2}" stroke-width="1.5" {style}/>'
            f'<polygon points="{x2},{y2} {x2 + head},{y2 - 5} {x2 + head},{y2 + 3}" fill="{fill}"/>'
            f'<text x="{mid}" y="{y - 4}" text-anchor="middle" class="seg" fill="{fill}">'
            f'{escape(prefix + arrow.label)}</text></g>')


def _mark_failure(drawn: list[Arrow], failure: Failure) -> None:
    """Colour the segment that failed and insert the expected one after it."""
    expected = Arrow(0.0, False, failure.expected, "expected")
    index = _actual_index(drawn, failure.actual)
    if index is None:
        expected.label += "  (did not arrive)"
        drawn.append(expected)
        return
    drawn[index].kind = "actual"
    expected.time = drawn[index].time
    drawn.insert(index + 1, expected)


def _actual_index(drawn: list[Arrow], actual: str) -> int | None:
    """The outbound arrow the failure's `actual` text describes: by its time, else its text."""
    stamp = re.match(r"(\d+\.\d+) (.*)", actual)
    text = stamp.group(2) if stamp else actual
    for i, arrow in enumerate(drawn):
        if arrow.inbound:
            continue
        if stamp and abs(arrow.time - float(stamp.group(1))) < 1e-6 or arrow.label == text:
            return i
    return None


def _is_outbound_line(script_line: str) -> bool:
    return ">" in script_line.split()[1:2]


def _decode(packet: PacketRecord) -> tuple[IP, TCPSegment] | str:
    """The packet's IP header and TCP segment, or why it has none."""
    try:
        return decode(packet.data)
    except Malformed as exc:
        return f"not a TCP segment: {exc}"
