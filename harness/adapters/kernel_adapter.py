"""The Linux kernel's TCP as a target-protocol adapter (target `kernel-exec`).

The protocol's own conformance test: the suite through this adapter must give the native
`kernel` target's verdicts (it reads the kernel's expectations). The adapter runs in the
case's network namespace (rfcdrill starts it there), so its hello declares `namespace`: a
script's shell commands configure the same stack. At init it makes the TUN device the
native target makes and bridges it to the packet descriptor; calls run on real kernel
sockets, each on a thread of its own, so one that blocks is answered `pending` and finishes
later; time is real.
"""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import json
import os
import select
import socket
import struct
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from harness import netns, timewait, vnet
from harness.constants import CONSTANTS, TCP_STATES
from harness.tcpinfo import TCP_INFO_LEN, decode_tcp_info

QUICK = 0.002          # seconds a call may take and still be answered at once
LEVELS = {"SOL_SOCKET": ("SO_",), "IPPROTO_TCP": ("TCP_",), "IPPROTO_IP": ("IP_",),
          "IPPROTO_IPV6": ("IPV6_",)}
STRING_OPTIONS = ("TCP_CONGESTION", "TCP_ULP")
MSG = ("MSG_PEEK", "MSG_OOB", "MSG_DONTWAIT", "MSG_WAITALL", "MSG_MORE", "MSG_NOSIGNAL")
POLL = ("POLLIN", "POLLPRI", "POLLOUT", "POLLERR", "POLLHUP", "POLLNVAL", "POLLRDHUP")
RFC_STATE = {1: "ESTABLISHED", 2: "SYN-SENT", 3: "SYN-RECEIVED", 4: "FIN-WAIT-1", 5: "FIN-WAIT-2",
             6: "TIME-WAIT", 7: "CLOSED", 8: "CLOSE-WAIT", 9: "LAST-ACK", 10: "LISTEN", 11: "CLOSING",
             12: "SYN-RECEIVED"}
assert set(RFC_STATE) == set(TCP_STATES.values())


def hello() -> dict[str, Any]:
    sockopts = [f"{level}.{name}" for level, prefixes in LEVELS.items() for name in CONSTANTS
                if name.startswith(prefixes)]
    tcpi = list(decode_tcp_info(b""))
    return {"event": "hello", "protocol": 1, "name": "linux", "version": os.uname().release,
            "capabilities": {
                "time": "real", "ip_versions": ["ipv4", "ipv6"], "ip_options": True,
                "tcp_options": ["mss", "wscale", "sack", "timestamps", "md5", "fastopen"],
                "calls": ["socket", "bind", "listen", "accept", "connect", "read", "write",
                          "shutdown", "close", "setsockopt", "getsockopt", "fcntl", "poll",
                          "getsockname", "getpeername", "ioctl", "state"],
                "sockopts": sockopts, "sysctls": ["net.*"], "namespace": True,
                "state": ["state", "SND.WND", "RCV.WND", "cwnd", "ssthresh", "RTO", "SMSS",
                          "RMSS", *tcpi]}}


def _flags(names: list[str]) -> int:
    value = 0
    for name in names:
        value |= CONSTANTS[name]
    return value


def _address(sock: socket.socket, addr: dict[str, Any]) -> tuple:
    return (addr["ip"], addr["port"], 0, 0) if sock.family == socket.AF_INET6 else (addr["ip"], addr["port"])


def _addr(pair: tuple) -> dict[str, Any]:
    return {"ip": pair[0], "port": pair[1]}


class Bridge:
    """TUN device <-> packet descriptor; counts the packets written to the device (sync)."""

    def __init__(self, packets: socket.socket, tun: int, offload: bool) -> None:
        self.packets, self.tun, self.offload = packets, tun, offload
        self.delivered = 0
        self.cond = threading.Condition()
        threading.Thread(target=self.run, daemon=True).start()

    def run(self) -> None:
        while True:
            ready, _, _ = select.select([self.packets, self.tun], [], [])
            if self.tun in ready:
                self.outbound()
            if self.packets in ready:
                data = self.packets.recv(65535)
                if not data:
                    return
                os.write(self.tun, vnet.wrap(data) if self.offload else data)
                with self.cond:
                    self.delivered += 1
                    self.cond.notify_all()

    def outbound(self) -> None:
        try:
            while True:
                frame = os.read(self.tun, 1 << 17)
                self.packets.send(vnet.strip(frame) if self.offload else frame)
        except BlockingIOError:
            return

    def wait_for(self, count: int) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.delivered >= count)


