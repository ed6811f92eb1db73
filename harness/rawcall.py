"""System calls made with a script's raw arguments, for what Python's socket module refuses.

A script may hand the kernel a NULL buffer (`write(4, NULL, 1000) = -1 EFAULT`) or an
address of another family (`sendto(3, ..., 0, MSG_FASTOPEN, AF_UNSPEC, ...)`); packetdrill
passes such arguments to the kernel unchanged and checks what the kernel answers. Python
would copy a buffer or refuse the address itself, so these calls go to libc directly. The
same holds for `connect(4, AF_UNSPEC, ...)`, which dissolves a connection (connect(2)).
"""

from __future__ import annotations

import ctypes
import os
import socket
import struct

_libc = ctypes.CDLL(None, use_errno=True)
_libc.sendto.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                         ctypes.c_void_p, ctypes.c_uint32]
_libc.sendto.restype = ctypes.c_ssize_t
_libc.recvfrom.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                           ctypes.c_void_p, ctypes.c_void_p]
_libc.recvfrom.restype = ctypes.c_ssize_t
_libc.connect.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32]
_libc.connect.restype = ctypes.c_int


def _checked(ret: int) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def sockaddr(family: int, address: str = "", port: int = 0) -> bytes:
    """A struct sockaddr of `family` (uapi/linux/in.h, in6.h); AF_UNSPEC: a bare family."""
    if family == socket.AF_INET:
        return struct.pack("=H", family) + struct.pack("!H4s8x", port, socket.inet_aton(address))
    if family == socket.AF_INET6:
        return (struct.pack("=H", family)
                + struct.pack("!HI16sI", port, 0, socket.inet_pton(socket.AF_INET6, address), 0))
    return struct.pack("=H14x", family)


def send_null(fd: int, count: int, flags: int, to: bytes | None = None) -> int:
    """sendto(fd, NULL, count, flags, to): the kernel reads from address 0."""
    return _checked(_libc.sendto(fd, None, count, flags, to, len(to) if to else 0))


def send_to(fd: int, data: bytes, flags: int, to: bytes) -> int:
    """sendto with a raw destination address."""
    return _checked(_libc.sendto(fd, data, len(data), flags, to, len(to)))


def recv_null(fd: int, count: int, flags: int) -> int:
    """recvfrom(fd, NULL, count, flags): the kernel writes to address 0."""
    return _checked(_libc.recvfrom(fd, None, count, flags, None, None))


def connect_to(fd: int, to: bytes) -> int:
    """connect with a raw address; 0, or the errno the kernel gave."""
    if _libc.connect(fd, to, len(to)) == 0:
        return 0
    return ctypes.get_errno()
