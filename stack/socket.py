"""A socket object that behaves like Python's `socket.socket`, on top of the stack's TCP.

Theory of operation: a `Socket` belongs to a `Host`. Before connect/listen it holds only
options and an address; `connect` gives it a `Connection`, `listen` makes it a listener whose
accepted connections become new sockets. Calls translate to connection events (with the host's
clock) and to Linux's errors: `OSError(errno, ...)` picks the matching subclass
(ConnectionRefusedError, BlockingIOError...). A call that must wait asks the host to run its
I/O loop until a condition holds (`Host.wait`); with a virtual clock nothing can advance time,
so such a call raises BlockingIOError (EAGAIN, or EINPROGRESS for connect) instead of hanging.
Drive virtual-time sockets in non-blocking mode with `Host.poll`.

Readiness (`revents`) follows Linux's tcp_poll: POLLHUP when both directions are shut or
the socket is closed, POLLIN at EOF, POLLOUT while there is send space, POLLERR on a pending
error, POLLPRI for urgent data.
"""

from __future__ import annotations

import errno
import os
import select
import socket as _pysocket
import struct
from collections import deque
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .config import SocketOptions
from .connection import Connection
from .events import SYNCHRONIZED, State
from . import tcpinfo

if TYPE_CHECKING:
    from .host import Host

_S, _T, _IP = _pysocket.SOL_SOCKET, _pysocket.IPPROTO_TCP, _pysocket.IPPROTO_IP
MSG_OOB, MSG_PEEK, MSG_DONTWAIT = _pysocket.MSG_OOB, _pysocket.MSG_PEEK, _pysocket.MSG_DONTWAIT
FIONREAD, SIOCOUTQ, SIOCATMARK = 0x541B, 0x5411, 0x8905
IP_RECVERR = 11                                   # <linux/in.h>; Python does not name it
SOCK_MIN_RCVBUF, SOCK_MIN_SNDBUF = 2304, 4608     # Linux's floors for the doubled values
TCP_MSS_DEFAULT = 536


def error(code: int, detail: str = "") -> OSError:
    """An OSError of the right subclass for `code`, worded like the C library."""
    text = os.strerror(code) + (f" ({detail})" if detail else "")
    return OSError(code, text)


