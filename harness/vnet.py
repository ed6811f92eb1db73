"""The virtio_net_hdr that prefixes packets on a TUN device opened with IFF_VNET_HDR.

With offloads on (packetdrill's device), the kernel may send a TSO super-packet (one IP
packet carrying several MSS worth of payload) whose TCP checksum it left for the "NIC" to
finish (VIRTIO_NET_HDR_F_NEEDS_CSUM: the field holds the pseudo-header sum, the sum of
the rest is still to be added). `strip` finishes it, as a NIC would, so the packet that the
runner matches and records is the one that would have gone on the wire.
"""

from __future__ import annotations

import struct

from harness.checksum import checksum

HEADER = struct.Struct("=BBHHHH")      # flags, gso_type, hdr_len, gso_size, csum_start, csum_offset
NEEDS_CSUM = 1


def strip(frame: bytes) -> bytes:
    """The IP packet in a frame read from the device, its checksum finished if needed."""
    flags, _, _, _, start, offset = HEADER.unpack_from(frame)
    packet = bytearray(frame[HEADER.size:])
    if flags & NEEDS_CSUM and start + offset + 2 <= len(packet):
        # The field holds the pseudo-header's sum; the checksum of everything from
        # csum_start on, that field included, is what a NIC writes there.
        struct.pack_into("!H", packet, start + offset, checksum(bytes(packet[start:])))
    return bytes(packet)


def wrap(packet: bytes) -> bytes:
    """A frame to write: a plain packet, no offload asked of the kernel."""
    return HEADER.pack(0, 0, 0, 0, 0, 0) + packet