class Adapter:
    def __init__(self, packets: socket.socket) -> None:
        self.packets = packets
        self.bridge: Bridge | None = None
        self.socks: dict[int, socket.socket] = {}
        self.peers = timewait.Peers()       # each socket's peer while it can tell it
        self.out = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=16)
        self.t0 = time.monotonic()

    def say(self, message: dict[str, Any]) -> None:
        with self.out:
            sys.stdout.write(json.dumps(message) + "\n")
            sys.stdout.flush()

    def init(self, req: dict[str, Any]) -> dict[str, Any]:
        six = req["ip_version"] == "ipv6"
        quiet = netns.QUIET_IPV6 if six else {"net.ipv6.conf.all.disable_ipv6": 1,
                                               "net.ipv6.conf.default.disable_ipv6": 1}
        for name, value in {**quiet, **req.get("sysctls", {})}.items():
            netns.write_sysctl(name, value)
        netmask = "" if six else str(ipaddress.IPv4Network(f"0.0.0.0/{req['prefix_len']}").netmask)
        offload = bool(req.get("offload"))
        tun = netns.open_tun(address=req["local_ip"], netmask=netmask or netns.TARGET_NETMASK,
                             peer=req["remote_ip"], mtu=req["mtu"], offload=offload,
                             prefix_len=req["prefix_len"])
        self.bridge = Bridge(self.packets, tun, offload)
        self.t0 = time.monotonic()       # the protocol's time 0: init answered
        return {"ok": True}

    def handle(self, req: dict[str, Any]) -> None:
        op = req["op"]
        if op == "init":
            self.say({"id": req["id"], **self.init(req)})
        elif op == "sync":
            assert self.bridge is not None
            self.bridge.wait_for(req["packets"])
            self.say({"id": req["id"], "now_us": None, "next_us": None})
        elif op == "sysctl":
            netns.write_sysctl(req["name"], req["value"])
            self.say({"id": req["id"], "ok": True})
        elif op in CALLS:
            future = self.pool.submit(self.attempt, CALLS[op], req)
            try:
                self.say({"id": req["id"], **future.result(QUICK)})
            except TimeoutError:
                self.say({"id": req["id"], "pending": True})
                future.add_done_callback(lambda done: self.say({"id": req["id"], **done.result()}))
        else:
            self.say({"id": req["id"], "error": f"unknown op {op!r}"})

    def attempt(self, call: Callable[["Adapter", dict[str, Any]], dict[str, Any] | None],
                req: dict[str, Any]) -> dict[str, Any]:
        try:
            reply = {"ret": 0, **(call(self, req) or {})}
        except OSError as exc:
            reply = {"ret": -1, "errno": errno.errorcode.get(exc.errno or 0, "EIO")}
        for fd in (req.get("fd"), reply["ret"] if req["op"] == "accept" else None):
            self.peers.note(self.socks.get(fd))
        # When it completed (done_us): the time the case sees for a call that pended is the
        # kernel's, not that of the reply's way back.
        return {**reply, "done_us": round((time.monotonic() - self.t0) * 1e6)}

    def sock(self, req: dict[str, Any]) -> socket.socket:
        if req.get("fd") not in self.socks:
            raise OSError(errno.EBADF, "no such descriptor")
        return self.socks[req["fd"]]

    def add(self, sock: socket.socket) -> int:
        self.socks[sock.fileno()] = sock
        return sock.fileno()


def _socket(a: Adapter, r: dict[str, Any]) -> dict[str, Any]:
    type_ = socket.SOCK_STREAM | (socket.SOCK_NONBLOCK if r.get("nonblock") else 0)
    return {"ret": a.add(socket.socket(CONSTANTS[r["family"]], type_, 0))}


def _accept(a: Adapter, r: dict[str, Any]) -> dict[str, Any]:
    conn, peer = a.sock(r).accept()
    return {"ret": a.add(conn), "addr": _addr(peer)}


def _connect(a: Adapter, r: dict[str, Any]) -> dict[str, Any] | None:
    sock = a.sock(r)
    err = sock.connect_ex(_address(sock, r["addr"]))
    if err:
        raise OSError(err, os.strerror(err))
    return None


def _read(a: Adapter, r: dict[str, Any]) -> dict[str, Any]:
    data = a.sock(r).recv(r["count"], _flags(r.get("flags", [])))
    return {"ret": len(data), "data": data.hex()}


def _close(a: Adapter, r: dict[str, Any]) -> None:
    a.sock(r).close()
    del a.socks[r["fd"]]