class Socket:
    def __init__(self, host: "Host", family: int = _pysocket.AF_INET,
                 type: int = _pysocket.SOCK_STREAM, proto: int = 0) -> None:
        if family != _pysocket.AF_INET:
            raise error(errno.EAFNOSUPPORT)
        if type & 0xF != _pysocket.SOCK_STREAM or proto not in (0, _pysocket.IPPROTO_TCP):
            raise error(errno.EPROTONOSUPPORT)
        self.host = host
        self.family, self.type, self.proto = family, _pysocket.SOCK_STREAM, _pysocket.IPPROTO_TCP
        self.opts = SocketOptions()
        self.conn: Connection | None = None
        self.local: tuple[str, int] | None = None
        self.listening = False
        self.backlog = 0
        self.accept_queue: deque[Connection] = deque()
        self.timeout: float | None = None
        self.closed = False
        self.shut_rd = self.shut_wr = False
        self.error_reported = False
        self._fileno = host.new_fileno()

    # -------------------------------------------------------------- plumbing

    def __repr__(self) -> str:
        state = self.conn.state.value if self.conn else "LISTEN" if self.listening else "CLOSED"
        return f"<stack.Socket fd={self._fileno} {state} local={self.local}>"

    def __enter__(self) -> "Socket":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fileno(self) -> int:
        return -1 if self.closed else self._fileno

    def _check_open(self) -> None:
        if self.closed:
            raise error(errno.EBADF)

    def _now(self) -> float:
        return self.host.clock.now()

    def _blocking(self, flags: int = 0) -> bool:
        return self.timeout != 0 and not flags & MSG_DONTWAIT

    def _wait(self, ready, flags: int = 0, code: int = errno.EAGAIN) -> None:
        """Block (per timeout) until `ready()`, or raise BlockingIOError if non-blocking."""
        if ready():
            return
        if not self._blocking(flags):
            raise error(code)
        self.host.wait(ready, self.timeout, code)

    def _take_error(self) -> int | None:
        """The pending error, once (SO_ERROR semantics); with IP_RECVERR a soft ICMP error
        is pending too (Linux sets sk_err then, RFC 1122 4.2.3.9 lets the application know)."""
        if self.conn is not None and self.conn.error and not self.error_reported:
            self.error_reported = True
            return self.conn.error
        if self._soft_error_pending():
            code, self.conn.soft_error = self.conn.soft_error, None
            return code
        return None

    def _soft_error_pending(self) -> bool:
        return self.conn is not None and self.opts.recverr and bool(self.conn.soft_error)

    def _raise_pending(self) -> None:
        code = self._take_error()
        if code:
            raise error(code)

    # -------------------------------------------------------------- timeouts and blocking

    def settimeout(self, value: float | None) -> None:
        if value is not None and value < 0:
            raise ValueError("Timeout value out of range")
        self.timeout = value

    def gettimeout(self) -> float | None:
        return self.timeout

    def setblocking(self, flag: bool) -> None:
        self.timeout = None if flag else 0.0

    def getblocking(self) -> bool:
        return self.timeout != 0

    # -------------------------------------------------------------- addresses

    def bind(self, address: tuple[str, int]) -> None:
        self._check_open()
        if self.local is not None:
            raise error(errno.EINVAL)
        addr, port = address
        if addr not in ("", "0.0.0.0", self.host.address):
            raise error(errno.EADDRNOTAVAIL)
        self.local = (self.host.address, self.host.claim_port(self, port))

    def getsockname(self) -> tuple[str, int]:
        self._check_open()
        return self.local or ("0.0.0.0", 0)

    def getpeername(self) -> tuple[str, int]:
        self._check_open()
        if self.conn is None or self.conn.state in (State.SYN_SENT, State.CLOSED):
            raise error(errno.ENOTCONN)
        return self.conn.remote

    # -------------------------------------------------------------- opening

    def listen(self, backlog: int = 128) -> None:
        self._check_open()
        if self.conn is not None:
            raise error(errno.EINVAL)
        if self.local is None:
            self.bind(("", 0))
        self.listening = True
        self.backlog = max(0, backlog)
        self.host.add_listener(self)

    def accept(self) -> tuple["Socket", tuple[str, int]]:
        self._check_open()
        if not self.listening:
            raise error(errno.EINVAL)
        self._wait(lambda: bool(self.accept_queue))
        conn = self.accept_queue.popleft()
        child = Socket(self.host)
        child.opts, child.conn, child.local = conn.opts, conn, conn.local
        child.timeout = None          # like Python's accept(): the new socket blocks
        self.host.adopt(child, conn)
        return child, conn.remote

    def connect(self, address: tuple[str, int]) -> None:
        self._check_open()
        if self.listening:
            raise error(errno.EINVAL)
        if self.conn is not None:
            if self.conn.state is State.SYN_SENT:
                raise error(errno.EALREADY)
            code = self._take_error()
            if code:
                raise error(code)
            raise error(errno.EISCONN)
        if self.local is None:
            self.bind(("", 0))
        self.conn = self.host.open(self, (address[0], int(address[1])))
        self._wait(lambda: self.conn.state is not State.SYN_SENT, code=errno.EINPROGRESS)
        self._raise_pending()

    def connect_ex(self, address: tuple[str, int]) -> int:
        try:
            self.connect(address)
        except OSError as exc:
            return exc.errno or errno.EIO
        return 0

    # -------------------------------------------------------------- data

    def _conn(self, missing: int) -> Connection:
        self._check_open()
        if self.conn is None:
            raise error(missing)
        return self.conn

    def send(self, data: bytes, flags: int = 0) -> int:
        conn = self._conn(errno.EPIPE)
        self._raise_pending()
        if conn.state in (State.SYN_SENT, State.SYN_RECEIVED):
            self._wait(lambda: conn.state not in (State.SYN_SENT, State.SYN_RECEIVED), flags)
            self._raise_pending()
        if self.shut_wr or conn.state not in (State.ESTABLISHED, State.CLOSE_WAIT):
            raise error(errno.EPIPE)
        data = memoryview(data).cast("B")      # the connection copies only what it takes
        if not data:
            return 0
        self._wait(lambda: conn.send_space > 0 or conn.state is State.CLOSED, flags)
        self._raise_pending()
        if conn.state is State.CLOSED:
            raise error(errno.EPIPE)
        return self.host.apply(conn, conn.send(data, bool(flags & MSG_OOB), self._now()))

    def sendall(self, data: bytes, flags: int = 0) -> None:
        view = memoryview(data).cast("B")
        while view:
            view = view[self.send(view, flags):]

    def recv(self, size: int, flags: int = 0) -> bytes:
        if size < 0:
            raise ValueError("negative buffersize in recv")
        conn = self._conn(errno.ENOTCONN)
        if flags & MSG_OOB:
            return self._recv_oob(conn)
        if conn.state is State.SYN_SENT:
            self._wait(lambda: conn.state is not State.SYN_SENT, flags)
        self._wait(lambda: self._readable(conn), flags)
        if not conn.recvq:
            self._raise_pending()
            return b""
        return self.host.apply(conn, conn.read(size, bool(flags & MSG_PEEK), self._now()))

    def _readable(self, conn: Connection) -> bool:
        return bool(conn.recvq) or conn.fin_received or self.shut_rd \
            or conn.state is State.CLOSED or bool(conn.error and not self.error_reported) \
            or self._soft_error_pending()

    def _recv_oob(self, conn: Connection) -> bytes:
        """Linux MSG_OOB: the urgent octet; EINVAL when there is none, it was read already
        or SO_OOBINLINE; EAGAIN while it is announced but has not arrived."""
        if self.opts.oobinline or conn.rcv_up is None or conn.oob_read:
            raise error(errno.EINVAL)
        if conn.oob is None:
            raise error(errno.EAGAIN)
        return self.host.apply(conn, conn.read_urgent(self._now()))

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        view = memoryview(buffer).cast("B")
        data = self.recv(nbytes or len(view), flags)
        view[:len(data)] = data
        return len(data)

    # -------------------------------------------------------------- closing

    def shutdown(self, how: int) -> None:
        conn = self._conn(errno.ENOTCONN)
        if how not in (_pysocket.SHUT_RD, _pysocket.SHUT_WR, _pysocket.SHUT_RDWR):
            raise error(errno.EINVAL)
        if conn.state in (State.SYN_SENT, State.CLOSED) and not conn.error:
            raise error(errno.ENOTCONN)
        if how in (_pysocket.SHUT_RD, _pysocket.SHUT_RDWR):
            self.shut_rd = True
        if how in (_pysocket.SHUT_WR, _pysocket.SHUT_RDWR) and not self.shut_wr:
            self.shut_wr = True
            self.host.apply(conn, conn.shutdown(self._now()))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.listening:
            self.host.remove_listener(self)
            return
        self.host.release_port(self)
        conn = self.conn
        if conn is None or conn.state is State.CLOSED:
            return
        self.host.apply(conn, conn.close(self._now()))
        on, seconds = self.opts.linger
        if on and seconds and self.host.clock.can_block and self.timeout != 0:
            # SO_LINGER: wait until the FIN is acknowledged or the time runs out.
            done = lambda: conn.state in (State.CLOSED, State.FIN_WAIT_2, State.TIME_WAIT)
            try:
                self.host.wait(done, float(seconds), errno.EAGAIN)
            except TimeoutError:
                pass

    # -------------------------------------------------------------- readiness

    def revents(self, events: int) -> int:
        """What poll() would report for `events` (plus POLLERR/POLLHUP/POLLNVAL, always)."""
        if self.closed:
            return select.POLLNVAL
        if self.listening:
            mask = select.POLLIN | select.POLLRDNORM if self.accept_queue else 0
            return mask & events
        conn = self.conn
        mask = 0
        closed = conn is None or conn.state is State.CLOSED
        rd_shut = closed or conn.fin_received or self.shut_rd
        wr_shut = closed or self.shut_wr
        if closed or (rd_shut and wr_shut):
            mask |= select.POLLHUP
        if rd_shut and conn is not None:
            mask |= select.POLLIN | select.POLLRDNORM | select.POLLRDHUP
        if conn is None or conn.state not in (State.SYN_SENT, State.SYN_RECEIVED):
            if conn is not None and conn.recvq:
                mask |= select.POLLIN | select.POLLRDNORM
            if wr_shut or conn is None or conn.send_space > 0:
                mask |= select.POLLOUT | select.POLLWRNORM
            if conn is not None and conn.urgent_pending:
                mask |= select.POLLPRI
        if conn is not None and ((conn.error and not self.error_reported) or self._soft_error_pending()):
            mask |= select.POLLERR
        return mask & (events | select.POLLERR | select.POLLHUP | select.POLLNVAL)

    def ioctl(self, request: int) -> int:
        """FIONREAD/SIOCINQ (unread octets), SIOCOUTQ (unacknowledged plus unsent) and
        SIOCATMARK (the next octet to read is where the urgent data ended)."""
        conn = self._conn(errno.EINVAL)
        if request == FIONREAD:
            return len(conn.recvq)
        if request == SIOCOUTQ:
            return len(conn.sendq)
        if request == SIOCATMARK:
            return int(conn.at_mark)
        raise error(errno.ENOTTY)

    # -------------------------------------------------------------- options

    def setsockopt(self, level: int, name: int, value: int | bytes) -> None:
        self._check_open()
        number = value if isinstance(value, int) else struct.unpack("i", bytes(value)[:4].ljust(4, b"\0"))[0]
        setter = _SETTERS.get((level, name))
        if setter is None:
            raise error(errno.ENOPROTOOPT)
        setter(self, number, value)
        if self.conn is not None and (level, name) in _KEEPALIVE_OPTIONS:
            self.host.apply(self.conn, self.conn.keepalive_changed(self._now()))

    def getsockopt(self, level: int, name: int, buflen: int = 0) -> int | bytes:
        self._check_open()
        if (level, name) == (_T, _pysocket.TCP_INFO):
            return self.tcp_info(buflen or tcpinfo.SIZE)
        getter = _GETTERS.get((level, name))
        if getter is None:
            raise error(errno.ENOPROTOOPT)
        value = getter(self)
        if isinstance(value, bytes):
            return value[:buflen] if buflen else value
        return struct.pack("i", value)[:buflen] if buflen else value

    def tcp_info(self, size: int = tcpinfo.SIZE) -> bytes:
        state = State.LISTEN if self.listening else State.CLOSED
        return tcpinfo.pack(self.conn, self._now(), size, state)

    def _so_error(self) -> int:
        code = self._take_error()
        if code is None and self.conn is not None and self.conn.soft_error:
            code, self.conn.soft_error = self.conn.soft_error, None
        return code or 0

    def _set_buffer(self, attr: str, floor: int, value: int) -> None:
        """SO_RCVBUF / SO_SNDBUF: Linux stores twice the value asked for, with a floor."""
        setattr(self.opts, attr, max(2 * value, floor))

    def _set_linger(self, raw: int | bytes) -> None:
        if isinstance(raw, int):
            raise error(errno.EINVAL)
        onoff, seconds = struct.unpack("ii", bytes(raw)[:8])
        self.opts.linger = (bool(onoff), seconds)

    def _set_cork(self, on: bool) -> None:
        """TCP_CORK: partial segments wait while corked; uncorking sends them."""
        self.opts.cork = on
        if self.conn is not None and not on:
            self.host.apply(self.conn, self.conn.push(self._now()))

    def _set_quickack(self, on: bool) -> None:
        """TCP_QUICKACK acts on the connection's ACK mode; without one it has nothing to do."""
        if self.conn is not None:
            self.host.apply(self.conn, self.conn.set_quickack(on, self._now()))

    def _maxseg(self) -> int:
        if self.conn is not None and self.conn.state in SYNCHRONIZED:
            return self.conn.mss
        return self.opts.maxseg or TCP_MSS_DEFAULT


