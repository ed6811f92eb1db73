"""Any TCP implementation behind an adapter that speaks the target protocol (PROTOCOL.md).

Theory of operation: the case runs in its own process, network namespace and read-only
/proc/sys, as on every target; the adapter is started there for this one case and killed at
its end. Each Call the syscall layer makes (harness.calls) becomes one request of the
protocol and its reply a CallResult (`ProtocolCalls`); `connection` is the `state` request.
Time:
- virtual (the hello says so): the case's clock is the adapter's. Every injected packet is
  followed by a `sync`, so the stack has processed it before the next line (a call may read
  what it carried), and whatever the stack sent in answer is on the packet descriptor, stamped
  with that moment. `wait(until)` advances the clock to min(until, next timer), one timer at
  a time (base.VirtualTime), so each packet and each completed call carries the time it
  happened.
- real: the case's clock is the monotonic clock since init; packets are stamped when they
  arrive. `sync` after an injection still orders it before the next call.
A call that may block (a `pending` first reply) runs on a thread of its own: in virtual time
every call does (the runner fails one the script did not mark as blocking, `...`, that pends),
in real time those marked `...`; once the adapter answers a sync or advance, `wait` lets every
such thread finish what the replies it got made it do before it looks at time or packets again.
"""

from __future__ import annotations

import errno
import ipaddress
import math
import os
import select
import socket
import struct
import threading
import time
from typing import Any, Callable

from harness import netns
from harness.calls import Call, CallResult
from harness.capabilities import Capabilities, option_name
from harness.constants import CONSTANTS
from harness.errors import CaseError
from harness.model import Script
from harness.record import ADAPTER_STDERR
from harness.targets.adapter import DATAGRAM_MAX, Adapter
from harness.targets.base import CallHandle, Captured, Target, VirtualTime

SOCKOPT_LEVELS = {socket.SOL_SOCKET: "SOL_SOCKET", socket.IPPROTO_TCP: "IPPROTO_TCP",
                  socket.IPPROTO_IP: "IPPROTO_IP", socket.IPPROTO_IPV6: "IPPROTO_IPV6"}
MSG_FLAGS = ("MSG_PEEK", "MSG_OOB", "MSG_DONTWAIT", "MSG_WAITALL", "MSG_MORE", "MSG_NOSIGNAL")
POLL_EVENTS = ("POLLIN", "POLLPRI", "POLLOUT", "POLLERR", "POLLHUP", "POLLNVAL", "POLLRDHUP")
SHUT = {socket.SHUT_RD: "SHUT_RD", socket.SHUT_WR: "SHUT_WR", socket.SHUT_RDWR: "SHUT_RDWR"}
IOCTLS = ("SIOCINQ", "SIOCOUTQ", "SIOCATMARK")
SETTLE_LIMIT = 10.0    # seconds call threads may take to act on the replies of one step


def _name(value: int, prefix: str, names: tuple[str, ...] | None = None) -> str:
    """The constant name of `value` among those starting with `prefix` (or in `names`)."""
    for name, number in CONSTANTS.items():
        if number == value and name.startswith(prefix) and (names is None or name in names):
            return name
    raise CaseError(None, f"no {prefix}* name for {value} in the target protocol")


def _flag_names(mask: int, names: tuple[str, ...]) -> list[str]:
    return [n for n in names if n in CONSTANTS and mask & CONSTANTS[n]]


def _result(op: str, reply: dict[str, Any]) -> dict[str, Any]:
    """A call's reply; a failed call (ret < 0) raises OSError with its errno (PROTOCOL.md 4)."""
    if reply.get("ret", 0) >= 0:
        return reply
    code = getattr(errno, str(reply.get("errno")), None)
    if code is None:
        raise CaseError(None, f"{op} failed with an errno name Linux does not have: "
                        f"{reply.get('errno')!r}")
    raise OSError(code, os.strerror(code))


def _mask(names: list[str]) -> int:
    value = 0
    for name in names:
        value |= CONSTANTS.get(name, 0)
    return value


