"""The project's own userspace stack (stack/), in process and in virtual time.

Theory of operation: the host runs on a VirtualClock and a MemoryLink. Injecting a packet
processes it at the virtual now; waiting advances the clock straight to the next thing that
can happen (a stack timer, or the runner's own deadline: base.VirtualTime), so RTO,
delayed-ACK or TIME-WAIT cases take no real time. The stack's sockets never wait on a virtual
clock: the host's `wait` raises CallBlocked here instead, so a script's blocking call
(`...T`) is retried after every step of the timeline until it completes, and its return time
is the virtual time of that step.

The case still runs in its own process, network namespace and read-only /proc/sys (as the
kernel target's does), so a script's shell commands touch nothing of the host. The namespace
has the kernel target's TUN device too (no packet goes through it), so that the `ip route`
commands a case runs for the kernel work here; a route's `initcwnd`, Linux's per-route initial
window, becomes the stack's initial window for the connections opened after it.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import platform
import re
import subprocess
from typing import Any, Callable

from harness import netns
from harness.calls import CallResult
from harness.capabilities import Capabilities
from harness.errors import CaseError
from harness.model import Script
from harness.targets.base import CallBlocked, CallHandle, Captured, RetriedCalls, Target
from harness.targets.sockets import InProcess, SocketCalls, linux_tcp_info
from stack import Host, MemoryLink, VirtualClock
from stack.config import PROFILES, SYSCTL_NAMES

WOULD_BLOCK = (errno.EAGAIN, errno.EINPROGRESS, errno.EALREADY)


def _would_wait(ready: Callable[[], bool], timeout: float | None, code: int) -> None:
    """The host's `wait` here: the clock is the runner's to move, so a blocking socket call
    that would wait says so with CallBlocked (RetriedCalls makes it again) instead of an
    errno a non-blocking call could return as well."""
    if not ready():
        raise CallBlocked()


class StackAPI:
    """The stack's Python-socket-like API, as the SocketAPI (sockets.py) of this target."""

    def __init__(self, host: Host) -> None:
        self.host = host

    def socket(self, family: int, type_: int, proto: int) -> Any:
        return self.host.socket(family, type_, proto)

    def poll(self, entries: list[tuple[Any, int]], timeout: float | None) -> list[tuple[Any, int]]:
        return self.host.poll(entries, 0)        # virtual time: report what is ready now

    def set_nonblocking(self, sock: Any, on: bool) -> None:
        sock.setblocking(not on)

    def is_nonblocking(self, sock: Any) -> bool:
        return not sock.getblocking()

    tcp_info = staticmethod(linux_tcp_info)

    @staticmethod
    def meminfo(sock: Any) -> dict[str, int]:
        """No SO_MEMINFO (Linux's socket memory counters): a Python block sees no SK_MEMINFO_*."""
        return {}

    @staticmethod
    def sequence(sock: Any) -> dict[str, int]:
        """The connection's sequence variables (RFC 9293 3.3.1), which TCP_INFO lacks."""
        conn = sock.conn
        if conn is None:
            return {}
        return {"SND.UNA": conn.snd_una, "SND.NXT": conn.snd_nxt, "RCV.NXT": conn.rcv_nxt,
                "ISS": conn.iss, "IRS": conn.irs}

    def ioctl_int(self, sock: Any, request: int) -> int:
        return sock.ioctl(request)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        """pipe, open, epoll...: kernel descriptors this target does not have."""
        def unsupported(*args: object) -> Any:
            raise CaseError(None, f"{name}() is not supported by the stack target")
        return unsupported


def route_initcwnd() -> int | None:
    """The `initcwnd` of a route in this namespace (`ip route ... initcwnd N`), if any."""
    routes = subprocess.run(["ip", "-4", "route", "show"], capture_output=True, text=True).stdout
    found = re.search(r"\binitcwnd (\d+)", routes)
    return int(found.group(1)) if found else None


