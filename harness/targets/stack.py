"""The project's own userspace stack (stack/), in process and in virtual time.

Theory of operation: the host runs on a VirtualClock and a MemoryLink. Injecting a packet
processes it at the virtual now; waiting advances the clock straight to the next thing that
can happen (a stack timer, or the runner's own deadline), so RTO, delayed-ACK or TIME-WAIT
cases take no real time. The stack's sockets never wait on a virtual clock: a call that
would block reports EAGAIN/EINPROGRESS, so a script's blocking call (`...T`) is retried
after every step of the timeline until it completes, and its return time is the virtual
time of that step.

The case still runs in its own process, network namespace and read-only /proc/sys (as the
kernel target's does), so a script's shell commands touch nothing of the host. The namespace
has the kernel target's TUN device too (no packet goes through it), so that the `ip route`
commands a case runs for the kernel work here; a route's `initcwnd`, Linux's per-route initial
window, becomes the stack's initial window for the connections opened after it.
"""

from __future__ import annotations

import dataclasses
import errno
import math
import os
import platform
import re
import subprocess
from collections import deque
from typing import Any, Callable

from harness import netns
from harness.capabilities import Capabilities
from harness.errors import CaseError
from harness.model import Script
from harness.syscalls import CallResult, linux_tcp_info
from harness.targets.base import CallHandle, Captured, Target
from stack import Host, MemoryLink, VirtualClock
from stack.config import PROFILES, SYSCTL_NAMES

WOULD_BLOCK = (errno.EAGAIN, errno.EINPROGRESS, errno.EALREADY)


class StackAPI:
    """The stack's Python-socket-like API, as the SocketAPI of this target."""

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


class StackTarget(Target):
    """The stack; `profile` names its choices where the RFCs leave one (stack.config.PROFILES)."""

    name = "stack"
    # a TCP/IPv4 stack: IPv6 and its sockets are out of its scope
    capabilities = Capabilities(ip_versions=frozenset({"ipv4"}))
    profile = "rfc"

    def __init__(self) -> None:
        self.clock = VirtualClock()
        self.link = MemoryLink()
        self.host: Host | None = None
        self.tun: int | None = None
        self._api: StackAPI | None = None
        self.outbound: deque[Captured] = deque()
        self.blocked: list[tuple[Callable[[], Any], CallHandle]] = []

    @property
    def api(self) -> StackAPI:
        assert self._api is not None
        return self._api

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
        self._api = StackAPI(self.host)
        self.sysctl = dict(script.sysctl)
        self.seen = netns.read_sysctls(SYSCTL_NAMES)

    def after_shell(self) -> None:
        """A .pkt sets sysctls and routes with shell commands (`sysctl -w ...`, `ip route ...
        initcwnd N`) in the case's namespace: the sysctls the stack honours that the command
        changed, and a route's initcwnd, now configure the host. Only a shell command can
        change either, so nothing is read on the way of other calls."""
        now = netns.read_sysctls(SYSCTL_NAMES)
        changed = {name: value for name, value in now.items() if self.seen.get(name) != value}
        self.seen = now
        if self.host is None:
            return
        if changed:
            self.sysctl.update(changed)
            self.host.configure(self.sysctl)
        initcwnd = route_initcwnd()
        if initcwnd is not None:
            self.host.cfg = dataclasses.replace(self.host.cfg, initial_window=initcwnd)

    def now(self) -> float:
        return self.clock.now()

    def inject(self, data: bytes) -> None:
        assert self.host is not None
        self.host.receive(data)
        self._collect()

    def _collect(self) -> None:
        """Take what the host sent, stamped with the virtual now, and retry blocked calls."""
        now = self.clock.now()
        self.outbound.extend(Captured(now, packet) for packet in self.link.drain())
        for fn, handle in list(self.blocked):
            self._attempt(fn, handle)

    def wait(self, until: float) -> Captured | None:
        assert self.host is not None
        while True:
            self._collect()
            if self.outbound:
                return self.outbound.popleft()
            if any(handle.done for _, handle in self.blocked):
                self.blocked = [(f, h) for f, h in self.blocked if not h.done]
                return None
            if self.clock.now() > until:
                return None
            # Like a real wait, this one ends just after `until`, so that a deadline the
            # runner checks with `now > until` is seen to have passed.
            past = math.nextafter(until, math.inf)
            deadline = self.host.next_deadline()
            step_to = past if deadline is None else min(past, max(deadline, self.clock.now()))
            self.clock.set(step_to)
            self.host.run_timers()

    def start_call(self, fn: Callable[[], Any]) -> CallHandle:
        handle = CallHandle()
        self.blocked.append((fn, handle))
        self._attempt(fn, handle)
        return handle

    def _attempt(self, fn: Callable[[], Any], handle: CallHandle) -> None:
        if handle.done:
            return
        try:
            result = fn()
        except BaseException as exc:        # reported by the runner with the script line
            handle.error = exc
        else:
            if isinstance(result, CallResult) and result.err in WOULD_BLOCK:
                handle.would_block = True
                return
            if isinstance(result, CallResult) and result.err == errno.EISCONN and handle.would_block:
                result = CallResult(0)       # a blocking connect() that completed
            handle.result = result
        handle.finished_at = self.clock.now()
        handle.event.set()

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