def _option(level: int, name: int) -> tuple[str, str]:
    level_name = SOCKOPT_LEVELS.get(level)
    option = option_name(level_name, name) if level_name else None
    if option is None:
        raise CaseError(None, f"socket option {level}:{name} has no name in the target protocol")
    return level_name, option


def _address(address: tuple) -> dict[str, Any]:
    return {"ip": address[0], "port": address[1]}


def _option_value(name: str, value: int | bytes) -> Any:
    """A setsockopt value as the protocol writes it: an integer, SO_LINGER's object, a string
    (TCP_CONGESTION) or, for any other structure, its bytes in hex."""
    if isinstance(value, int):
        return value
    if name == "SO_LINGER" and len(value) == 8:
        onoff, linger = struct.unpack("ii", value)
        return {"l_onoff": onoff, "l_linger": linger}
    if name == "TCP_CONGESTION":
        return value.rstrip(b"\0").decode(errors="replace")
    if len(value) == 4:
        return struct.unpack("i", value)[0]
    return {"hex": value.hex()}


class ProtocolCalls:
    """Calls (harness.calls) as requests of the target protocol (PROTOCOL.md section 4), and
    their replies as CallResults; `request` sends one and waits for its final reply."""

    def __init__(self, request: Callable[..., dict[str, Any]]) -> None:
        self.request = request
        self.nonblocking: dict[int, bool] = {}                  # as each descriptor was made
        self.names: dict[int, dict[str, tuple[str, int]]] = {}   # getsockname/getpeername

    def call(self, call: Call) -> CallResult:
        handler: Callable[[Call], CallResult] | None = getattr(self, "op_" + call.op, None)
        if handler is None:
            raise CaseError(None, f"{call.op}() is not a call of the target protocol")
        try:
            return handler(call)
        except OSError as exc:
            assert exc.errno is not None
            return CallResult.failed(exc.errno)

    def _call(self, op: str, fd: int | None, **args: Any) -> dict[str, Any]:
        return _result(op, self.request(op, **({} if fd is None else {"fd": fd}), **args))

    def connection(self, fd: int) -> dict[str, Any]:
        """The adapter's `state` reply (PROTOCOL.md section 5), as it is."""
        return self._call("state", fd).get("state", {})

    def op_socket(self, call: Call) -> CallResult:
        nonblock = bool(call.arg("type") & CONSTANTS.get("SOCK_NONBLOCK", 0))
        fd = self._call("socket", None, family=_name(call.arg("family"), "AF_"), type="SOCK_STREAM",
                        nonblock=nonblock)["ret"]
        self._made(fd, nonblock)
        return CallResult(fd)

    def _made(self, fd: int, nonblock: bool) -> None:
        """A new descriptor (an adapter may reuse a closed one's number): nothing known yet."""
        self.nonblocking[fd] = nonblock
        self.names.pop(fd, None)

    def op_bind(self, call: Call) -> CallResult:
        self._call("bind", call.fd, addr=_address(call.arg("addr")))
        return CallResult(0)

    def op_listen(self, call: Call) -> CallResult:
        self._call("listen", call.fd, backlog=call.arg("backlog"))
        return CallResult(0)

    def op_accept(self, call: Call) -> CallResult:
        reply = self._call("accept", call.fd)
        addr = reply.get("addr") or {}
        self._made(reply["ret"], False)
        return CallResult(reply["ret"], addr=(str(addr.get("ip", "")), int(addr.get("port", 0))))

    def op_connect(self, call: Call) -> CallResult:
        address = call.arg("addr")
        if isinstance(address, bytes):
            raise CaseError(None, "a bare address family (AF_UNSPEC) is not in the target protocol")
        self._call("connect", call.fd, addr=_address(address))
        return CallResult(0)

    def op_read(self, call: Call) -> CallResult:
        """recvmsg reads the bytes only: the protocol has no control messages or msg_flags."""
        if call.arg("null"):
            raise CaseError(None, "a NULL buffer is not in the target protocol")
        reply = self._call("read", call.fd, count=call.arg("count"),
                           flags=_flag_names(call.arg("flags", 0), MSG_FLAGS))
        data = bytes.fromhex(reply.get("data", ""))
        return CallResult(len(data), data=data)

    def op_write(self, call: Call) -> CallResult:
        """TCP's sendto with an address connects, then sends (the connect's own result is
        not the call's); an iovec's pieces go as one buffer."""
        data, to = call.arg("data"), call.arg("to")
        if data is None or isinstance(to, bytes):
            raise CaseError(None, "a NULL buffer or a bare address family is not in the target "
                            "protocol")
        if to is not None and "peer" not in self.names.get(call.fd or 0, {}):
            try:
                self._call("connect", call.fd, addr=_address(to))
            except OSError:
                pass
        reply = self._call("write", call.fd, data=data.hex(),
                           flags=_flag_names(call.arg("flags", 0), MSG_FLAGS))
        return CallResult(int(reply["ret"]))

    def op_close(self, call: Call) -> CallResult:
        self._call("close", call.fd)
        self.names.pop(call.fd or 0, None)
        return CallResult(0)

    def op_shutdown(self, call: Call) -> CallResult:
        how = call.arg("how")
        self._call("shutdown", call.fd, how=SHUT.get(how, str(how)))
        return CallResult(0)

    def op_setsockopt(self, call: Call) -> CallResult:
        level_name, option = _option(call.arg("level"), call.arg("name"))
        self._call("setsockopt", call.fd, level=level_name, name=option,
                   value=_option_value(option, call.arg("value")))
        return CallResult(0)

    def op_getsockopt(self, call: Call) -> CallResult:
        """The value as a Linux getsockopt gives it: an int, or `size` bytes of the struct."""
        level_name, option = _option(call.arg("level"), call.arg("name"))
        value = self._call("getsockopt", call.fd, level=level_name, name=option).get("value")
        buflen = call.arg("size") or 0
        if isinstance(value, dict) and "l_onoff" in value:
            raw = struct.pack("ii", value["l_onoff"], value["l_linger"])
        elif isinstance(value, dict) and "hex" in value:
            raw = bytes.fromhex(value["hex"])
        elif isinstance(value, str):
            raw = value.encode()
        elif not buflen:
            return CallResult(0, value=int(value))
        else:
            raw = struct.pack("i", int(value))
        return CallResult(0, value=raw[:buflen].ljust(buflen, b"\0") if buflen else raw)

    def op_fcntl(self, call: Call) -> CallResult:
        assert call.fd is not None
        if "nonblock" in call.args:
            self._call("fcntl", call.fd, nonblock=call.arg("nonblock"))
            self.nonblocking[call.fd] = call.arg("nonblock")
            return CallResult(0)
        reply = self._call("fcntl", call.fd)
        return CallResult(0, nonblock=reply.get("nonblock", self.nonblocking.get(call.fd, False)))

    def op_poll(self, call: Call) -> CallResult:
        entries, timeout = call.arg("entries"), call.arg("timeout")
        reply = self.request("poll", fds=[{"fd": fd, "events": _flag_names(events, POLL_EVENTS)}
                                          for fd, events in entries],
                             timeout_us=-1 if timeout is None else round(timeout * 1e6))
        revents = [_mask(names) for names in reply.get("revents", [])]
        revents += [0] * (len(entries) - len(revents))
        ready = {fd for (fd, _), got in zip(entries, revents) if got}
        return CallResult(len(ready), revents=revents)

    def op_ioctl(self, call: Call) -> CallResult:
        reply = self._call("ioctl", call.fd, request=_name(call.arg("request"), "SIOC", IOCTLS))
        return CallResult(0, value=int(reply.get("value", 0)))

    def op_getsockname(self, call: Call) -> CallResult:
        return CallResult(0, addr=self._name(call, "getsockname", "sock"))

    def op_getpeername(self, call: Call) -> CallResult:
        return CallResult(0, addr=self._name(call, "getpeername", "peer"))

    def _name(self, call: Call, op: str, key: str) -> tuple[str, int]:
        """Ports do not change once connected: a known peer name is asked for only once."""
        assert call.fd is not None
        known = self.names.setdefault(call.fd, {})
        if key in known and "peer" in known:
            return known[key]
        addr = self._call(op, call.fd).get("addr") or {}
        found = (str(addr.get("ip", "")), int(addr.get("port", 0)))
        if found[1]:
            known[key] = found
        return found