class StackTarget(InProcess, RetriedCalls, Target):
    """The stack; `profile` names its choices where the RFCs leave one (stack.config.PROFILES)."""

    name = "stack"
    # a TCP/IPv4 stack: IPv6 and its sockets are out of its scope
    capabilities = Capabilities(ip_versions=frozenset({"ipv4"}))
    profile = "rfc"

    def __init__(self) -> None:
        super().__init__()
        self.clock = VirtualClock()
        self.link = MemoryLink()
        self.host: Host | None = None
        self.tun: int | None = None

    def setup(self, script: Script) -> None:
        plan = script.plan
        try:
            self.tun = netns.open_tun(address=plan.local_ip, netmask=plan.netmask,
                                      peer=plan.remote_ip, mtu=plan.mtu)
        except OSError:
            self.tun = None      # e.g. a multicast remote: no shell command can route to it
        try:
            self.host = Host(plan.local_ip, self.clock, self.link, dict(script.sysctl),
                             netmask=plan.netmask, mtu=plan.mtu, **PROFILES[self.profile])
        except ValueError as exc:     # a sysctl value the kernel would refuse too
            raise CaseError(None, str(exc)) from None
        self.host.wait = _would_wait      # type: ignore[method-assign]
        self.sockets = SocketCalls(StackAPI(self.host))
        self.sysctl = dict(script.sysctl)
        self.watch_sysctls(SYSCTL_NAMES)

    def after_shell(self) -> None:
        """A .pkt sets sysctls and routes with shell commands (`sysctl -w ...`, `ip route ...
        initcwnd N`) in the case's namespace: the sysctls the stack honours that the command
        changed (Target.after_shell, apply_sysctls) and a route's initcwnd now configure the
        host. Only a shell command can change either, so nothing is read on the way of other
        calls."""
        super().after_shell()
        assert self.host is not None
        initcwnd = route_initcwnd()
        if initcwnd is not None:
            self.host.cfg = dataclasses.replace(self.host.cfg, initial_window=initcwnd)

    def apply_sysctls(self, changed: dict[str, str]) -> None:
        assert self.host is not None
        self.sysctl.update(changed)
        self.host.configure(self.sysctl)

    def now(self) -> float:
        return self.clock.now()

    def inject(self, data: bytes) -> None:
        assert self.host is not None
        self.host.receive(data)
        self._quiesce()

    def _quiesce(self) -> None:
        """Take what the host sent, stamped with the virtual now, and retry blocked calls."""
        now = self.clock.now()
        self.outbound.extend(Captured(now, packet) for packet in self.link.drain())
        self.retry_blocked()

    def _next_timer(self) -> float | None:
        assert self.host is not None
        return self.host.next_deadline()

    def _advance(self, to: float) -> None:
        assert self.host is not None
        self.clock.set(to)
        self.host.run_timers()

    def _retried(self, handle: CallHandle) -> bool:
        """Once a call has blocked, its retries may see the errno of a call under way (a
        connect's EALREADY); a connect that then finds the connection made (EISCONN)
        returns 0, as the blocking connect would have."""
        result = handle.result
        if isinstance(result, CallResult) and result.err in WOULD_BLOCK:
            return False
        if isinstance(result, CallResult) and result.err == errno.EISCONN:
            handle.result = CallResult(0)
        return True

    def teardown(self) -> None:
        if self.tun is not None:
            os.close(self.tun)

    def environment(self) -> dict[str, str]:
        env = {"stack": "rfcdrill userspace TCP (stack/)", "python": platform.python_version(),
               "clock": "virtual", "profile": self.profile}
        if self.host is not None and self.host.unsupported_sysctls:
            env["unsupported sysctls"] = ", ".join(sorted(self.host.unsupported_sysctls))
        return env


class StackLinuxTarget(StackTarget):
    """The stack with Linux's choices where Linux departs from the RFCs' recommendations."""

    name = "stack-linux"
    profile = "linux"


class StackAltTarget(StackTarget):
    """The stack taking, wherever the RFCs leave a choice, one unlike Linux's: a case that
    passes the kernel and fails here pins a Linux choice (or the stack has a bug)."""

    name = "stack-alt"
    profile = "alt"
