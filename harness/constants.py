"""Symbolic names a script may use, and their values on this system.

Names come from Python's own socket, errno, os, fcntl and select modules, so they match
the kernel headers; a few Linux names Python does not export are added by hand with their
values from the Linux UAPI headers.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import socket

_PREFIXES = ("AF_", "SOCK_", "IPPROTO_", "SOL_", "SO_", "TCP_", "IP_", "MSG_", "SHUT_",
             "O_", "F_", "POLL", "EPOLL", "SIOC")

# Linux UAPI values Python's modules leave out (include/uapi/linux/sockios.h, asm/ioctls.h).
_EXTRA = {"SIOCINQ": 0x541B, "SIOCOUTQ": 0x5411, "FIONREAD": 0x541B, "TCP_CA_NAME_MAX": 16,
          "SO_ZEROCOPY": 60, "MSG_ZEROCOPY": 0x4000000, "TCP_REPAIR": 19,
          "IPV6_TCLASS": 67, "SOL_IPV6": 41, "NULL": 0,
          "EPOLL_CTL_ADD": 1, "EPOLL_CTL_DEL": 2, "EPOLL_CTL_MOD": 3,
          "IP_RECVERR": 11, "SIOCATMARK": 0x8905, "EOPNOTSUPP": 95}

# Linux TCP states (include/net/tcp_states.h); `assert N state X` and tcpi_state use these.
TCP_STATES = {"ESTABLISHED": 1, "SYN_SENT": 2, "SYN_RECV": 3, "FIN_WAIT1": 4, "FIN_WAIT2": 5,
              "TIME_WAIT": 6, "CLOSE": 7, "CLOSE_WAIT": 8, "LAST_ACK": 9, "LISTEN": 10,
              "CLOSING": 11, "NEW_SYN_RECV": 12}


def _collect() -> dict[str, int]:
    table: dict[str, int] = {}
    for module in (socket, os, fcntl, select):
        for name in dir(module):
            value = getattr(module, name)
            if name.startswith(_PREFIXES) and isinstance(value, int) and name.isupper():
                table[name] = int(value)
    table.update({name: code for code, name in errno.errorcode.items()})
    table.update(_EXTRA)
    table.update({f"TCP_{name}": value for name, value in TCP_STATES.items()})
    return table


CONSTANTS: dict[str, int] = _collect()

# The system calls scripts may use; the runner implements each (harness/syscalls.py).
KNOWN_SYSCALLS = frozenset({
    "socket", "bind", "listen", "accept", "connect", "read", "recv", "write", "send",
    "close", "shutdown", "setsockopt", "getsockopt", "fcntl", "poll", "readv", "writev",
    "recvfrom", "recvmsg", "sendto", "sendmsg", "ioctl", "getsockname", "getpeername",
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "pipe", "splice",
    "sendfile", "open",
})


def is_known_name(name: str) -> bool:
    return name in CONSTANTS



def errno_name(code: int) -> str:
    return errno.errorcode.get(code, str(code))