class _Calls:
    """Threads running blocking calls, and whether each is busy (running Python, not waiting
    for a pending call's final reply)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.busy: set[int] = set()        # ids of CallHandles
        self.local = threading.local()     # the handle a call thread runs
        self.sent = threading.Event()      # the newest call thread has sent its request

    def set(self, handle: CallHandle, busy: bool) -> None:
        with self.cond:
            (self.busy.add if busy else self.busy.discard)(id(handle))
            self.cond.notify_all()

    def settle(self) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: not self.busy, SETTLE_LIMIT):
                raise CaseError(None, "a blocking call did not finish after its final reply")


class ProtocolTarget(VirtualTime, Target):
    """One adapter command as a target; `name` is what reports call it."""

    def __init__(self, name: str, argv: list[str], capabilities: Capabilities) -> None:
        super().__init__()
        self.name = name
        self.argv = argv
        self.capabilities = capabilities
        self.adapter: Adapter | None = None
        self.calls = ProtocolCalls(self._request)
        self._calls = _Calls()
        self.clock = 0.0               # virtual time, seconds: as the last advance set it
        self.next_us: int | None = None
        self.last_advance = -1.0
        self.called = False            # a call was made since the last sync or advance
        self.t0 = 0.0                  # real time: when init was answered
        self.sent = 0                  # packets written to the adapter so far

    def setup(self, script: Script) -> None:
        self.adapter = Adapter(self.argv)
        hello = self.adapter.hello
        self.virtual_time = hello.time == "virtual"
        plan = script.plan
        self.watch_sysctls(tuple(s for s in hello.sysctls if "*" not in s))
        sysctls = {k: netns.sysctl_text(v) for k, v in script.sysctl.items()
                   if hello.capabilities.has_sysctl(k)}
        six = plan.ip_version == "ipv6"
        prefix = plan.prefix_len if six else ipaddress.IPv4Network(f"0.0.0.0/{plan.netmask}").prefixlen
        init = {"ip_version": "ipv6" if six else "ipv4", "local_ip": plan.local_ip,
                "remote_ip": plan.remote_ip, "prefix_len": prefix,
                "gateway_ip": _gateway(plan.local_ip, prefix), "mtu": plan.mtu, "seed": 1,
                "sysctls": sysctls}
        if plan.offload:
            init["offload"] = True
        self.adapter.request("init", **init)
        self.t0 = time.monotonic()

    # -- calls -------------------------------------------------------------------------------
    def call(self, call: Call) -> CallResult:
        return self.calls.call(call)

    def connection(self, fd: int) -> dict[str, Any]:
        return self.calls.connection(fd)

    def _request(self, op: str, **args: Any) -> dict[str, Any]:
        """One protocol call, from the runner's thread or a blocking call's own thread."""
        assert self.adapter is not None
        handle: CallHandle | None = getattr(self._calls.local, "handle", None)
        on_final = (lambda: self._calls.set(handle, True)) if handle is not None else None
        reply = self.adapter.send(op, on_final, **args)
        self.called = True
        if handle is not None:
            self._calls.sent.set()
        first = self.adapter.result(op, reply, reply.first)
        if not reply.pending:
            return first
        if handle is None and self.virtual_time:
            raise CaseError(None, f"{self.adapter.where} answered {op} pending outside a call: "
                            "in virtual time it could never complete")
        if handle is not None:
            self._calls.set(handle, False)     # waiting for the timeline, not running
        final = self.adapter.result(op, reply, reply.final)
        if handle is not None and not self.virtual_time and isinstance(final.get("done_us"), int):
            self._calls.local.done = final["done_us"] / 1e6    # when the stack completed it
        return final

    def start_call(self, fn: Callable[[], Any]) -> CallHandle:
        handle = CallHandle()
        self._calls.set(handle, True)
        self._calls.sent.clear()

        def run() -> None:
            self._calls.local.handle = handle
            self._calls.local.done = None
            handle.run(fn)
            handle.finish(self._calls.local.done or self.now())
            self.finished.set()
            self._calls.sent.set()
            self._calls.set(handle, False)
        threading.Thread(target=run, name="blocking-call", daemon=True).start()
        # The timeline goes on once the call is under way: in virtual time once it pends or
        # is done (nothing moves meanwhile), in real time once its request is sent (as the
        # kernel target's goes on once the call's thread runs).
        if self.virtual_time:
            self._calls.settle()
        elif not self._calls.sent.wait(SETTLE_LIMIT):
            raise CaseError(None, "a blocking call did not start")
        return handle

    # -- packets and time --------------------------------------------------------------------
    def now(self) -> float:
        if self.virtual_time:
            return self.clock
        return time.monotonic() - self.t0

    def inject(self, data: bytes) -> None:
        assert self.adapter is not None
        self.adapter.packets.send(data)
        self.sent += 1
        self._step("sync", packets=self.sent)

    def _step(self, op: str, **args: Any) -> None:
        """A sync or advance: its reply means the stack is quiet; collect what it sent."""
        assert self.adapter is not None
        self.called = False
        reply = self.adapter.request(op, **args)
        self._calls.settle()
        if self.virtual_time:
            self.next_us = reply.get("next_us")
        self._collect()

    def _collect(self) -> None:
        assert self.adapter is not None
        while True:
            try:
                data = self.adapter.packets.recv(DATAGRAM_MAX, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            self.outbound.append(Captured(self.now(), data))

    def wait(self, until: float) -> Captured | None:
        return VirtualTime.wait(self, until) if self.virtual_time else self._wait_real(until)

    def _quiesce(self) -> None:
        if self.called:            # what calls made the stack send was sent at this time
            self._step("sync", packets=self.sent)

    def _next_timer(self) -> float | None:
        if self.next_us is None:
            return None
        due = max(self.next_us / 1e6, self.clock)
        return None if due == self.last_advance else due   # reported due, not fired: go on

    def _advance(self, to: float) -> None:
        # The case's clock is `to`; the adapter's goes to the microsecond at or after it
        # (float noise below 1 ns ignored: `until` is often a hair past a whole
        # microsecond). Replies during the advance happen at `to`.
        self.clock = self.last_advance = max(to, self.clock)
        self._step("advance", to_us=math.ceil(self.clock * 1e6 - 1e-3))

    def _wait_real(self, until: float) -> Captured | None:
        assert self.adapter is not None
        while True:
            self._collect()
            done, packet = self._taken()
            if done:
                return packet
            remaining = until - self.now()
            if remaining <= 0:
                return None
            select.select([self.adapter.packets], [], [], min(remaining, 0.01))

    # -- sysctls, end, report ----------------------------------------------------------------
    def apply_sysctls(self, changed: dict[str, str]) -> None:
        """Declared sysctls a shell command changed in the namespace go to the adapter."""
        assert self.adapter is not None
        for name, value in changed.items():
            self.adapter.request("sysctl", name=name, value=value)

    def teardown(self) -> None:
        if self.adapter is not None:
            self.adapter.quit()

    def environment(self) -> dict[str, str]:
        if self.adapter is None:
            return {}
        hello = self.adapter.hello
        env = {"adapter": self.adapter.where.removeprefix("adapter "),
               "stack": f"{hello.name} {hello.version}".strip(), "clock": hello.time}
        stderr = self.adapter.stderr_text()
        if stderr.strip():
            env[ADAPTER_STDERR] = stderr
        return env


def _gateway(local_ip: str, prefix: int) -> str:
    """An on-link address that is not the stack's own, for stacks that route through one."""
    network = ipaddress.ip_interface(f"{local_ip}/{prefix}").network
    local = ipaddress.ip_address(local_ip)
    for host in (local + 1, local - 1):
        if host in network and host not in (network.network_address, network.broadcast_address):
            return str(host)
    return str(local)

