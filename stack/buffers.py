"""Send and receive queues of one connection.

Theory of operation: the send queue holds every octet the user gave that the peer has not yet
acknowledged; its first octet sits at SND.UNA (`SendQueue.base`), so retransmission is a slice.
The receive side keeps in-order octets for the user (a plain bytearray in the connection) and
out-of-order octets here, in `Reassembly`, keyed by *stream offset* (octets since the peer's
ISN, unwrapped) so that no comparison wraps.
"""

from __future__ import annotations

from . import seqnum


class SendQueue:
    """Unacknowledged and unsent user data; `base` is the sequence number of the first octet.

    Acknowledged octets are not cut off the front at once (a bytearray that lost its front
    copies everything it holds when it next grows): `head` marks where the queue starts in
    `data`, and the buffer is compacted only when the dead front is larger than what lives.
    """

    COMPACT = 1 << 16

    def __init__(self, base: int) -> None:
        self.base = base
        self.end = base                # the sequence number after the last queued octet
        self.data = bytearray()
        self.head = 0

    def __len__(self) -> int:
        return len(self.data) - self.head

    def append(self, data: bytes) -> None:
        self.data += data
        self.end = seqnum.add(self.end, len(data))

    def take(self, seq: int, size: int) -> bytes:
        start = seqnum.diff(seq, self.base)
        if start < 0:
            return b""
        start += self.head
        return bytes(self.data[start:start + size])   # two copies, cheaper than a memoryview

    def release(self, upto: int) -> int:
        """Drop octets before `upto` (acknowledged); returns how many went."""
        count = max(0, min(seqnum.diff(upto, self.base), len(self)))
        self.head += count
        self.base = seqnum.add(self.base, count)
        if self.head >= self.COMPACT and 2 * self.head >= len(self.data):
            self.data = self.data[self.head:]          # a new buffer, nothing dead in front
            self.head = 0
        return count


class Reassembly:
    """Out-of-order octets above RCV.NXT as disjoint blocks keyed by stream offset."""

    def __init__(self) -> None:
        self.blocks: dict[int, bytes] = {}
        self.recent: list[int] = []   # block starts, the most recently changed first (RFC 2018 4)

    def __len__(self) -> int:
        return sum(map(len, self.blocks.values())) if self.blocks else 0

    def add(self, start: int, data: bytes) -> None:
        """Store `data` at `start`, merging with blocks it overlaps or touches."""
        lo, hi = start, start + len(data)
        touching = [s for s, b in self.blocks.items() if s <= hi and s + len(b) >= lo]
        for s in touching:
            lo, hi = min(lo, s), max(hi, s + len(self.blocks[s]))
        merged = bytearray(hi - lo)
        for s in touching:
            block = self.blocks.pop(s)
            self.recent.remove(s)
            merged[s - lo:s - lo + len(block)] = block
        merged[start - lo:start - lo + len(data)] = data
        self.blocks[lo] = bytes(merged)
        self.recent.insert(0, lo)

    def pop(self, offset: int) -> bytes:
        """Remove and return the octets that continue the stream at `offset`, if any."""
        out = b""
        for s in sorted(self.blocks):
            if s > offset:
                break
            block = self.blocks.pop(s)
            self.recent.remove(s)
            if s + len(block) > offset:
                out = block[offset - s:]
        return out

    def ranges(self) -> list[tuple[int, int]]:
        """(start, end) stream offsets of the blocks, the most recently changed first."""
        return [(s, s + len(self.blocks[s])) for s in self.recent]
