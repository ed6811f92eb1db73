"""Links: where the host's IPv4 packets go and come from.

Theory of operation: a link has `send(packet)` and `recv(timeout) -> packet | None`.
`MemoryLink` keeps what the host sends in `sent` (a deque the harness drains) and hands out
what was `inject`ed; `MemoryLink.pair()` wires two links back to back so two hosts can talk.
`TunLink` reads and writes raw IPv4 packets on a TUN device (IFF_TUN | IFF_NO_PI) and skips
anything that is not IPv4; `GsoTunLink`, on a device opened with IFF_VNET_HDR, also takes GSO
packets (`send_gso`, see gso.py). No offload is asked of the kernel in the other direction, so
every packet read carries its own checksum for the host to verify. `ImpairedLink` wraps another link and, from a seeded random
generator, drops, duplicates, delays and reorders what is sent through it; delayed packets
leave when `release()` (called by send and recv) finds their time has come, and
`next_deadline()` says when that is, so a virtual-time loop can advance to it.

Safety: opening a TUN device is only done inside a network namespace made for the purpose
(see tests/stack/test_stack_tun.py); this module never configures addresses or routes.
"""

from __future__ import annotations

import heapq
import os
import queue
import random
import select
import struct
from collections import deque
from typing import Protocol

# struct virtio_net_hdr: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset
VNET_HEADER = struct.Struct("=BBHHHH")
VNET_PLAIN = VNET_HEADER.pack(0, 0, 0, 0, 0, 0)
VNET_GSO_TCPV4 = 1


class Link(Protocol):
    def send(self, packet: bytes) -> None: ...
    def recv(self, timeout: float | None = 0.0) -> bytes | None: ...


class MemoryLink:
    def __init__(self) -> None:
        self.sent: deque[bytes] = deque()
        self.inbox: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self.peer: MemoryLink | None = None

    @classmethod
    def pair(cls) -> tuple["MemoryLink", "MemoryLink"]:
        a, b = cls(), cls()
        a.peer, b.peer = b, a
        return a, b

    def send(self, packet: bytes) -> None:
        if self.peer is not None:
            self.peer.inbox.put(packet)
        else:
            self.sent.append(packet)

    def inject(self, packet: bytes) -> None:
        self.inbox.put(packet)

    def drain(self) -> list[bytes]:
        out = list(self.sent)
        self.sent.clear()
        return out

    def recv(self, timeout: float | None = 0.0) -> bytes | None:
        try:
            if timeout == 0:
                return self.inbox.get_nowait()
            return self.inbox.get(timeout=timeout)
        except queue.Empty:
            return None


class TunLink:
    """A TUN device carrying raw IPv4 (python-pytun). Configure it (address, up) yourself,
    inside a network namespace of your own."""

    def __init__(self, name: str = "rfcdrill0", mtu: int = 1500) -> None:
        import pytun
        self.device = pytun.TunTapDevice(name=name, flags=pytun.IFF_TUN | pytun.IFF_NO_PI)
        self.device.mtu = mtu
        self._setup(self.device.fileno(), mtu)

    @classmethod
    def from_fd(cls, fd: int, mtu: int = 1500) -> "TunLink":
        """A link on a TUN device opened (IFF_TUN | IFF_NO_PI) and configured elsewhere, e.g.
        by harness.netns.open_tun inside a private namespace."""
        link = cls.__new__(cls)
        link.device = None
        link._setup(fd, mtu)
        return link

    def _setup(self, fd: int, mtu: int) -> None:
        self.mtu, self._fd, self._size = mtu, fd, mtu + 64
        os.set_blocking(fd, False)      # recv reads first and selects only when nothing waits

    def fileno(self) -> int:
        return self._fd

    def send(self, packet: bytes) -> None:
        os.write(self._fd, packet)

    def recv(self, timeout: float | None = 0.0) -> bytes | None:
        """The next IPv4 packet, skipping others (IPv6 router solicitations and the like)."""
        while True:
            packet = self._read(timeout, self._size)
            if packet is None or packet[0] >> 4 == 4:
                return packet

    def _read(self, timeout: float | None, size: int) -> bytes | None:
        fd = self._fd
        while True:
            try:
                packet = os.read(fd, size)
            except BlockingIOError:
                if timeout == 0 or not select.select([fd], [], [], timeout)[0]:
                    return None
                continue
            if packet:
                return packet

    def close(self) -> None:
        if self.device is not None:
            self.device.close()
        else:
            os.close(self._fd)


class GsoTunLink(TunLink):
    """A TUN device opened with IFF_VNET_HDR (and no offloads asked of the kernel): every
    frame starts with a virtio_net_hdr, and `send_gso` hands over GSO packets (gso.py)."""

    def send(self, packet: bytes) -> None:
        os.writev(self._fd, (VNET_PLAIN, packet))

    def send_gso(self, packet: bytes, gso_size: int) -> None:
        """One IPv4/TCP packet the kernel takes as segments of `gso_size` payload octets."""
        ihl = (packet[0] & 0xF) * 4
        headers = ihl + (packet[ihl + 12] >> 4) * 4
        os.writev(self._fd, (VNET_HEADER.pack(0, VNET_GSO_TCPV4, headers, gso_size, 0, 0),
                             packet))

    def recv(self, timeout: float | None = 0.0) -> bytes | None:
        """The next IPv4 packet. Without offloads asked for, the kernel sends only plain
        packets with their checksums; a frame that would leave a checksum to us
        (VIRTIO_NET_HDR_F_NEEDS_CSUM) or is a GSO packet is skipped, not taken unverified."""
        skip = VNET_HEADER.size
        while True:
            frame = self._read(timeout, self._size + skip)
            if frame is None:
                return None
            if not frame[0] & 1 and not frame[1] and len(frame) > skip and frame[skip] >> 4 == 4:
                return frame[skip:]


class ImpairedLink:
    """A link that misbehaves reproducibly: every choice comes from `random.Random(seed)`."""

    def __init__(self, inner: Link, clock, seed: int, drop: float = 0.0,
                 duplicate: float = 0.0, reorder: float = 0.0, delay: float = 0.0,
                 jitter: float = 0.0) -> None:
        self.inner, self.clock = inner, clock
        self.rng = random.Random(seed)
        self.drop, self.duplicate, self.reorder = drop, duplicate, reorder
        self.delay, self.jitter = delay, jitter
        self.held: list[tuple[float, int, bytes]] = []
        self.count = 0
        self.stats = {"sent": 0, "dropped": 0, "duplicated": 0, "reordered": 0}

    def send(self, packet: bytes) -> None:
        self.stats["sent"] += 1
        if self.rng.random() < self.drop:
            self.stats["dropped"] += 1
        else:
            copies = 2 if self.rng.random() < self.duplicate else 1
            self.stats["duplicated"] += copies - 1
            for _ in range(copies):
                self._hold(packet)
        self.release()

    def _hold(self, packet: bytes) -> None:
        wait = self.delay + self.rng.uniform(0, self.jitter)
        if self.rng.random() < self.reorder:
            self.stats["reordered"] += 1
            wait += self.delay + self.jitter + 0.001   # let later packets overtake it
        self.count += 1
        heapq.heappush(self.held, (self.clock.now() + wait, self.count, packet))

    def release(self) -> None:
        """Pass on every held packet whose time has come."""
        while self.held and self.held[0][0] <= self.clock.now():
            self.inner.send(heapq.heappop(self.held)[2])

    def next_deadline(self) -> float | None:
        return self.held[0][0] if self.held else None

    def recv(self, timeout: float | None = 0.0) -> bytes | None:
        self.release()
        return self.inner.recv(timeout)
