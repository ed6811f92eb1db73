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
# Socket options, control messages and error-queue codes the corpora use (uapi/linux/tcp.h,
# in.h, in6.h, asm-generic/socket.h, net_tstamp.h, errqueue.h).
_EXTRA.update({
    "SOL_IP": 0, "TCP_MD5SIG": 14, "TCP_THIN_LINEAR_TIMEOUTS": 16, "TCP_THIN_DUPACK": 17,
    "TCP_TIMESTAMP": 24, "TCP_CC_INFO": 26, "TCP_SAVE_SYN": 27, "TCP_SAVED_SYN": 28,
    "TCP_REPAIR_WINDOW": 29, "TCP_FASTOPEN_CONNECT": 30, "TCP_ULP": 31, "TCP_MD5SIG_EXT": 32,
    "TCP_FASTOPEN_KEY": 33, "TCP_FASTOPEN_NO_COOKIE": 34, "TCP_ZEROCOPY_RECEIVE": 35,
    "TCP_INQ": 36, "TCP_CM_INQ": 36, "TCP_TX_DELAY": 37,
    "SO_TIMESTAMP": 29, "SO_TIMESTAMPNS": 35, "SO_TIMESTAMPING": 37, "SCM_TIMESTAMPING": 37,
    "SO_MEMINFO": 55, "SO_MAX_PACING_RATE": 47, "SO_TXTIME": 61, "SO_TXREHASH": 74,
    "SCM_TSTAMP_SND": 0, "SCM_TSTAMP_SCHED": 1, "SCM_TSTAMP_ACK": 2,
    "IP_MTU_DISCOVER": 10, "IP_MTU": 14, "IP_FREEBIND": 15, "IP_PMTUDISC_DONT": 0,
    "IP_PMTUDISC_WANT": 1, "IP_PMTUDISC_DO": 2, "IP_PMTUDISC_PROBE": 3,
    "IPV6_MTU_DISCOVER": 23, "IPV6_MTU": 24, "IPV6_RECVERR": 25,
    "SO_EE_ORIGIN_NONE": 0, "SO_EE_ORIGIN_LOCAL": 1, "SO_EE_ORIGIN_ICMP": 2,
    "SO_EE_ORIGIN_ICMP6": 3, "SO_EE_ORIGIN_TXSTATUS": 4, "SO_EE_ORIGIN_TIMESTAMPING": 4,
    "SO_EE_ORIGIN_ZEROCOPY": 5, "SO_EE_ORIGIN_TXTIME": 6, "SO_EE_CODE_ZEROCOPY_COPIED": 1,
})
_EXTRA.update({f"SOF_TIMESTAMPING_{name}": 1 << bit for bit, name in enumerate((
    "TX_HARDWARE", "TX_SOFTWARE", "RX_HARDWARE", "RX_SOFTWARE", "SOFTWARE", "SYS_HARDWARE",
    "RAW_HARDWARE", "OPT_ID", "TX_SCHED", "TX_ACK", "OPT_CMSG", "OPT_TSONLY", "OPT_STATS",
    "OPT_PKTINFO", "OPT_TX_SWHW", "BIND_PHC", "OPT_ID_TCP"))})

# Linux TCP states (include/net/tcp_states.h); `assert N state X` and tcpi_state use these.
TCP_STATES = {"ESTABLISHED": 1, "SYN_SENT": 2, "SYN_RECV": 3, "FIN_WAIT1": 4, "FIN_WAIT2": 5,
              "TIME_WAIT": 6, "CLOSE": 7, "CLOSE_WAIT": 8, "LAST_ACK": 9, "LISTEN": 10,
              "CLOSING": 11, "NEW_SYN_RECV": 12}

# What packetdrill puts in scope of a `%{ }%` block besides the tcpi_* values (its code.c):
# the tcpi_ca_state values (include/net/tcp.h) and the tcpi_options bits (uapi/linux/tcp.h).
CODE_NAMES = {"TCP_CA_Open": 0, "TCP_CA_Disorder": 1, "TCP_CA_CWR": 2, "TCP_CA_Recovery": 3,
              "TCP_CA_Loss": 4,
              "TCPI_OPT_TIMESTAMPS": 1, "TCPI_OPT_SACK": 2, "TCPI_OPT_WSCALE": 4,
              "TCPI_OPT_ECN": 8, "TCPI_OPT_ECN_SEEN": 16, "TCPI_OPT_SYN_DATA": 32,
              "TCPI_OPT_USEC_TS": 64, "TCPI_OPT_TFO_CHILD": 128}


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
