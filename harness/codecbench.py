"""`rfcdrill bench --codec`: what decoding and building one segment costs the harness.

The runner decodes every segment a target sends (`harness.ip.decode`) and builds every one
it injects (`harness.ip.encode`), so this cost is paid per packet on every case. Each kind
of segment below is decoded and built in a tight loop; a figure is the best of several
rounds in microseconds of this process's CPU time per segment (CPU time, not wall time, so
that other processes on a busy machine disturb it less).
No privileges, namespaces or devices are needed: it is pure computation.
"""

from __future__ import annotations

import random
import time
from typing import Callable

from harness.ip import IP, IPv4, IPv6, decode, encode
from harness.tcp import ACK, PSH, SYN, TCPSegment

TS = ("TS", 2_000_000_000, 1_000_000)


def samples() -> dict[str, tuple[IP, TCPSegment]]:
    """Segments as the runner meets them: handshakes, pure ACKs, full-sized data with
    timestamps, SACK, a 64 KiB TSO super-packet (kernel target with offloads), and IPv6."""
    data = random.Random(1).randbytes(65495)       # checksums of zeros would be too cheap
    v4 = IPv4("192.168.0.1", "192.0.2.1")
    v6 = IPv6("fd3d:fa7b:d17d::1", "2001:db8::1")
    syn_options = [("mss", 1460), ("sackOK",), TS, ("nop",), ("wscale", 7)]
    sack = [("nop",), ("nop",), TS, ("nop",), ("nop",),
            ("sack", [(1001, 2001), (3001, 4001), (5001, 6001)])]
    return {
        "SYN with options": (v4, TCPSegment(8080, 40000, 1, 0, SYN, 65535, 0, syn_options)),
        "pure ACK with TS": (v4, TCPSegment(8080, 40000, 1, 1, ACK, 502, 0, [("nop",), ("nop",), TS])),
        "ACK with SACK blocks": (v4, TCPSegment(8080, 40000, 1, 1, ACK, 502, 0, sack)),
        "1448 bytes of data": (v4, TCPSegment(8080, 40000, 1, 1, ACK | PSH, 502, 0,
                                              [("nop",), ("nop",), TS], data[:1448])),
        "64 KiB TSO packet": (v4, TCPSegment(8080, 40000, 1, 1, ACK, 502, 0, [], data)),
        "IPv6 pure ACK with TS": (v6, TCPSegment(8080, 40000, 1, 1, ACK, 502, 0,
                                                 [("nop",), ("nop",), TS])),
        "IPv6 1448 bytes of data": (v6, TCPSegment(8080, 40000, 1, 1, ACK | PSH, 502, 0,
                                                   [("nop",), ("nop",), TS], data[:1448])),
    }


def per_call_us(fn: Callable[[], object], rounds: int, budget_s: float) -> float:
    """Microseconds per call of `fn`: the best of `rounds` rounds of about `budget_s` each."""
    n, start = 0, time.process_time()
    while time.process_time() - start < budget_s / 4:     # calibrate the loop's length
        fn()
        n += 1
    loops = max(1, n * 4)
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(loops):
            fn()
        best = min(best, (time.process_time() - start) / loops)
    return best * 1e6


def measure(quick: bool = False) -> dict[str, tuple[float, float]]:
    """Per kind of segment: (decode, build) in microseconds per segment."""
    rounds, budget = (3, 0.05) if quick else (7, 0.2)
    figures = {}
    for name, (ip, seg) in samples().items():
        raw = encode(ip, seg)
        figures[name] = (per_call_us(lambda: decode(raw), rounds, budget),
                         per_call_us(lambda: encode(ip, seg), rounds, budget))
    return figures


def main(quick: bool = False) -> None:
    figures = measure(quick)
    print(f"{'segment':<26} {'decode us':>10} {'build us':>10}")
    for name, (dec, enc) in figures.items():
        print(f"{name:<26} {dec:>10.2f} {enc:>10.2f}")
    small = [v for k, v in figures.items() if "TSO" not in k]
    print(f"{'mean (without TSO)':<26} {sum(d for d, _ in small) / len(small):>10.2f} "
          f"{sum(e for _, e in small) / len(small):>10.2f}")
