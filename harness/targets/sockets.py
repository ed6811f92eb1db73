"""Calls (harness.calls) performed on socket objects in the harness's own process: the one
dispatcher of the kernel target (Python's socket module) and the stack target (the stack's
sockets, which mirror that module).

Theory of operation: `SocketCalls` numbers every object a call makes (a socket, an accepted
connection, a pipe end, a file, an epoll set) with a descriptor of its own and performs each
Call on the object its descriptor names, through the Python socket methods both kinds of
socket have, and through a `SocketAPI` for what differs between targets (making a socket,
poll, ioctl, TCP_INFO, descriptors that are not sockets). A call that fails with an errno
gives a CallResult with that errno; anything else it raises (CallBlocked on the stack,
CaseError for a call the target lacks) goes to the caller unchanged.
"""

from __future__ import annotations

import socket
from typing import Any, Callable, Protocol

from harness import rawcall
from harness.calls import Call, CallResult
from harness.connection import rfc_view
from harness.constants import CONSTANTS
from harness.tcpinfo import TCP_INFO_LEN, decode_tcp_info


class SocketAPI(Protocol):
    """What a target provides besides its socket objects' own methods."""

    def socket(self, family: int, type_: int, proto: int) -> Any: ...
    def poll(self, entries: list[tuple[Any, int]], timeout: float | None) -> list[tuple[Any, int]]: ...
    def set_nonblocking(self, sock: Any, on: bool) -> None: ...
    def is_nonblocking(self, sock: Any) -> bool: ...
    def ioctl_int(self, sock: Any, request: int) -> int: ...
    def tcp_info(self, sock: Any) -> dict[str, int]: ...
    def meminfo(self, sock: Any) -> dict[str, int]: ...    # SK_MEMINFO_*, empty without SO_MEMINFO
    def sequence(self, sock: Any) -> dict[str, int]: ...   # SND.UNA, SND.NXT, RCV.NXT, ISS, IRS it has
    # descriptors that are not sockets: the kernel's; another target raises CaseError
    def pipe(self) -> tuple[Any, Any]: ...
    def open(self, path: str, flags: int, mode: int) -> Any: ...
    def sendfile(self, out: Any, source: Any, offset: int | None, count: int) -> int: ...
    def splice(self, source: Any, out: Any, count: int, flags: int) -> int: ...
    def epoll(self) -> Any: ...
    def epoll_ctl(self, epoll: Any, op: int, target: Any, events: int) -> None: ...
    def epoll_wait(self, epoll: Any, most: int, timeout: float | None) -> list[tuple[int, int]]: ...


def linux_tcp_info(sock: Any) -> dict[str, int]:
    """TCP_INFO of a socket that answers getsockopt as Linux does (the kernel, the stack)."""
    return decode_tcp_info(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO_LEN))