def _setsockopt(a: Adapter, r: dict[str, Any]) -> None:
    value = r["value"]
    if isinstance(value, dict) and "l_onoff" in value:
        value = struct.pack("ii", value["l_onoff"], value["l_linger"])
    elif isinstance(value, dict):
        value = bytes.fromhex(value["hex"])
    elif isinstance(value, str):
        value = value.encode()
    a.sock(r).setsockopt(CONSTANTS[r["level"]], CONSTANTS[r["name"]], value)


def _getsockopt(a: Adapter, r: dict[str, Any]) -> dict[str, Any]:
    sock, level, name = a.sock(r), CONSTANTS[r["level"]], CONSTANTS[r["name"]]
    if r["name"] == "SO_LINGER":
        onoff, linger = struct.unpack("ii", sock.getsockopt(level, name, 8))
        return {"value": {"l_onoff": onoff, "l_linger": linger}}
    if r["name"] in STRING_OPTIONS:
        return {"value": sock.getsockopt(level, name, 64).rstrip(b"\0").decode()}
    return {"value": sock.getsockopt(level, name)}


def _fcntl(a: Adapter, r: dict[str, Any]) -> dict[str, Any]:
    sock = a.sock(r)
    if "nonblock" in r:
        sock.setblocking(not r["nonblock"])
    return {"nonblock": not sock.getblocking()}


def _poll(a: Adapter, r: dict[str, Any]) -> dict[str, Any]:
    poller = select.poll()
    for entry in r["fds"]:
        poller.register(a.sock(entry).fileno(), _flags(entry["events"]))
    timeout = r["timeout_us"]
    ready = dict(poller.poll(None if timeout < 0 else timeout / 1000))
    revents = [[n for n in POLL if ready.get(a.sock(e).fileno(), 0) & CONSTANTS[n]] for e in r["fds"]]
    return {"ret": len(ready), "revents": revents}


def _ioctl(a: Adapter, r: dict[str, Any]) -> dict[str, Any]:
    raw = fcntl.ioctl(a.sock(r), CONSTANTS[r["request"]], b"\0" * 4)
    return {"value": struct.unpack("i", raw)[0]}


def _state(a: Adapter, r: dict[str, Any]) -> dict[str, Any]:
    """The connection's RFC 9293 variables from TCP_INFO, with the TIME-WAIT that Linux's
    CLOSE on the socket hides (harness/timewait.py), as the native kernel target reads it."""
    sock = a.sock(r)
    a.peers.note(sock)
    info = timewait.with_time_wait(
        decode_tcp_info(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO_LEN)),
        sock, a.peers.get(sock))
    mss = info["tcpi_snd_mss"]
    return {"state": {**info, "state": RFC_STATE[info["tcpi_state"]], "SND.WND": info["tcpi_snd_wnd"],
                      "RCV.WND": info["tcpi_rcv_wnd"], "cwnd": info["tcpi_snd_cwnd"] * mss,
                      "ssthresh": info["tcpi_snd_ssthresh"] * mss, "RTO": info["tcpi_rto"],
                      "SMSS": mss, "RMSS": info["tcpi_rcv_mss"]}}


CALLS: dict[str, Callable[[Adapter, dict[str, Any]], dict[str, Any] | None]] = {
    "socket": _socket,
    "bind": lambda a, r: a.sock(r).bind(_address(a.sock(r), r["addr"])),
    "listen": lambda a, r: a.sock(r).listen(r["backlog"]),
    "accept": _accept, "connect": _connect, "read": _read,
    "write": lambda a, r: {"ret": a.sock(r).send(bytes.fromhex(r["data"]), _flags(r.get("flags", [])))},
    "shutdown": lambda a, r: a.sock(r).shutdown(CONSTANTS[r["how"]]),
    "close": _close, "setsockopt": _setsockopt, "getsockopt": _getsockopt, "fcntl": _fcntl,
    "poll": _poll, "ioctl": _ioctl, "state": _state,
    "getsockname": lambda a, r: {"addr": _addr(a.sock(r).getsockname())},
    "getpeername": lambda a, r: {"addr": _addr(a.sock(r).getpeername())},
}


def main() -> None:
    adapter = Adapter(socket.socket(fileno=int(os.environ["RFCDRILL_PACKET_FD"])))
    adapter.say(hello())
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "quit":
            adapter.say({"id": request["id"], "ok": True})
            break
        try:
            adapter.handle(request)
        except Exception as exc:         # reported to rfcdrill as an error of this adapter
            adapter.say({"id": request["id"], "error": f"{type(exc).__name__}: {exc}"})
    sys.stdout.flush()
    os._exit(0)       # calls still blocked on their threads end with the process


if __name__ == "__main__":
    main()
