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
GSO_TCPV4, GSO_TCPV6 = 1, 4            # gso_type of a TCP super-packet (include/uapi/linux/virtio_net.h)
_TCP = 6


def strip(frame: bytes) -> bytes:
    """The IP packet in a frame read from the device, its checksum finished if needed."""
    flags, _, _, _, start, offset = HEADER.unpack_from(frame)
    packet = bytearray(frame[HEADER.size:])
    if flags & NEEDS_CSUM and start + offset + 2 <= len(packet):
        # The field holds the pseudo-header's sum; the checksum of everything from
        # csum_start on, that field included, is what a NIC writes there.
        struct.pack_into("!H", packet, start + offset, checksum(bytes(packet[start:])))
    return bytes(packet)


def wrap(packet: bytes, gso_size: int = 0) -> bytes:
    """A frame to write. With `gso_size`, a TCP packet is marked as a GSO super-packet of
    segments that size, as packetdrill marks every TCP packet it injects under --mss (the
    receiver then takes its MSS estimate from gso_size); anything else goes plain."""
    version = packet[0] >> 4 if packet else 0
    # the protocol field of an IPv4 header, the next header field of an IPv6 one
    protocol_at = {4: 9, 6: 6}.get(version, len(packet))
    if gso_size and protocol_at < len(packet) and packet[protocol_at] == _TCP:
        gso_type = GSO_TCPV4 if version == 4 else GSO_TCPV6
        return HEADER.pack(0, gso_type, 0, gso_size, 0, 0) + packet
    return HEADER.pack(0, 0, 0, 0, 0, 0) + packet
