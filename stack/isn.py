"""Initial sequence numbers and timestamp offsets (RFC 6528, RFC 7323 7.1).

Theory of operation: ISN = M + F(localip, localport, remoteip, remoteport, secretkey), where M
is a clock ticking every 4 microseconds (RFC 6528 3 / RFC 9293 3.4.1) and F a keyed hash; the
key is random per host unless the host is given one (a fixed key makes runs reproducible).
The same keyed hash, without M, gives each connection its own timestamp-clock offset so that
TSval reveals nothing about the host's uptime (RFC 7323 7.1, as Linux does).
"""

from __future__ import annotations

import hashlib
import os

from . import seqnum


class IsnGenerator:
    def __init__(self, secret: bytes | None = None, tick: float = 4e-6) -> None:
        self.secret = secret if secret is not None else os.urandom(16)
        self.rate = round(1 / tick)          # ticks per second

    def _hash(self, label: bytes, local: tuple[str, int], remote: tuple[str, int]) -> int:
        text = f"{local[0]}:{local[1]}>{remote[0]}:{remote[1]}".encode()
        digest = hashlib.blake2s(label + text, key=self.secret, digest_size=4).digest()
        return int.from_bytes(digest, "big")

    def isn(self, local: tuple[str, int], remote: tuple[str, int], now: float) -> int:
        """RFC 6528 3: M (ticks of `now`, 4 us unless told) plus F of the connection's four-tuple."""
        return seqnum.add(int(now * self.rate), self._hash(b"isn", local, remote))

    def ts_offset(self, local: tuple[str, int], remote: tuple[str, int]) -> int:
        """A per-connection offset added to the millisecond timestamp clock."""
        return self._hash(b"ts", local, remote)