def _set(attr: str, convert=bool):
    return lambda sock, number, raw: setattr(sock.opts, attr, convert(number))


def _get(attr: str, convert=int):
    return lambda sock: convert(getattr(sock.opts, attr))


def _seconds(number: int) -> float:
    if number < 1:
        raise error(errno.EINVAL)
    return float(number)


def _maxseg(number: int) -> int:
    if number and not 88 <= number <= 65535:
        raise error(errno.EINVAL)
    return number


def _ttl(number: int) -> int:
    if not 1 <= number <= 255:
        raise error(errno.EINVAL)
    return number


def _user_timeout(number: int) -> float:
    if number < 0:
        raise error(errno.EINVAL)
    return number / 1000


_SETTERS = {
    (_S, _pysocket.SO_REUSEADDR): _set("reuseaddr"),
    (_S, _pysocket.SO_KEEPALIVE): _set("keepalive"),
    (_S, _pysocket.SO_OOBINLINE): _set("oobinline"),
    (_S, _pysocket.SO_RCVBUF): lambda s, n, r: s._set_buffer("rcvbuf", SOCK_MIN_RCVBUF, n),
    (_S, _pysocket.SO_SNDBUF): lambda s, n, r: s._set_buffer("sndbuf", SOCK_MIN_SNDBUF, n),
    (_S, _pysocket.SO_LINGER): lambda s, n, r: s._set_linger(r),
    (_T, _pysocket.TCP_NODELAY): _set("nodelay"),
    (_T, _pysocket.TCP_MAXSEG): _set("maxseg", _maxseg),
    (_T, _pysocket.TCP_KEEPIDLE): _set("keepidle", _seconds),
    (_T, _pysocket.TCP_KEEPINTVL): _set("keepintvl", _seconds),
    (_T, _pysocket.TCP_KEEPCNT): _set("keepcnt", lambda n: int(_seconds(n))),
    (_T, _pysocket.TCP_USER_TIMEOUT): _set("user_timeout", _user_timeout),
    (_IP, _pysocket.IP_TOS): _set("tos", lambda n: n & 0xFF),
    (_T, _pysocket.TCP_QUICKACK): lambda s, n, r: s._set_quickack(bool(n)),
    (_T, _pysocket.TCP_CORK): lambda s, n, r: s._set_cork(bool(n)),
    (_IP, _pysocket.IP_TTL): _set("ttl", lambda n: 64 if n == -1 else _ttl(n)),
    (_IP, IP_RECVERR): _set("recverr"),
}
_KEEPALIVE_OPTIONS = {(_S, _pysocket.SO_KEEPALIVE), (_T, _pysocket.TCP_KEEPIDLE),
                      (_T, _pysocket.TCP_KEEPINTVL), (_T, _pysocket.TCP_KEEPCNT)}

