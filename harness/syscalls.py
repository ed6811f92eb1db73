"""Script system calls: each becomes Calls (harness.calls) that a target performs, with
Linux's meaning, and its result is judged against the script.

Theory of operation: `Syscalls` evaluates a call's arguments, builds the Call (or Calls) it
makes, has the target perform them (`Target.call`), and returns the return value, the errno
and any mismatch in output arguments (getsockopt values, poll revents, control messages).
Script fd numbers are names: `3` in a script is whatever descriptor the call returning 3
made, and the map from script fd to the target's descriptor is kept here; the target only
ever sees its own descriptors.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from harness import cmsg, rawcall
from harness.calls import Call, CallResult
from harness.connection import tcp_info_view
from harness.constants import CONSTANTS, TCP_STATES, errno_name
from harness.errors import CaseError
from harness.ip import socket_address
from harness.model import Expr, SyscallEvent
from harness.options import Plan
from harness.values import matches


class Performer(Protocol):
    """What the syscall layer needs of a target (harness.targets.base.Target has both)."""

    def call(self, call: Call) -> CallResult: ...
    def connection(self, fd: int) -> dict[str, Any]: ...


class Failed(Exception):
    """A call the target made failed with an errno: the script's call returns its result."""

    def __init__(self, result: CallResult) -> None:
        super().__init__(result.describe())
        self.result = result


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
    """The fd table of one case (script fd -> target descriptor) and each supported call."""

    def __init__(self, target: Performer, plan: Plan, clock: Callable[[], float],
                 tolerance: float = 0.004) -> None:
        self.target = target
        self.plan = plan
        self.clock = clock          # the target's time, to stamp when each write returned
        self.fds: dict[int, int] = {}
        self.families: dict[int, int] = {}              # the address family of each socket
        self.streams: dict[int, bytearray | None] = {}   # what was written, per script fd
        self.writes: dict[int, list[Write]] = {}         # each write's place in its stream
        self.tolerance = tolerance  # seconds: kernel timestamps in control messages

    def sock(self, expr: Expr) -> int:
        """The target's descriptor that the script fd `expr` names."""
        fd = evaluate(expr)
        if fd not in self.fds:
            raise CaseError(expr.loc, f"fd {fd} is not open in this script")
        return self.fds[fd]

    def is_socket(self, fd: int) -> bool:
        return fd in self.fds and fd in self.families

    def perform(self, op: str, fd: int | None = None, /, **args: Any) -> CallResult:
        """One Call on the target; a failed one ends the script's call with its result."""
        result = self.target.call(Call(op, fd, args))
        if result.err is not None:
            raise Failed(result)
        return result

    def prepare(self, event: SyscallEvent) -> Callable[[], CallResult]:
        """Check the call's shape now (a CaseError names the line) and return the call to run."""
        method = getattr(self, "sys_" + event.name, None)
        if method is None:
            raise CaseError(event.loc, f"not supported: {event.name}")
        args = event.args

        def run() -> CallResult:
            try:
                return method(event, args)
            except Failed as failed:
                return failed.result
            except OSError as exc:      # reading TCP_INFO (a connection's state) failed
                if exc.errno is None:
                    raise
                return CallResult.failed(exc.errno)
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
    def _new_fd(self, event: SyscallEvent, descriptor: int, family: int | None = None) -> CallResult:
        fd = evaluate(event.ret)
        if not isinstance(fd, int) or fd < 0:
            fd = max(self.fds, default=2) + 1
        if fd in self.fds and not self.plan.remote_relative:
            raise CaseError(event.loc, f"fd {fd} is already open in this script")
        # packetdrill lets a script name a new socket by an open one's number: the number
        # then means the new socket, the old one stays open (on the target) unnamed
        self.fds[fd] = descriptor
        if family is None:
            self.families.pop(fd, None)
        else:
            self.families[fd] = family
        self.streams.pop(fd, None)      # a new socket on a reused number starts a new stream
        self.writes.pop(fd, None)
        return CallResult(fd)

    def sys_socket(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        """`socket(..., type, proto)`: the family is the plan's, as in packetdrill (AF_INET6 in
        the ipv6 and ipv4-mapped-ipv6 plans; the latter with IPV6_V6ONLY off)."""
        plan_family = socket.AF_INET if self.plan.ip_version == "ipv4" else socket.AF_INET6
        family = evaluate(args[0]) if args[0].kind != "ellipsis" else plan_family
        made = self.perform("socket", family=family, type=evaluate(args[1]), proto=evaluate(args[2]))
        if family == socket.AF_INET6 and self.plan.ip_version == "ipv4-mapped-ipv6":
            self.perform("setsockopt", made.ret, level=socket.IPPROTO_IPV6,
                         name=socket.IPV6_V6ONLY, value=0)
        return self._new_fd(event, made.ret, family)

    def _address(self, fd: Expr, address: str, port: int) -> tuple[str, int]:
        family = self.families.get(evaluate(fd), socket.AF_INET)
        return socket_address(self.plan.ip_version, address, family), port

    def sys_bind(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        return self.perform("bind", self.sock(args[0]),
                            addr=self._address(args[0], self.plan.local_ip, self.plan.bind_port))

    def sys_listen(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        return self.perform("listen", self.sock(args[0]), backlog=evaluate(args[1]))

    def sys_accept(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        accepted = self.perform("accept", self.sock(args[0]))
        return self._new_fd(event, accepted.ret, self.families.get(evaluate(args[0])))

    def sys_connect(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        """`...` for the address is the plan's remote peer; a family name (AF_UNSPEC, which
        dissolves the connection) is a bare address of that family, as in sendto."""
        fd = self.sock(args[0])
        if len(args) > 1 and args[1].kind == "name" and args[1].value.startswith("AF_"):
            return self.perform("connect", fd, addr=rawcall.sockaddr(evaluate(args[1])))
        return self.perform("connect", fd, addr=self._address(args[0], self.plan.remote_ip,
                                                              self.plan.connect_port))

    def _recv(self, fd: Expr, size: int, flags: int = 0, buffer: Expr | None = None) -> CallResult:
        """A NULL buffer goes to the kernel as it is, as in packetdrill."""
        got = self.perform("read", self.sock(fd), count=size, flags=flags, null=_is_null(buffer),
                           room=None)
        return CallResult(got.ret)

    def sys_read(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        return self._recv(args[0], evaluate(args[2]) or 0, 0, args[1])

    def sys_recv(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        return self._recv(args[0], evaluate(args[2]) or 0, _flags(args, 3), args[1])

    sys_recvfrom = sys_recv

    def sys_readv(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        return self._recv(args[0], sum(iov_lengths(args[1])))

    def sys_recvmsg(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        """recvmsg as packetdrill checks it: after a call that succeeds, msg_flags (0 when
        not written) and the control messages of msg_control, one for one (harness.cmsg). A
        target whose sockets have no recvmsg reads the bytes only (no msg_flags to check)."""
        size, flags = sum(iov_lengths(_msg_iov(args[1]))), _flags(args, 2)
        expected = cmsg.expected_messages(args[1], evaluate)
        got = self.perform("read", self.sock(args[0]), count=size, flags=flags, null=False,
                           room=cmsg.ROOM if expected is not None else 0)
        result = CallResult(got.ret)
        if got.msg_flags is None:
            return result
        want_flags = dict(args[1].value).get("msg_flags")
        want = evaluate(want_flags) if want_flags is not None else 0
        if isinstance(want, int) and got.msg_flags != want:
            result.problems.append(f"Expected msg_flags 0x{want:08X} but got 0x{got.msg_flags:08X}")
        if expected is not None:
            result.problems += cmsg.compare(expected, got.ancillary or [], evaluate,
                                            self.case_time, self.tolerance)
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
        descriptor = self.sock(fd)
        stream = self.streams.setdefault(name, bytearray())
        value = evaluate(data) if data is not None else None
        if isinstance(value, str):
            chunk = value.encode("latin-1")[:count].ljust(count, b"\0")
        else:
            chunk = pattern(len(stream) if stream is not None else 0, count)
        if _is_null(data):
            self.streams[name] = None          # what the kernel read is not known here
            return self.perform("write", descriptor, data=None, count=count, flags=flags, to=to,
                                pieces=pieces)
        sent = self.perform("write", descriptor, data=chunk, count=count, flags=flags, to=to,
                            pieces=pieces).ret
        if stream is not None:
            self.writes.setdefault(name, []).append(
                Write(len(stream), len(stream) + sent, self.clock()))
            stream.extend(chunk[:sent])
        return CallResult(sent)

    def sys_write(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        return self._send(args[0], args[1], evaluate(args[2]) or 0)

    def sys_send(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        return self._send(args[0], args[1], evaluate(args[2]) or 0, _flags(args, 3))

    def sys_sendto(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        """`...` for the address is the plan's remote peer; a family name (AF_UNSPEC) is a
        bare address of that family, handed to the kernel as it is."""
        self.sock(args[0])
        to: tuple[str, int] | bytes | None = None
        if len(args) > 4 and args[4].kind == "ellipsis":
            to = self._address(args[0], self.plan.remote_ip, self.plan.connect_port)
        elif len(args) > 4 and args[4].kind == "name" and args[4].value.startswith("AF_"):
            to = rawcall.sockaddr(evaluate(args[4]))
        return self._send(args[0], args[1], evaluate(args[2]) or 0, _flags(args, 3), to)

    def sys_writev(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        lengths = iov_lengths(args[1])
        return self._send(args[0], None, sum(lengths), pieces=lengths)

    def sys_sendmsg(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        """With MSG_FASTOPEN, `msg_name(...)=...` is the plan's remote peer (it connects)."""
        self.sock(args[0])
        flags = _flags(args, 2)
        named = args[1].kind == "struct" and any(k == "msg_name" for k, _ in args[1].value)
        to = (self._address(args[0], self.plan.remote_ip, self.plan.connect_port)
              if named and flags & CONSTANTS["MSG_FASTOPEN"] else None)
        lengths = iov_lengths(_msg_iov(args[1]))
        return self._send(args[0], None, sum(lengths), flags, to, lengths)

    def _writer(self, local_port: int, remote_port: int) -> int | None:
        """The script fd of the connection with these ports (None: no open fd has them)."""
        for name, descriptor in self.fds.items():
            if name not in self.families:
                continue
            local = self.target.call(Call("getsockname", descriptor))
            if local.err is not None or local.addr is None or local.addr[1] != local_port:
                continue
            peer = self.target.call(Call("getpeername", descriptor))
            if peer.err is None and peer.addr is not None and peer.addr[1] == remote_port:
                return name
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
        ends = self.perform("pipe").fds or ()
        for name, end in zip(names, ends):
            self.fds[name] = end
            self.families.pop(name, None)
        return CallResult(0)

    def sys_open(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        path = evaluate(args[0])
        mode = evaluate(args[2]) if len(args) > 2 else 0o644
        return self._new_fd(event, self.perform("open", path=path, flags=evaluate(args[1]),
                                                mode=mode).ret)

    def sys_sendfile(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        self.streams[evaluate(args[0])] = None      # bytes from a file: not known here
        offset = evaluate(args[2])
        offset = offset[0] if isinstance(offset, list) else offset
        return CallResult(self.perform("sendfile", self.sock(args[0]), source=self.sock(args[1]),
                                       offset=offset, count=evaluate(args[3])).ret)

    def sys_splice(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        self.streams[evaluate(args[2])] = None      # bytes from a pipe: not known here
        return CallResult(self.perform("splice", self.sock(args[0]), out=self.sock(args[2]),
                                       count=evaluate(args[4]), flags=_flags(args, 5)).ret)

    def sys_epoll_create(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        return self._new_fd(event, self.perform("epoll_create").ret)

    sys_epoll_create1 = sys_epoll_create

    def sys_epoll_ctl(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        epoll, op, target = self.sock(args[0]), evaluate(args[1]), self.sock(args[2])
        spec = dict(evaluate(args[3]) or {}) if len(args) > 3 else {}
        return self.perform("epoll_ctl", epoll, action=op, target=target,
                            events=spec.get("events", 0))

    def sys_epoll_wait(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        epoll, timeout_ms = self.sock(args[0]), evaluate(args[3])
        ready = self.perform("epoll_wait", epoll, most=evaluate(args[2]),
                             timeout=None if timeout_ms < 0 else timeout_ms / 1000).ready or []
        result = CallResult(len(ready))
        expected = evaluate(args[1])
        expected = expected if isinstance(expected, list) else [expected] if expected else []
        for want, (descriptor, events) in zip(expected, ready):
            if isinstance(want, dict) and "events" in want and want["events"] != events:
                name = next((fd for fd, d in self.fds.items() if d == descriptor), descriptor)
                result.problems.append(f"epoll events of fd {name} are {poll_names(events)}, "
                                       f"expected {poll_names(want['events'])}")
        return result

    def sys_close(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        descriptor = self.sock(args[0])
        del self.fds[evaluate(args[0])]
        return self.perform("close", descriptor)

    def sys_shutdown(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        return self.perform("shutdown", self.sock(args[0]), how=evaluate(args[1]))

    def sys_setsockopt(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        level, name, value = evaluate(args[1]), evaluate(args[2]), evaluate(args[3])
        if isinstance(value, list):
            value = value[0]
        elif isinstance(value, dict):
            value = struct.pack(f"{len(value)}i", *value.values())
        elif isinstance(value, str):
            value = value.encode("latin-1")     # "\x83\x07..." is bytes, one per character
        return self.perform("setsockopt", self.sock(args[0]), level=level, name=name, value=value)

    def sys_getsockopt(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        """TCP_INFO is read from the connection's state (`Target.connection`), through the
        map from tcpi_* fields to RFC 9293's variables (harness.connection)."""
        descriptor = self.sock(args[0])
        level, name, expected = evaluate(args[1]), evaluate(args[2]), evaluate(args[3])
        result = CallResult(0)
        if level == socket.IPPROTO_TCP and name == socket.TCP_INFO:
            info = tcp_info_view(self.target.connection(descriptor))
            for key, want in (expected or {}).items():
                if info.get(key) != want:
                    result.problems.append(f"{key} is {info.get(key)}, expected {want}")
            return result
        got: Any
        if isinstance(expected, dict):
            raw = self.perform("getsockopt", descriptor, level=level, name=name,
                               size=4 * len(expected)).value
            got = dict(zip(expected, struct.unpack(f"{len(expected)}i", raw)))
        elif isinstance(expected, str):
            raw = self.perform("getsockopt", descriptor, level=level, name=name, size=64).value
            got = raw.rstrip(b"\0").decode()
        else:
            got = self.perform("getsockopt", descriptor, level=level, name=name, size=None).value
            expected = expected[0] if isinstance(expected, list) else expected
        if expected is not None and not matches(expected, got):
            shown = errno_name(got) if args[3].kind == "array" and str(args[3]).startswith("[E") else got
            result.problems.append(f"option value is {shown}, expected {args[3]}")
        return result

    def sys_fcntl(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        descriptor, cmd = self.sock(args[0]), evaluate(args[1])
        if cmd == CONSTANTS["F_GETFL"]:
            nonblocking = self.perform("fcntl", descriptor).nonblock
            return CallResult(CONSTANTS["O_RDWR"] | (CONSTANTS["O_NONBLOCK"] if nonblocking else 0))
        if cmd == CONSTANTS["F_SETFL"]:
            return self.perform("fcntl", descriptor,
                                nonblock=bool(evaluate(args[2]) & CONSTANTS["O_NONBLOCK"]))
        raise CaseError(args[1].loc, "fcntl supports F_GETFL and F_SETFL")

    def sys_poll(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        entries = evaluate(args[0])
        timeout_ms = evaluate(args[2])
        polled = self.perform("poll", entries=[(self.fds[e["fd"]], e.get("events", 0)) for e in entries],
                              timeout=None if timeout_ms < 0 else timeout_ms / 1000)
        result = CallResult(polled.ret)
        for entry, got in zip(entries, polled.revents or []):
            if "revents" in entry and got != entry["revents"]:
                result.problems.append(f"revents of fd {entry['fd']} is {poll_names(got)}, "
                                       f"expected {poll_names(entry['revents'])}")
        return result

    def sys_ioctl(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        value = self.perform("ioctl", self.sock(args[0]), request=evaluate(args[1])).value
        expected = evaluate(args[2]) if len(args) > 2 else None
        result = CallResult(0)
        if isinstance(expected, list) and expected and value != expected[0]:
            result.problems.append(f"ioctl value is {value}, expected {expected[0]}")
        return result

    def sys_getsockname(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        self.perform("getsockname", self.sock(args[0]))
        return CallResult(0)

    def sys_getpeername(self, event: SyscallEvent, args: list[Expr]) -> CallResult:
        self.perform("getpeername", self.sock(args[0]))
        return CallResult(0)

    def connection(self, fd: int) -> dict[str, Any]:
        """The state of the connection script fd `fd` names (harness.connection's keys)."""
        return self.target.connection(self.fds[fd])

    def tcp_info(self, fd: int) -> dict[str, int]:
        return tcp_info_view(self.connection(fd))

    def snapshot(self, fd: int) -> dict[str, int]:
        """What a Python block sees of the socket: TCP_INFO's fields, and SK_MEMINFO_* where
        the target has them."""
        state = self.connection(fd)
        return {**tcp_info_view(state), **{k: v for k, v in state.items()
                                            if k.startswith("SK_MEMINFO_")}}


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
