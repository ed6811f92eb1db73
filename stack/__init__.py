"""rfcdrill's userspace TCP/IPv4 stack: a sans-I/O TCP core with a Python-socket-like API.

    host = stack.Host(address="192.168.0.1", clock=stack.VirtualClock(), link=stack.MemoryLink())
    sock = host.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)

See stack/host.py for the I/O shell, stack/connection.py for the state machine.
"""

from .clock import RealClock, VirtualClock
from .config import Config, SocketOptions
from .connection import Connection, Effects, Notice, State, Timer
from .host import Host
from .link import ImpairedLink, MemoryLink, TunLink
from .socket import Socket

__all__ = ["Config", "Connection", "Effects", "Host", "ImpairedLink", "MemoryLink", "Notice",
           "RealClock", "Socket", "SocketOptions", "State", "Timer", "TunLink", "VirtualClock"]