_GETTERS = {
    (_S, _pysocket.SO_REUSEADDR): _get("reuseaddr"),
    (_S, _pysocket.SO_KEEPALIVE): _get("keepalive"),
    (_S, _pysocket.SO_OOBINLINE): _get("oobinline"),
    (_S, _pysocket.SO_RCVBUF): lambda s: s.opts.rcvbuf or s.host.cfg.rmem[1],
    (_S, _pysocket.SO_SNDBUF): lambda s: s.conn.sndbuf if s.conn else s.opts.sndbuf or s.host.cfg.wmem[1],
    (_S, _pysocket.SO_LINGER): lambda s: struct.pack("ii", int(s.opts.linger[0]), s.opts.linger[1]),
    (_S, _pysocket.SO_ERROR): lambda s: s._so_error(),
    (_S, _pysocket.SO_TYPE): lambda s: _pysocket.SOCK_STREAM,
    (_S, _pysocket.SO_ACCEPTCONN): lambda s: int(s.listening),
    (_T, _pysocket.TCP_NODELAY): _get("nodelay"),
    (_T, _pysocket.TCP_MAXSEG): lambda s: s._maxseg(),
    (_T, _pysocket.TCP_KEEPIDLE): lambda s: int(s.opts.keepidle or s.host.cfg.keepalive_time),
    (_T, _pysocket.TCP_KEEPINTVL): lambda s: int(s.opts.keepintvl or s.host.cfg.keepalive_intvl),
    (_T, _pysocket.TCP_KEEPCNT): lambda s: s.opts.keepcnt or s.host.cfg.keepalive_probes,
    (_T, _pysocket.TCP_USER_TIMEOUT): lambda s: int(s.opts.user_timeout * 1000),
    (_IP, _pysocket.IP_TOS): _get("tos"),
    (_T, _pysocket.TCP_QUICKACK): lambda s: int(s.conn is None or not s.conn.pingpong),
    (_T, _pysocket.TCP_CORK): _get("cork"),
    (_IP, _pysocket.IP_TTL): _get("ttl"),
    (_IP, IP_RECVERR): _get("recverr"),
}


def inherit(opts: SocketOptions) -> SocketOptions:
    """A listener's options as an accepted connection starts with them."""
    return replace(opts)
