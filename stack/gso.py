"""Generic segmentation offload: a flight of segments handed to the kernel as one packet.

Theory of operation: writing to a TUN device costs a system call and a pass through the
kernel's receive path per packet. A device opened with a virtio_net_hdr takes a GSO packet
instead: one IPv4/TCP packet whose payload is several segments long, with `gso_size` saying
where to cut. The kernel treats it as the segments it stands for (as a NIC does with TSO): cut
apart, each piece gets a copy of the TCP header with its own sequence number, and PSH and FIN
are kept only on the last piece (Linux's tcp_gso_segment); delivered locally, the packet goes
to TCP whole, as the receive offload (GRO) would have merged those segments.

So `coalesce` merges only what comes back unchanged: consecutive segments of one event that
are contiguous in sequence space, all but the last exactly `gso_size` long, with the same ACK,
window and options, no URG, and no PSH or FIN before the last. The connection decides every
segment as before (windows, Nagle, congestion control); this changes only how many packets
carry them. The merged packet carries a checksum over all of it, which the kernel verifies.
"""

from __future__ import annotations

from dataclasses import replace

from .wire import ACK, FIN, PSH, TCPSegment

MAX_PAYLOAD = 65535 - 20 - 60       # an IPv4 total length, less the largest headers


def _continues(run: list[TCPSegment], seg: TCPSegment) -> bool:
    """Whether `seg` may follow the segments in `run` in one GSO packet."""
    first, last = run[0], run[-1]
    size = len(first.payload)
    return (last.flags == ACK and len(last.payload) == size
            and seg.flags & ~(PSH | FIN) == ACK and 0 < len(seg.payload) <= size
            and seg.seq == (last.seq + size) & 0xFFFFFFFF
            and seg.ack == first.ack and seg.window == first.window
            and seg.options == first.options
            and (len(run) + 1) * size <= MAX_PAYLOAD)


def coalesce(segments: list[TCPSegment]) -> list[tuple[TCPSegment, int]]:
    """The segments as (segment, gso_size) pairs: gso_size 0 for one sent as it is, else the
    payload size of each piece of a merged segment."""
    out: list[tuple[TCPSegment, int]] = []
    run: list[TCPSegment] = []
    for seg in segments:
        if run and _continues(run, seg):
            run.append(seg)
            continue
        if run:
            out.append(_merged(run))
        run = [seg] if seg.payload and not seg.flags & ~(ACK | PSH | FIN) else []
        if not run:
            out.append((seg, 0))
    if run:
        out.append(_merged(run))
    return out


def _merged(run: list[TCPSegment]) -> tuple[TCPSegment, int]:
    if len(run) == 1:
        return run[0], 0
    payload = b"".join(seg.payload for seg in run)
    return replace(run[0], flags=run[-1].flags, payload=payload), len(run[0].payload)
