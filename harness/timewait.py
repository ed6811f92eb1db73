"""Linux's TIME-WAIT, seen from the socket whose connection entered it.

Linux hands a connection entering TIME-WAIT to a separate timewait socket and marks the
user's socket CLOSE; that socket keeps its local name but no longer tells its peer
(getpeername: ENOTCONN). The connection's state, which a case asserts, is then read from the
namespace's socket table (/proc/net/tcp, tcp6): the row with this connection's local and
remote address and port in state TIME_WAIT. The remote end is the one the socket was last
seen connected to (`Peers`), so another connection on the same local port (a listener's
other child, in TIME-WAIT itself) is not taken for this one; for a socket never seen
connected only the local end is compared.
"""

from __future__ import annotations

import socket
import weakref
from typing import Any

from harness.constants import TCP_STATES

_TIME_WAIT = "06"     # the st column of /proc/net/tcp (include/net/tcp_states.h)


class Peers:
    """The peer of each socket, noted while the socket can still tell it."""

    def __init__(self) -> None:
        self._known: weakref.WeakKeyDictionary[socket.socket, tuple[str, int]] = \
            weakref.WeakKeyDictionary()

    def note(self, sock: Any) -> None:
        if not isinstance(sock, socket.socket) or sock.type != socket.SOCK_STREAM:
            return
        try:
            self._known[sock] = sock.getpeername()[:2]
        except OSError:
            pass

    def get(self, sock: socket.socket) -> tuple[str, int] | None:
        return self._known.get(sock)


def _end(family: int, address: str, port: int) -> str:
    """An address and port as /proc/net/tcp writes them (each 32-bit word in host order)."""
    packed = socket.inet_pton(family, address)
    words = "".join(packed[i:i + 4][::-1].hex() for i in range(0, len(packed), 4))
    return f"{words.upper()}:{port:04X}"


def in_time_wait(sock: socket.socket, peer: tuple[str, int] | None) -> bool:
    """Whether the namespace holds this socket's connection (to `peer`, if known) in TIME-WAIT."""
    try:
        local = _end(sock.family, *sock.getsockname()[:2])
        remote = _end(sock.family, *peer) if peer is not None else None
    except OSError:
        return False
    table = "/proc/net/tcp" if sock.family == socket.AF_INET else "/proc/net/tcp6"
    try:
        with open(table) as rows:
            next(rows)
            return any(fields[1] == local and fields[3] == _TIME_WAIT
                       and (remote is None or fields[2] == remote)
                       for fields in (row.split() for row in rows))
    except OSError:
        return False


def with_time_wait(info: dict[str, int], sock: socket.socket,
                   peer: tuple[str, int] | None) -> dict[str, int]:
    """TCP_INFO's fields with tcpi_state TIME_WAIT where the socket's CLOSE hides it."""
    if info["tcpi_state"] == TCP_STATES["CLOSE"] and in_time_wait(sock, peer):
        return {**info, "tcpi_state": TCP_STATES["TIME_WAIT"]}
    return info
