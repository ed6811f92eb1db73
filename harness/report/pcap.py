"""pcap files of a case's traffic, both directions, readable by tcpdump and Wireshark.

LINKTYPE_RAW (101): each record is a bare IP packet, exactly what crossed the TUN device.
Timestamps are the case's own clock (seconds since it started).
"""

from __future__ import annotations

import struct
from pathlib import Path

from harness.result import PacketRecord

LINKTYPE_RAW = 101


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