class SocketCalls:
    """The descriptor table of one case on an in-process target, and each op on it."""

    def __init__(self, api: SocketAPI) -> None:
        self.api = api
        self.objects: dict[int, Any] = {}
        self._next = 3
        self.pinned: list[bytes | bytearray] = []   # buffers the kernel may still send from

    def _add(self, obj: Any) -> int:
        fd, self._next = self._next, self._next + 1
        self.objects[fd] = obj
        return fd

    def _descriptor(self, obj: Any) -> int:
        return next(fd for fd, known in self.objects.items() if known is obj)

    def call(self, call: Call) -> CallResult:
        method: Callable[[Any, Call], CallResult] = getattr(self, "op_" + call.op)
        obj = self.objects.get(call.fd) if call.fd is not None else None
        try:
            return method(obj, call)
        except OSError as exc:
            if exc.errno is None:
                raise
            return CallResult.failed(exc.errno)

    def connection(self, fd: int) -> dict[str, Any]:
        """RFC 9293's variables read off Linux's TCP_INFO and the sequence numbers the target
        can give beside it, with every tcpi_* field and the socket's SK_MEMINFO_* counters
        (where it has them) as extras."""
        sock = self.objects[fd]
        try:
            meminfo = self.api.meminfo(sock)
        except OSError:
            meminfo = {}
        return {**rfc_view(self.api.tcp_info(sock)), **self.api.sequence(sock), **meminfo}

    # -- sockets ---------------------------------------------------------------------------
    def op_socket(self, _: Any, call: Call) -> CallResult:
        return CallResult(self._add(self.api.socket(call.arg("family"), call.arg("type"),
                                                    call.arg("proto"))))

    def op_bind(self, sock: Any, call: Call) -> CallResult:
        sock.bind(call.arg("addr"))
        return CallResult(0)

    def op_listen(self, sock: Any, call: Call) -> CallResult:
        sock.listen(call.arg("backlog"))
        return CallResult(0)

    def op_accept(self, sock: Any, call: Call) -> CallResult:
        conn, address = sock.accept()
        return CallResult(self._add(conn), addr=address)

    def op_connect(self, sock: Any, call: Call) -> CallResult:
        address = call.arg("addr")
        err = (rawcall.connect_to(sock.fileno(), address) if isinstance(address, bytes)
               else sock.connect_ex(address))
        return CallResult(0) if err == 0 else CallResult.failed(err)

    def op_read(self, sock: Any, call: Call) -> CallResult:
        size, flags, room = call.arg("count"), call.arg("flags", 0), call.arg("room")
        if call.arg("null"):             # the kernel gets the NULL, as in packetdrill
            return CallResult(rawcall.recv_null(sock.fileno(), size, flags))
        if room is None or not hasattr(sock, "recvmsg"):
            data = sock.recv(size, flags)
            return CallResult(len(data), data=data)
        data, ancillary, msg_flags, _ = sock.recvmsg(size, room, flags)
        return CallResult(len(data), data=data, ancillary=ancillary, msg_flags=msg_flags)

    def op_write(self, sock: Any, call: Call) -> CallResult:
        """Raw arguments (a NULL buffer, a raw address) go to the kernel unchanged; an iovec
        of several pieces goes out with sendmsg, as packetdrill sends it."""
        data, flags, pieces = call.arg("data"), call.arg("flags", 0), call.arg("pieces")
        to = call.arg("to")
        if to is not None and not isinstance(to, bytes) and not hasattr(sock, "sendto"):
            to = None            # a socket without sendto: its connection's peer
        if data is None or isinstance(to, bytes):
            address = rawcall.sockaddr(sock.family, *to) if isinstance(to, tuple) else to
            if data is None:
                return CallResult(rawcall.send_null(sock.fileno(), call.arg("count"), flags, address))
            return CallResult(rawcall.send_to(sock.fileno(), data, flags, address))
        if pieces and len(pieces) > 1 and hasattr(sock, "sendmsg"):
            return CallResult(sock.sendmsg(self._iovec(data, pieces, flags), [], flags,
                                           *([to] if to is not None else [])))
        kept = self._kept(data, flags)
        return CallResult(sock.send(kept, flags) if to is None else sock.sendto(kept, flags, to))

    def _iovec(self, chunk: bytes, pieces: list[int], flags: int) -> list[memoryview]:
        """An iovec array's buffers as packetdrill allocates them, each apart from the next:
        with MSG_ZEROCOPY each element then becomes a fragment of its own in the kernel
        (adjacent ones would merge into one), as tcp_zerocopy_maxfrags counts them."""
        room = bytearray(len(chunk) + len(pieces))        # a byte of gap after each element
        views, start = [], 0
        for i, length in enumerate(pieces):
            at = start + i
            room[at:at + length] = chunk[start:start + length]
            views.append(memoryview(room)[at:at + length])
            start += length
        self._kept(room, flags)
        return views

    def _kept(self, buffer: bytes | bytearray, flags: int) -> bytes | bytearray:
        """A buffer sent with MSG_ZEROCOPY stays alive to the end of the script: the kernel
        sends from its pages after the call returns (packetdrill's --send_omit_free)."""
        if flags & CONSTANTS["MSG_ZEROCOPY"]:
            self.pinned.append(buffer)
        return buffer

    def op_shutdown(self, sock: Any, call: Call) -> CallResult:
        sock.shutdown(call.arg("how"))
        return CallResult(0)

    def op_close(self, sock: Any, call: Call) -> CallResult:
        assert call.fd is not None
        del self.objects[call.fd]
        sock.close()
        return CallResult(0)

    def op_setsockopt(self, sock: Any, call: Call) -> CallResult:
        sock.setsockopt(call.arg("level"), call.arg("name"), call.arg("value"))
        return CallResult(0)

    def op_getsockopt(self, sock: Any, call: Call) -> CallResult:
        size = call.arg("size")
        level, name = call.arg("level"), call.arg("name")
        value = sock.getsockopt(level, name) if size is None else sock.getsockopt(level, name, size)
        return CallResult(0, value=value)

    def op_fcntl(self, sock: Any, call: Call) -> CallResult:
        if "nonblock" in call.args:
            self.api.set_nonblocking(sock, call.arg("nonblock"))
            return CallResult(0)
        return CallResult(0, nonblock=self.api.is_nonblocking(sock))

    def op_poll(self, _: Any, call: Call) -> CallResult:
        entries = [(self.objects[fd], events) for fd, events in call.arg("entries")]
        ready = {id(sock): revents for sock, revents in self.api.poll(entries, call.arg("timeout"))}
        return CallResult(len(ready), revents=[ready.get(id(sock), 0) for sock, _ in entries])

    def op_ioctl(self, sock: Any, call: Call) -> CallResult:
        return CallResult(0, value=self.api.ioctl_int(sock, call.arg("request")))

    def op_getsockname(self, sock: Any, call: Call) -> CallResult:
        return CallResult(0, addr=sock.getsockname())

    def op_getpeername(self, sock: Any, call: Call) -> CallResult:
        return CallResult(0, addr=sock.getpeername())

    # -- descriptors that are not sockets (the kernel target's) ----------------------------
    def op_pipe(self, _: Any, call: Call) -> CallResult:
        read_end, write_end = self.api.pipe()
        return CallResult(0, fds=(self._add(read_end), self._add(write_end)))

    def op_open(self, _: Any, call: Call) -> CallResult:
        return CallResult(self._add(self.api.open(call.arg("path"), call.arg("flags"),
                                                  call.arg("mode"))))

    def op_sendfile(self, out: Any, call: Call) -> CallResult:
        return CallResult(self.api.sendfile(
            out, self.objects[call.arg("source")], call.arg("offset"), call.arg("count")))

    def op_splice(self, source: Any, call: Call) -> CallResult:
        return CallResult(self.api.splice(
            source, self.objects[call.arg("out")], call.arg("count"), call.arg("flags")))

    def op_epoll_create(self, _: Any, call: Call) -> CallResult:
        return CallResult(self._add(self.api.epoll()))

    def op_epoll_ctl(self, epoll: Any, call: Call) -> CallResult:
        self.api.epoll_ctl(epoll, call.arg("action"),
                           self.objects[call.arg("target")], call.arg("events"))
        return CallResult(0)

    def op_epoll_wait(self, epoll: Any, call: Call) -> CallResult:
        ready = self.api.epoll_wait(epoll, call.arg("most"), call.arg("timeout"))
        by_fileno = {obj.fileno(): fd for fd, obj in self.objects.items() if hasattr(obj, "fileno")}
        return CallResult(len(ready), ready=[(by_fileno.get(fileno, fileno), events)
                                             for fileno, events in ready])


class InProcess:
    """A target whose sockets live in the harness's process (kernel, stack): its calls and
    its connections' state go through one SocketCalls, made by `setup` or `__init__`."""

    sockets: SocketCalls

    def call(self, call: Call) -> CallResult:
        return self.sockets.call(call)

    def connection(self, fd: int) -> dict[str, Any]:
        return self.sockets.connection(fd)
