"""pcap files of a case's traffic, both directions, readable by tcpdump and Wireshark.

LINKTYPE_RAW (101): each record is a bare IP packet, exactly what crossed the TUN device.
Timestamps are the case's own clock (seconds since it started).
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

from harness.result import PASS, PacketRecord, Result

LINKTYPE_RAW = 101


def name(result: Result) -> str:
    """Where a result's pcap goes inside the report folder."""
    return "pcaps/" + re.sub(r"[^A-Za-z0-9._-]", "_", f"{result.case_id}.{result.target}") + ".pcap"


def kept(result: Result, keep_all: bool) -> bool:
    """Whether the report keeps a pcap for `result`: every non-pass, or all with `keep_all`."""
    return bool(result.packets) and (keep_all or result.verdict != PASS)


def render(packets: list[PacketRecord]) -> bytes:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_RAW)]
    for packet in sorted(packets, key=lambda p: p.time):
        seconds = int(packet.time)
        micros = int(round((packet.time - seconds) * 1e6))
        if micros >= 1_000_000:
            seconds, micros = seconds + 1, micros - 1_000_000
        out.append(struct.pack("<IIII", seconds, micros, len(packet.data), len(packet.data)))
        out.append(packet.data)
    return b"".join(out)


def write(path: str | Path, packets: list[PacketRecord]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(render(packets))
