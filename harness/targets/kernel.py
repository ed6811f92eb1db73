"""The Linux kernel's TCP, behind a TUN device in the case's own network namespace."""

from __future__ import annotations

import errno
import fcntl
import os
import platform
import select
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from harness import ip, netns, sched, timewait, vnet
from harness.constants import CONSTANTS
from harness.calls import Call, CallResult
from harness.errors import CaseError
from harness.model import Script
from harness.tcpinfo import MEMINFO_LEN, SO_MEMINFO, decode_meminfo
from harness.targets.base import CallHandle, Captured, Target
from harness.targets.sockets import InProcess, SocketCalls, linux_tcp_info

SPIN = 0.0007        # the last stretch before a deadline is spent polling, not sleeping
REPORTED_SYSCTLS = ("net.ipv4.tcp_congestion_control", "net.ipv4.tcp_timestamps",
                    "net.ipv4.tcp_sack", "net.ipv4.tcp_window_scaling", "net.ipv4.tcp_syn_retries",
                    "net.ipv4.tcp_syn_linear_timeouts", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem",
                    "net.ipv4.tcp_ecn", "net.ipv4.tcp_stdurg", "net.ipv4.tcp_rfc1337")


class KernelAPI:
    """Python's socket module, as the SocketAPI (sockets.py) of the kernel target."""

    def socket(self, family: int, type_: int, proto: int) -> socket.socket:
        return socket.socket(family, type_, proto)

    def poll(self, entries: list[tuple[Any, int]], timeout: float | None) -> list[tuple[Any, int]]:
        poller = select.poll()
        by_fd = {}
        for sock, events in entries:
            poller.register(sock.fileno(), events)
            by_fd[sock.fileno()] = sock
        ready = poller.poll(None if timeout is None else timeout * 1000)
        return [(by_fd[fd], revents) for fd, revents in ready]

    def set_nonblocking(self, sock: socket.socket, on: bool) -> None:
        sock.setblocking(not on)

    def is_nonblocking(self, sock: socket.socket) -> bool:
        return not sock.getblocking()

    def __init__(self) -> None:
        self.peers = timewait.Peers()

    def tcp_info(self, sock: socket.socket) -> dict[str, int]:
        """TCP_INFO, with the TIME-WAIT that Linux's CLOSE on the socket hides (timewait.py)."""
        self.peers.note(sock)
        return timewait.with_time_wait(linux_tcp_info(sock), sock, self.peers.get(sock))

    @staticmethod
    def meminfo(sock: socket.socket) -> dict[str, int]:
        """SO_MEMINFO (Linux's socket memory counters), for a Python block's SK_MEMINFO_*."""
        return decode_meminfo(sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, MEMINFO_LEN))

    @staticmethod
    def sequence(sock: socket.socket) -> dict[str, int]:
        """TCP_INFO has no SND.UNA, SND.NXT, RCV.NXT, ISS or IRS (only counts relative to
        them): the kernel target reports none rather than make them up."""
        return {}

    def ioctl_int(self, sock: socket.socket, request: int) -> int:
        return struct.unpack("i", fcntl.ioctl(sock, request, b"\0" * 4))[0]

    def pipe(self) -> tuple["Descriptor", "Descriptor"]:
        read_end, write_end = os.pipe()
        return Descriptor(read_end), Descriptor(write_end)

    def open(self, path: str, flags: int, mode: int) -> "Descriptor":
        return Descriptor(os.open(path, flags, mode))

    def sendfile(self, out: Any, source: Any, offset: int | None, count: int) -> int:
        return os.sendfile(out.fileno(), source.fileno(), offset, count)

    def splice(self, source: Any, out: Any, count: int, flags: int) -> int:
        return os.splice(source.fileno(), out.fileno(), count, flags=flags)

    def epoll(self) -> select.epoll:
        return select.epoll()

    def epoll_ctl(self, epoll: select.epoll, op: int, target: Any, events: int) -> None:
        actions = {CONSTANTS["EPOLL_CTL_ADD"]: lambda: epoll.register(target.fileno(), events),
                   CONSTANTS["EPOLL_CTL_DEL"]: lambda: epoll.unregister(target.fileno()),
                   CONSTANTS["EPOLL_CTL_MOD"]: lambda: epoll.modify(target.fileno(), events)}
        if op not in actions:
            raise OSError(errno.EINVAL, "epoll_ctl: unknown op")
        actions[op]()

    def epoll_wait(self, epoll: select.epoll, most: int, timeout: float | None) -> list[tuple[int, int]]:
        """Ready (fileno, events) pairs."""
        return epoll.poll(-1 if timeout is None else timeout, most)


