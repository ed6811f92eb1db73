"""Script system calls, carried out on a target's sockets with Linux's meaning.

Theory of operation: a `SocketAPI` is what a target offers to make sockets: Python's `socket`
module for the kernel, the project's stack for the stack target (it mirrors that module).
`Syscalls` evaluates a call's arguments, runs it through the API, and returns the return
value, the errno and any mismatch in output arguments (getsockopt values, poll revents).
Script fd numbers are names: `3` in a script is whatever socket the call returning 3 made.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from harness import cmsg, rawcall
from harness.constants import CONSTANTS, TCP_STATES, errno_name
from harness.errors import CaseError
from harness.ip import socket_address
from harness.model import Expr, SyscallEvent
from harness.options import Plan
from harness.tcpinfo import TCP_INFO_LEN, decode_tcp_info
from harness.values import matches


class SocketAPI(Protocol):
    """What a target provides to the syscall layer."""

    def socket(self, family: int, type_: int, proto: int) -> Any: ...
    def poll(self, entries: list[tuple[Any, int]], timeout: float | None) -> list[tuple[Any, int]]: ...
    def set_nonblocking(self, sock: Any, on: bool) -> None: ...
    def is_nonblocking(self, sock: Any) -> bool: ...
    def ioctl_int(self, sock: Any, request: int) -> int: ...
    def tcp_info(self, sock: Any) -> dict[str, int]: ...
    def meminfo(self, sock: Any) -> dict[str, int]: ...    # SK_MEMINFO_*, empty without SO_MEMINFO


def linux_tcp_info(sock: Any) -> dict[str, int]:
    """TCP_INFO of a socket that answers getsockopt as Linux does (the kernel, the stack)."""
    return decode_tcp_info(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO_LEN))


@dataclass
class CallResult:
    ret: int
    err: int | None = None
    problems: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if self.err is not None:
            return f"{self.ret} {errno_name(self.err)} ({os.strerror(self.err)})"
        return str(self.ret)


def evaluate(expr: Expr) -> Any:
    """The value of an argument: ints, names, a|b, [x], {k=v}, "text", htons(x)."""
    kind = expr.kind
    if kind == "int":
        return expr.value
    if kind == "name":
        return CONSTANTS[expr.value]
    if kind == "or":
        value = 0
        for part in expr.value:
            value |= evaluate(part)
        return value
    if kind == "array":
        return [evaluate(e) for e in expr.value]
    if kind == "struct":
        return {k: evaluate(v) for k, v in expr.value}
    if kind in ("string", "set"):
        return expr.value
    if kind == "call":
        name, args = expr.value
        values = [evaluate(a) for a in args]
        if name in ("htons", "ntohs", "htonl", "ntohl") and len(values) == 1:
            return values[0]
        if name == "inet_addr" and len(values) == 1:
            return values[0]
        raise CaseError(expr.loc, f"unknown function {name!r} in an argument")
    return None      # ellipsis / any: filled in by the call


@dataclass(frozen=True)
class Write:
    """One write's bytes, [start, stop) in its connection's stream, and when it returned."""

    start: int
    stop: int
    returned: float


class Syscalls:
    """The fd table of one case and the implementation of each supported call."""

    def __init__(self, api: SocketAPI, plan: Plan, clock: Callable[[], float],
                 tolerance: float = 0.004) -> None:
        self.api = api
        self.plan = plan
        self.clock = clock          # the target's time, to stamp when each write returned
        self.fds: dict[int, Any] = {}
        self.streams: dict[int, bytearray | None] = {}   # what was written, per script fd
        self.writes: dict[int, list[Write]] = {}         # each write's place in its stream
        self.tolerance = tolerance  # seconds: kernel timestamps in control messages
        self.unnamed: list[Any] = []   # sockets whose number a later one took (kept open)
        self.pinned: list[bytes | bytearray] = []   # buffers the kernel may still send from

    def sock(self, expr: Expr) -> Any:
        fd = evaluate(expr)
        if fd not in self.fds:
            raise CaseError(expr.loc, f"fd {fd} is not open in this script")
        return self.fds[fd]

    def prepare(self, event: SyscallEvent) -> Callable[[], CallResult]:
        """Check the call's shape now (a CaseError names the line) and return the call to run."""
        method = getattr(self, "sys_" + event.name, None)
        if method is None:
            raise CaseError(event.loc, f"not supported: {event.name}")
        args = event.args

        def run() -> CallResult:
            try:
                return method(event, args)
            except OSError as exc:
                if exc.errno is None:
                    raise
                return CallResult(-1, exc.errno)
        return run

    def check(self, event: SyscallEvent, result: CallResult) -> list[str]:
        """How the result differs from what the script says (empty when it matches)."""
        problems = list(result.problems)
        expected_ret = evaluate(event.ret)
        if event.ret.kind != "any" and expected_ret is not None \
                and not matches(expected_ret, result.ret):
            problems.append(f"returned {result.describe()}, expected {event.ret}"
                            + (f" {event.errno}" if event.errno else ""))
        elif event.errno and result.err not in {CONSTANTS.get(name, name)
                                                for name in event.errno.split("|")}:
            # by number: one errno may have two names (EOPNOTSUPP and ENOTSUP are 95 on Linux)
            got = errno_name(result.err) if result.err is not None else "no error"
            either = "one of " if "|" in event.errno else ""
            problems.append(f"errno is {got}, expected {either}{event.errno}")
        return problems

    # -- the calls -------------------------------------------------------------------------
    def _new_fd(self, event: SyscallEvent, sock: Any) -> CallResult:
        fd = evaluate(event.ret)
        if not isinstance(fd, int) or fd < 0:
            fd = max(self.fds, default=2) + 1
        if fd in self.fds:
            if not self.plan.remote_relative:
                raise CaseError(event.loc, f"fd {fd} is already open in this script")
            # packetdrill lets a script name a new socket by an open one's number: the
            # number then means the new socket, the old one stays open unnamed
            self.unnamed.append(self.fds[fd])
        self.fds[fd] = sock
        self.streams.pop(fd, None)      # a new socket on a reused number starts a new stream
        self.writes.pop(fd, None)
        return CallResult(fd)

    def sys_socket(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        """`socket(..., type, proto)`: the family is the plan's, as in packetdrill (AF_INET6 in
        the ipv6 and ipv4-mapped-ipv6 plans; the latter with IPV6_V6ONLY off)."""
        plan_family = socket.AF_INET if self.plan.ip_version == "ipv4" else socket.AF_INET6
        family = evaluate(args[0]) if args[0].kind != "ellipsis" else plan_family
        type_, proto = evaluate(args[1]), evaluate(args[2])
        sock = self.api.socket(family, type_, proto)
        if family == socket.AF_INET6 and self.plan.ip_version == "ipv4-mapped-ipv6":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        return self._new_fd(event, sock)

    def _address(self, sock: Any, address: str, port: int) -> tuple[str, int]:
        return socket_address(self.plan.ip_version, address, sock.family), port

    def sys_bind(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        sock = self.sock(args[0])
        sock.bind(self._address(sock, self.plan.local_ip, self.plan.bind_port))
        return CallResult(0)

    def sys_listen(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        self.sock(args[0]).listen(evaluate(args[1]))
        return CallResult(0)

    def sys_accept(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        conn, _ = self.sock(args[0]).accept()
        return self._new_fd(event, conn)

    def sys_connect(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        """`...` for the address is the plan's remote peer; a family name (AF_UNSPEC, which
        dissolves the connection) is a bare address of that family, as in sendto."""
        sock = self.sock(args[0])
        if len(args) > 1 and args[1].kind == "name" and args[1].value.startswith("AF_"):
            err = rawcall.connect_to(sock.fileno(), rawcall.sockaddr(evaluate(args[1])))
        else:
            err = sock.connect_ex(self._address(sock, self.plan.remote_ip, self.plan.connect_port))
        return CallResult(0) if err == 0 else CallResult(-1, err)

    def _recv(self, fd: Expr, size: int, flags: int = 0, buffer: Expr | None = None) -> CallResult:
        sock = self.sock(fd)
        if _is_null(buffer):             # the kernel gets the NULL, as in packetdrill
            return CallResult(rawcall.recv_null(sock.fileno(), size, flags))
        return CallResult(len(sock.recv(size, flags)))

    def sys_read(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        return self._recv(args[0], evaluate(args[2]) or 0, 0, args[1])

    def sys_recv(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        return self._recv(args[0], evaluate(args[2]) or 0, _flags(args, 3), args[1])

    sys_recvfrom = sys_recv

    def sys_readv(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        return self._recv(args[0], sum(iov_lengths(args[1])))

    def sys_recvmsg(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        """recvmsg as packetdrill checks it: after a call that succeeds, msg_flags (0 when
        not written) and the control messages of msg_control, one for one (harness.cmsg)."""
        size, flags = sum(iov_lengths(_msg_iov(args[1]))), _flags(args, 2)
        sock = self.sock(args[0])
        if not hasattr(sock, "recvmsg"):
            return self._recv(args[0], size, flags)
        expected = cmsg.expected_messages(args[1], evaluate)
        data, ancillary, msg_flags, _ = sock.recvmsg(size, cmsg.ROOM if expected is not None else 0,
                                                     flags)
        result = CallResult(len(data))
        want_flags = dict(args[1].value).get("msg_flags")
        want = evaluate(want_flags) if want_flags is not None else 0
        if isinstance(want, int) and msg_flags != want:
            result.problems.append(f"Expected msg_flags 0x{want:08X} but got 0x{msg_flags:08X}")
        if expected is not None:
            result.problems += cmsg.compare(expected, ancillary, evaluate, self.case_time,
                                            self.tolerance)
        return result

    def case_time(self, realtime: float) -> float:
        """A CLOCK_REALTIME instant (a kernel timestamp) on the case's clock."""
        return realtime - (time.time() - self.clock())

    def _send(self, fd: Expr, data: Expr | None, count: int, flags: int = 0,
              to: tuple[str, int] | bytes | None = None, pieces: list[int] | None = None) -> CallResult:
        """Send `count` bytes: the script's string, or for `...` a pattern that depends on the
        offset in the stream, so that the bytes of every outbound segment can be checked.
        `to`: sendto's destination (TCP uses it only to connect, with MSG_FASTOPEN)."""
        name = evaluate(fd)
        stream = self.streams.setdefault(name, bytearray())
        value = evaluate(data) if data is not None else None
        if isinstance(value, str):
            chunk = value.encode("latin-1")[:count].ljust(count, b"\0")
        else:
            chunk = pattern(len(stream) if stream is not None else 0, count)
        sock = self.sock(fd)
        if _is_null(data) or isinstance(to, bytes):
            # raw arguments go to the kernel unchanged: a NULL buffer, an address of any family
            address = rawcall.sockaddr(sock.family, *to) if isinstance(to, tuple) else to
            if _is_null(data):
                self.streams[name] = None          # what the kernel read is not known here
                return CallResult(rawcall.send_null(sock.fileno(), count, flags, address))
            sent = rawcall.send_to(sock.fileno(), chunk, flags, address)
        elif pieces and len(pieces) > 1 and hasattr(sock, "sendmsg"):
            sent = sock.sendmsg(self._iovec(chunk, pieces, flags), [], flags,
                                *([to] if to is not None else []))
        else:
            sent = sock.send(self._kept(chunk, flags), flags) if to is None else \
                sock.sendto(self._kept(chunk, flags), flags, to)
        if stream is not None:
            self.writes.setdefault(name, []).append(
                Write(len(stream), len(stream) + sent, self.clock()))
            stream.extend(chunk[:sent])
        return CallResult(sent)

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

    def sys_write(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        return self._send(args[0], args[1], evaluate(args[2]) or 0)

    def sys_send(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        return self._send(args[0], args[1], evaluate(args[2]) or 0, _flags(args, 3))

    def sys_sendto(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        """`...` for the address is the plan's remote peer; a family name (AF_UNSPEC) is a
        bare address of that family, handed to the kernel as it is."""
        sock = self.sock(args[0])
        to: tuple[str, int] | bytes | None = None
        if len(args) > 4 and args[4].kind == "ellipsis" and hasattr(sock, "sendto"):
            to = self._address(sock, self.plan.remote_ip, self.plan.connect_port)
        elif len(args) > 4 and args[4].kind == "name" and args[4].value.startswith("AF_"):
            to = rawcall.sockaddr(evaluate(args[4]))
        return self._send(args[0], args[1], evaluate(args[2]) or 0, _flags(args, 3), to)

    def sys_writev(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        lengths = iov_lengths(args[1])
        return self._send(args[0], None, sum(lengths), pieces=lengths)

    def sys_sendmsg(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        """With MSG_FASTOPEN, `msg_name(...)=...` is the plan's remote peer (it connects)."""
        sock, flags = self.sock(args[0]), _flags(args, 2)
        named = args[1].kind == "struct" and any(k == "msg_name" for k, _ in args[1].value)
        to = (self._address(sock, self.plan.remote_ip, self.plan.connect_port)
              if named and flags & CONSTANTS["MSG_FASTOPEN"] and hasattr(sock, "sendto") else None)
        lengths = iov_lengths(_msg_iov(args[1]))
        return self._send(args[0], None, sum(lengths), flags, to, lengths)

    def _writer(self, local_port: int, remote_port: int) -> int | None:
        """The script fd of the connection with these ports (None: no open fd has them)."""
        for name, sock in self.fds.items():
            try:
                if sock.getsockname()[1] == local_port and sock.getpeername()[1] == remote_port:
                    return name
            except (OSError, AttributeError, TypeError):
                continue
        return None

    def sent_bytes(self, local_port: int, remote_port: int) -> bytes | None:
        """What the script wrote on the connection with these ports (None: unknown)."""
        name = self._writer(local_port, remote_port)
        if name is None:
            return None
        stream = self.streams.get(name, bytearray())
        return None if stream is None else bytes(stream)

    def queued_after(self, local_port: int, remote_port: int, offset: int, at: float) -> bool:
        """Whether the connection with these ports had bytes queued beyond stream offset
        `offset` when a segment ending there was sent at `at`: the rest of a write the offset
        falls inside, or a later write that had returned by then. Such a segment does not
        empty the send queue (RFC 1122 4.2.2.2, RFC 9293 3.9.1.2: its PSH is the sender's
        choice). Writes still blocked, and fds already closed, are not known here."""
        name = self._writer(local_port, remote_port)
        return name is not None and any(
            write.stop > offset and (write.start < offset or write.returned <= at)
            for write in self.writes.get(name, []))

    # -- descriptors that are not sockets (kernel target) --------------------------------------
    def sys_pipe(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        names = evaluate(args[0])
        if not (isinstance(names, list) and len(names) == 2):
            raise CaseError(args[0].loc, "pipe takes [read_fd, write_fd]")
        ends = self.api.pipe()
        for name, end in zip(names, ends):
            self.fds[name] = end
        return CallResult(0)

    def sys_open(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        path = evaluate(args[0])
        mode = evaluate(args[2]) if len(args) > 2 else 0o644
        return self._new_fd(event, self.api.open(path, evaluate(args[1]), mode))

    def sys_sendfile(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        self.streams[evaluate(args[0])] = None      # bytes from a file: not known here
        offset = evaluate(args[2])
        offset = offset[0] if isinstance(offset, list) else offset
        return CallResult(self.api.sendfile(self.sock(args[0]), self.sock(args[1]), offset,
                                            evaluate(args[3])))

    def sys_splice(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        self.streams[evaluate(args[2])] = None      # bytes from a pipe: not known here
        return CallResult(self.api.splice(self.sock(args[0]), self.sock(args[2]),
                                          evaluate(args[4]), _flags(args, 5)))

    def sys_epoll_create(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        return self._new_fd(event, self.api.epoll())

    sys_epoll_create1 = sys_epoll_create

    def sys_epoll_ctl(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        epoll, op, target = self.sock(args[0]), evaluate(args[1]), self.sock(args[2])
        spec = dict(evaluate(args[3]) or {}) if len(args) > 3 else {}
        self.api.epoll_ctl(epoll, op, target, spec.get("events", 0))
        return CallResult(0)

    def sys_epoll_wait(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        epoll, timeout_ms = self.sock(args[0]), evaluate(args[3])
        ready = self.api.epoll_wait(epoll, evaluate(args[2]),
                                    None if timeout_ms < 0 else timeout_ms / 1000)
        result = CallResult(len(ready))
        expected = evaluate(args[1])
        expected = expected if isinstance(expected, list) else [expected] if expected else []
        for want, (fileno, events) in zip(expected, ready):
            if isinstance(want, dict) and "events" in want and want["events"] != events:
                name = next((fd for fd, s in self.fds.items() if s.fileno() == fileno), fileno)
                result.problems.append(f"epoll events of fd {name} are {poll_names(events)}, "
                                       f"expected {poll_names(want['events'])}")
        return result

    def sys_close(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        sock = self.sock(args[0])
        del self.fds[evaluate(args[0])]
        sock.close()
        return CallResult(0)

    def sys_shutdown(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        self.sock(args[0]).shutdown(evaluate(args[1]))
        return CallResult(0)

    def sys_setsockopt(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        level, name, value = evaluate(args[1]), evaluate(args[2]), evaluate(args[3])
        if isinstance(value, list):
            value = value[0]
        elif isinstance(value, dict):
            value = struct.pack(f"{len(value)}i", *value.values())
        elif isinstance(value, str):
            value = value.encode("latin-1")     # "\x83\x07..." is bytes, one per character
        self.sock(args[0]).setsockopt(level, name, value)
        return CallResult(0)

    def sys_getsockopt(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        sock = self.sock(args[0])
        level, name, expected = evaluate(args[1]), evaluate(args[2]), evaluate(args[3])
        result = CallResult(0)
        if level == socket.IPPROTO_TCP and name == socket.TCP_INFO:
            info = self.api.tcp_info(sock)
            for key, want in (expected or {}).items():
                if info.get(key) != want:
                    result.problems.append(f"{key} is {info.get(key)}, expected {want}")
            return result
        if isinstance(expected, dict):
            raw = sock.getsockopt(level, name, 4 * len(expected))
            got = dict(zip(expected, struct.unpack(f"{len(expected)}i", raw)))
        elif isinstance(expected, str):
            got = sock.getsockopt(level, name, 64).rstrip(b"\0").decode()
        else:
            got = sock.getsockopt(level, name)
            expected = expected[0] if isinstance(expected, list) else expected
        if expected is not None and not matches(expected, got):
            shown = errno_name(got) if args[3].kind == "array" and str(args[3]).startswith("[E") else got
            result.problems.append(f"option value is {shown}, expected {args[3]}")
        return result

    def sys_fcntl(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        sock, cmd = self.sock(args[0]), evaluate(args[1])
        if cmd == CONSTANTS["F_GETFL"]:
            return CallResult(CONSTANTS["O_RDWR"]
                              | (CONSTANTS["O_NONBLOCK"] if self.api.is_nonblocking(sock) else 0))
        if cmd == CONSTANTS["F_SETFL"]:
            self.api.set_nonblocking(sock, bool(evaluate(args[2]) & CONSTANTS["O_NONBLOCK"]))
            return CallResult(0)
        raise CaseError(args[1].loc, "fcntl supports F_GETFL and F_SETFL")

    def sys_poll(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        entries = evaluate(args[0])
        timeout_ms = evaluate(args[2])
        socks = [(self.fds[e["fd"]], e.get("events", 0)) for e in entries]
        ready = dict((id(s), ev) for s, ev in
                     self.api.poll(socks, None if timeout_ms < 0 else timeout_ms / 1000))
        result = CallResult(len(ready))
        for entry, (sock, _) in zip(entries, socks):
            got = ready.get(id(sock), 0)
            if "revents" in entry and got != entry["revents"]:
                result.problems.append(f"revents of fd {entry['fd']} is {poll_names(got)}, "
                                       f"expected {poll_names(entry['revents'])}")
        return result

    def sys_ioctl(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        value = self.api.ioctl_int(self.sock(args[0]), evaluate(args[1]))
        expected = evaluate(args[2]) if len(args) > 2 else None
        result = CallResult(0)
        if isinstance(expected, list) and expected and value != expected[0]:
            result.problems.append(f"ioctl value is {value}, expected {expected[0]}")
        return result

    def sys_getsockname(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        self.sock(args[0]).getsockname()
        return CallResult(0)

    def sys_getpeername(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        self.sock(args[0]).getpeername()
        return CallResult(0)

    def tcp_state(self, fd: int) -> str:
        info = self.tcp_info(fd)
        return STATE_NAMES.get(info["tcpi_state"], str(info["tcpi_state"]))

    def tcp_info(self, fd: int) -> dict[str, int]:
        return self.api.tcp_info(self.fds[fd])

    def meminfo(self, fd: int) -> dict[str, int]:
        return self.api.meminfo(self.fds[fd])


STATE_NAMES = {value: name for name, value in TCP_STATES.items()}


def _is_null(expr: Expr | None) -> bool:
    return expr is not None and expr.kind == "name" and expr.value == "NULL"


def _flags(args: list[Expr], index: int) -> int:
    """A flags argument (MSG_PEEK, MSG_DONTWAIT, MSG_OOB...), 0 when not written."""
    return evaluate(args[index]) or 0 if len(args) > index else 0


_PATTERN = bytes(range(251))


def pattern(offset: int, count: int) -> bytes:
    """The bytes a `...` write sends at stream offset `offset`: byte i is (offset + i) mod 251,
    so a segment carrying data from the wrong place in the stream does not match."""
    start = offset % 251
    return (_PATTERN * ((start + count) // 251 + 1))[start:start + count]


def iov_lengths(expr: Expr) -> list[int]:
    """The lengths of an iovec array: [{..., 1000}] or [{iov_base=..., iov_len=1000}]."""
    if expr.kind != "array":
        raise CaseError(expr.loc, "expected an iovec array such as [{..., 1000}]")
    lengths = []
    for item in expr.value:
        fields = item.value if item.kind == "struct" else []
        named = {k: v for k, v in fields if k}
        length = named.get("iov_len") or (fields[-1][1] if fields else None)
        if length is None or length.kind != "int":
            raise CaseError(item.loc, "expected an iovec such as {..., 1000}")
        lengths.append(length.value)
    return lengths


def _msg_iov(expr: Expr) -> Expr:
    """The msg_iov array of a msghdr {msg_name(...)=..., msg_iov(1)=[...], msg_flags=0}."""
    fields = dict(expr.value) if expr.kind == "struct" else {}
    if "msg_iov" not in fields:
        raise CaseError(expr.loc, "expected a msghdr such as {msg_name(...)=..., "
                        "msg_iov(1)=[{..., 1000}], msg_flags=0}")
    return fields["msg_iov"]


def poll_names(mask: int) -> str:
    names = [n for n in ("POLLIN", "POLLPRI", "POLLOUT", "POLLERR", "POLLHUP", "POLLNVAL",
                         "POLLRDNORM", "POLLRDBAND", "POLLWRNORM", "POLLWRBAND", "POLLRDHUP")
             if n in CONSTANTS and mask & CONSTANTS[n]]
    return "|".join(names) or "0"
