"""A socket call as data, and its result: what the harness hands a target and gets back.

A `Call` names an op and carries its arguments as plain values: integer descriptors (the
target's own numbers, never the script's), ints, bytes, addresses, option levels and names,
flag masks. A target answers with a `CallResult`: the return value, the errno of a failed
call, and the call's output arguments (an accepted descriptor's address, the bytes read, an
option's value, poll's revents). The syscall layer (harness/syscalls.py) builds Calls from a
script's lines and judges their results; a target only performs them.

The ops and their arguments (`args`); `fd` is the descriptor the call is made on:
| op | args | outputs |
|---|---|---|
| socket | family, type, proto | ret = new descriptor |
| bind, connect | addr: (ip, port), or bytes (a raw struct sockaddr, connect only) | |
| listen | backlog | |
| accept | | ret = new descriptor, addr |
| read | count, flags, null (a NULL buffer), room (recvmsg's control buffer; None: recv) | data, ancillary, msg_flags |
| write | data (None: a NULL buffer of count octets), count, flags, to ((ip, port), raw bytes or None), pieces (iovec lengths or None) | ret = octets taken |
| shutdown | how | |
| close | | |
| setsockopt | level, name, value (int or bytes) | |
| getsockopt | level, name, size (None: an int) | value |
| fcntl | nonblock (bool: set; absent: get) | nonblock |
| poll | entries ((descriptor, events) pairs), timeout (seconds, None: forever) | revents (one per entry) |
| ioctl | request | value |
| getsockname, getpeername | | addr |
| pipe | | fds (read end, write end) |
| open | path, flags, mode | ret = new descriptor |
| sendfile | source, offset, count | ret = octets |
| splice | out, count, flags | ret = octets |
| epoll_create | | ret = new descriptor |
| epoll_ctl | action (EPOLL_CTL_ADD, _DEL, _MOD), target, events | |
| epoll_wait | most, timeout | ready ((descriptor, events) pairs) |
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from harness.constants import errno_name


@dataclass(frozen=True)
class Call:
    op: str
    fd: int | None = None
    args: dict[str, Any] = field(default_factory=dict)

    def arg(self, name: str, default: Any = None) -> Any:
        return self.args.get(name, default)


@dataclass
class CallResult:
    """A call's outcome. `problems` are the syscall layer's, not the target's: how output
    arguments differ from what the script expects."""

    ret: int
    err: int | None = None
    addr: tuple[str, int] | None = None
    data: bytes | None = None
    ancillary: list[tuple[int, int, bytes]] | None = None
    msg_flags: int | None = None
    value: Any = None
    nonblock: bool | None = None
    revents: list[int] | None = None
    ready: list[tuple[int, int]] | None = None
    fds: tuple[int, int] | None = None
    problems: list[str] = field(default_factory=list)

    @classmethod
    def failed(cls, err: int) -> "CallResult":
        return cls(-1, err)

    def describe(self) -> str:
        if self.err is not None:
            return f"{self.ret} {errno_name(self.err)} ({os.strerror(self.err)})"
        return str(self.ret)