class Descriptor:
    """A file descriptor that is not a socket (pipe end, file), with socket-like calls."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def fileno(self) -> int:
        return self.fd

    def recv(self, size: int, flags: int = 0) -> bytes:
        return os.read(self.fd, size)

    def send(self, data: bytes, flags: int = 0) -> int:
        return os.write(self.fd, data)

    def close(self) -> None:
        os.close(self.fd)


ETH_P_ALL, PACKET_OUTGOING, SO_TIMESTAMPNS = 0x0003, 4, 35
SOL_PACKET, PACKET_VNET_HDR = 263, 15          # linux/socket.h, linux/if_packet.h


def open_sniffer(offload: bool) -> socket.socket:
    """An AF_PACKET socket on the TUN device with kernel timestamps (ETH_P_ALL: outgoing
    packets reach only such taps); with offloads it gets the same virtio_net_hdr."""
    # Protocol 0 first: the hook is registered once, by bind(); a protocol given here would
    # be unregistered by bind() with an RCU wait (some 14 ms) before it is registered again.
    sniffer = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    if offload:
        sniffer.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    sniffer.bind((netns.TUN_NAME, ETH_P_ALL))
    sniffer.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sniffer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sniffer.setblocking(False)
    return sniffer


STAMP_WAIT = 0.5     # how long the kernel may take to turn packet timestamps on
# An IPv4 header (RFC 791) from the peer with a wrong checksum: taps see it, IP drops it
# without a reply (ip_rcv_core counts it in InHdrErrors).
STAMP_PROBE = bytes.fromhex("45000014000000004000dead") + bytes([192, 0, 2, 1, 192, 168, 0, 1])


def await_timestamps(tun: int, sniffer: socket.socket, offload: bool) -> float:
    """Wait until the kernel stamps packets as they arrive; return how long that took.

    The first socket on the system to ask for timestamps turns them on through a deferred
    work item (net_enable_timestamp schedules netstamp_work); until it has run, packets carry
    no stamp and recvmsg stamps them when they are read, which makes a packet read late look
    sent late. A probe written to the device shows which: stamped on arrival, its stamp is
    before the write returned; unstamped, it is the time of the read."""
    start = time.time()
    while True:
        os.write(tun, vnet.wrap(STAMP_PROBE) if offload else STAMP_PROBE)
        written = time.time()
        select.select([sniffer], [], [], STAMP_WAIT)
        stamp = None
        while True:
            try:
                data, ancillary, _, address = sniffer.recvmsg(1 << 17, 64)
            except BlockingIOError:
                break
            if address[2] != PACKET_OUTGOING and ancillary:
                seconds, nanos = struct.unpack("qq", ancillary[0][2][:16])
                stamp = seconds + nanos / 1e9
        if stamp is not None and stamp <= written:
            return written - start
        if time.time() - start > STAMP_WAIT:
            raise CaseError(None, "the kernel did not turn packet timestamps on within "
                            f"{STAMP_WAIT} s: outbound times cannot be trusted")
        time.sleep(0.001)


def _realtime_minus_monotonic() -> float:
    """CLOCK_REALTIME - CLOCK_MONOTONIC, for kernel packet timestamps (realtime)."""
    before = time.monotonic()
    real = time.time()
    return real - (before + time.monotonic()) / 2


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 1 << 17):
            pass
    except BlockingIOError:
        return


class KernelTarget(InProcess, Target):
    name = "kernel"

    def __init__(self) -> None:
        self.api = KernelAPI()
        self.sockets = SocketCalls(self.api)
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="syscall",
                                        initializer=sched.punctual)
        self.tun = -1
        self.sniffer: socket.socket | None = None
        self.offload = False
        self.gso_mss = 0
        self._wake_r, self._wake_w = -1, -1
        self._t0 = 0.0
        self.wire_version = 4
        self.stamp_delay = 0.0
        self.scheduling = ""

    def call(self, call: Call) -> CallResult:
        """A call on the kernel's sockets; the peers of the sockets it was made on or made
        are noted while they can tell them (timewait.py)."""
        result = self.sockets.call(call)
        for fd in (call.fd, result.ret if call.op == "accept" else None):
            self.api.peers.note(self.sockets.objects.get(fd))
        return result

    def setup(self, script: Script) -> None:
        self.scheduling = sched.punctual()
        plan = script.plan
        self.wire_version = 6 if plan.ip_version == "ipv6" else 4
        if self.wire_version == 6:
            quiet = netns.QUIET_IPV6
        else:     # no IPv6 on the device at all: no router solicitations
            quiet = {"net.ipv6.conf.all.disable_ipv6": 1, "net.ipv6.conf.default.disable_ipv6": 1}
        for name, value in {**quiet, **script.sysctl}.items():
            netns.write_sysctl(name, value)
        try:
            self.tun = netns.open_tun(address=plan.local_ip, netmask=plan.netmask,
                                      peer=plan.remote_ip, mtu=plan.mtu, offload=plan.offload,
                                      prefix_len=plan.prefix_len)
        except OSError as exc:
            raise CaseError(None, f"the TUN device cannot be set up with local_ip {plan.local_ip}, "
                            f"remote_ip {plan.remote_ip}, netmask {plan.netmask}, mtu {plan.mtu}: "
                            f"{exc.strerror} (a multicast or broadcast remote_ip cannot be "
                            "the device's peer)") from None
        self.offload = plan.offload
        self.gso_mss = plan.gso_mss
        self.sniffer = open_sniffer(plan.offload)
        self.stamp_delay = await_timestamps(self.tun, self.sniffer, plan.offload)
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.restart_clock()

    def restart_clock(self) -> None:
        """Time 0 of the case is now."""
        self._t0 = time.monotonic()
        self._realtime_offset = _realtime_minus_monotonic() + self._t0

    def now(self) -> float:
        return time.monotonic() - self._t0

    def inject(self, data: bytes) -> None:
        os.write(self.tun, vnet.wrap(data, self.gso_mss) if self.offload else data)

    def wait(self, until: float) -> Captured | None:
        """Outbound packets are read from an AF_PACKET socket on the device, stamped by the
        kernel when it transmitted them: a runner that the scheduler delays still sees the
        true time. The TUN device's own queue is drained alongside (its copies unused)."""
        watched = [self.sniffer, self.tun, self._wake_r]
        while True:
            remaining = until - self.now()
            timeout = remaining - SPIN if remaining > SPIN else 0.0
            ready, _, _ = select.select(watched, [], [], timeout)
            if self.tun in ready:
                _drain(self.tun)
            if self.sniffer in ready:
                captured = self._sniffed()
                if captured is not None:
                    return captured
                continue
            if self._wake_r in ready:
                os.read(self._wake_r, 4096)
                return None
            if remaining <= 0:
                return None

    def _sniffed(self) -> Captured | None:
        try:
            data, ancillary, _, address = self.sniffer.recvmsg(1 << 17, 64)
        except BlockingIOError:
            return None
        if address[2] != PACKET_OUTGOING:
            return None
        if self.offload:
            data = vnet.strip(data)
        if not self._relevant(data):
            return None
        seconds, nanos = struct.unpack("qq", ancillary[0][2][:16])
        return Captured(seconds + nanos / 1e9 - self._realtime_offset, data)

    def _relevant(self, data: bytes) -> bool:
        """A packet of the case's IP version, IPv6 neighbour discovery and MLD left out."""
        if not data or data[0] >> 4 != self.wire_version:
            return False
        if self.wire_version == 4:
            return True
        proto = ip.protocol(data)
        return proto != ip.IPPROTO_ICMPV6 or (len(data) > ip.V6_HEADER_LEN
                                               and data[ip.V6_HEADER_LEN] < 128)

    def start_call(self, fn: Callable[[], Any]) -> CallHandle:
        handle = CallHandle()
        started = threading.Event()

        def run() -> None:
            started.set()
            waited = sched.run_delay()
            handle.started_at = self.now()
            handle.run(fn)
            finished = self.now()
            handle.cpu_wait = sched.run_delay() - waited
            handle.finish(finished)
            os.write(self._wake_w, b"x")
        self._pool.submit(run)
        started.wait()      # the timeline goes on once the call is under way, not before
        return handle

    def teardown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def environment(self) -> dict[str, str]:
        return {"kernel": platform.release(), "scheduling of the peer": self.scheduling,
                **netns.read_sysctls(REPORTED_SYSCTLS)}
