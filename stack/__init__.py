"""rfcdrill's userspace TCP/IPv4 stack: a sans-I/O TCP core with a Python-socket-like API.

The interface a caller (the harness) uses::

    host = stack.Host(address="192.168.0.1", clock=stack.VirtualClock(), link=stack.MemoryLink(),
                      sysctl={"net.ipv4.tcp_timestamps": 0},     # Linux names; see host.unsupported_sysctls
                      delayed_ack=0.04, rto_min=0.2, initial_window=None, msl=30.0)  # Config fields
    host.receive(packet)          # one inbound IPv4 packet, processed at clock.now()
    host.run_timers()             # fire every timer due at clock.now()
    host.next_deadline()          # earliest pending timer (clock seconds) or None
    host.link.drain()             # MemoryLink: the packets the host sent, oldest first
    sock = host.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    host.poll([(sock, select.POLLIN | select.POLLOUT)], timeout) -> [(sock, revents)]

Sockets have the methods of `socket.socket` (bind, listen, accept, connect, connect_ex,
send, sendall, recv, recv_into, shutdown, close, setsockopt, getsockopt (TCP_INFO packed like
Linux's struct tcp_info), settimeout, setblocking, getsockname, getpeername, fileno) and raise
OSError subclasses with Linux errno values. With a VirtualClock nothing waits: use
non-blocking sockets and poll; a blocking call that would wait raises BlockingIOError. With a
RealClock and a TunLink (or MemoryLink pair), blocking calls run the host's I/O loop.

Modules: wire (codec), seqnum, options, buffers, rtt, congestion (RFC 5681 window, NewReno),
sack (RFC 6675 loss recovery), isn, config, events (states, timers, effects), connection (the
state machine) with its parts handshake, sender, receiver and timeouts, icmp, tcpinfo, socket,
host, gso (segmentation offload), link, clock, soak (`python -m stack.soak`).
"""

from .clock import RealClock, VirtualClock
from .config import Config, SocketOptions
from .connection import Connection
from .events import Effects, Notice, State, Timer
from .host import Host
from .link import GsoTunLink, ImpairedLink, MemoryLink, TunLink
from .socket import Socket

__all__ = ["Config", "Connection", "Effects", "GsoTunLink", "Host", "ImpairedLink", "MemoryLink",
           "Notice", "RealClock", "Socket", "SocketOptions", "State", "Timer", "TunLink",
           "VirtualClock"]
