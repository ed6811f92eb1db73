#!/usr/bin/env python3
"""A target-protocol adapter for rfcdrill's own userspace stack (the package `stack/`).

The worked example of harness/targets/PROTOCOL.md, written as the author of any stack would
write one: it knows the documented protocol and its own stack, and nothing of rfcdrill's
harness. Run it with `rfcdrill run cases --target exec:"python3 examples/stack_adapter.py"`.

The stack runs in virtual time: its clock moves only on `advance`. Its sockets never wait; a
call that would block on a blocking descriptor is answered `pending` and tried again after
every packet and every timer, until it completes.
"""

import errno
import json
import math
import os
import socket
import struct
import sys

from stack import Host, MemoryLink, VirtualClock
from stack.config import SYSCTL_NAMES

WOULD_BLOCK = {errno.EAGAIN, errno.EINPROGRESS, errno.EALREADY}
LEVELS = {"SOL_SOCKET": socket.SOL_SOCKET, "IPPROTO_TCP": socket.IPPROTO_TCP}
SOCKOPTS = ["SOL_SOCKET." + n for n in ("SO_KEEPALIVE", "SO_LINGER", "SO_RCVBUF", "SO_SNDBUF",
                                         "SO_REUSEADDR", "SO_OOBINLINE", "SO_ERROR", "SO_TYPE",
                                         "SO_ACCEPTCONN")]
SOCKOPTS += ["IPPROTO_TCP." + n for n in ("TCP_NODELAY", "TCP_MAXSEG", "TCP_CORK", "TCP_QUICKACK",
                                           "TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT",
                                           "TCP_USER_TIMEOUT")]
POLL = {"POLLIN": 0x1, "POLLPRI": 0x2, "POLLOUT": 0x4, "POLLERR": 0x8, "POLLHUP": 0x10,
        "POLLNVAL": 0x20, "POLLRDHUP": 0x2000}
IOCTLS = {"SIOCINQ": 0x541B, "SIOCOUTQ": 0x5411, "SIOCATMARK": 0x8905}
HELLO = {"event": "hello", "protocol": 1, "name": "rfcdrill-stack", "version": "example",
         "capabilities": {
             "time": "virtual", "ip_versions": ["ipv4"], "ip_options": True,
             "tcp_options": ["mss", "wscale", "sack", "timestamps"],
             "calls": ["socket", "bind", "listen", "accept", "connect", "read", "write", "shutdown",
                       "close", "setsockopt", "getsockopt", "fcntl", "poll", "getsockname",
                       "getpeername", "ioctl", "state"],
             "sockopts": SOCKOPTS, "sysctls": list(SYSCTL_NAMES),
             "state": ["state", "SND.UNA", "SND.NXT", "RCV.NXT", "ISS", "IRS", "SND.WND",
                       "RCV.WND", "cwnd", "ssthresh", "RTO", "SMSS", "RMSS"]}}


def say(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def flags(names):
    value = 0
    for name in names:
        value |= getattr(socket, name, 0)
    return value


class Adapter:
    def __init__(self, packets):
        self.packets, self.received = packets, 0
        self.clock, self.link, self.host = VirtualClock(), MemoryLink(), None
        self.sockets, self.next_fd, self.sysctls = {}, 3, {}
        self.waiting = []           # [request id, call] of each pending call

    # -- time and packets --
    def sync(self, count):
        while self.received < count:
            self.host.receive(self.packets.recv(65535))
            self.received += 1
            self.progress()
        return self.now()

    def advance(self, to_us):
        while True:     # each timer at its own due time, in order
            due = self.next_due()
            if due is None or due > to_us:
                break
            deadline = self.host.next_deadline()     # in seconds: the stack's own figure
            at = deadline if deadline is not None and microseconds(deadline) == due else due / 1e6
            self.clock.set(max(at, self.clock.now()))
            self.host.run_timers()
            self.progress()
        self.clock.set(max(to_us / 1e6, self.clock.now()))
        self.progress()
        return self.now()

    def next_due(self):
        deadline = self.host.next_deadline()
        polls = [w[1].deadline for w in self.waiting if hasattr(w[1], "deadline")]
        dues = [microseconds(deadline)] if deadline is not None else []
        return min(dues + polls) if dues or polls else None

    def now(self):
        return {"now_us": round(self.clock.now() * 1e6), "next_us": self.next_due()}

    def progress(self):
        """Retry the pending calls, then send what the stack sent."""
        for entry in list(self.waiting):
            reply, _ = self.attempt(entry[1], retry=True)
            if reply is not None:
                self.waiting.remove(entry)
                say({"id": entry[0], **reply})
        for packet in self.link.drain():
            self.packets.send(packet)

    def attempt(self, call, retry=False):
        """(the reply, None), or (None, the errno name) if the call would block."""
        try:
            return {"ret": 0, **(call() or {})}, None
        except OSError as exc:
            if retry and exc.errno == errno.EISCONN:
                return {"ret": 0}, None         # a blocking connect that completed
            name = errno.errorcode[exc.errno]
            if exc.errno in WOULD_BLOCK:
                return None, name
            return {"ret": -1, "errno": name}, None

    # -- requests --
    def handle(self, req):
        op, fd = req["op"], req.get("fd")
        sock = self.sockets.get(fd)
        if op == "init":
            self.sysctls = dict(req.get("sysctls", {}))
            prefix = req["prefix_len"]
            netmask = socket.inet_ntoa(struct.pack("!I", (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF))
            self.host = Host(req["local_ip"], self.clock, self.link, self.sysctls,
                             netmask=netmask, mtu=req["mtu"])
            return {"ok": True}
        if op == "sync":
            return self.sync(req["packets"])
        if op == "advance":
            return self.advance(req["to_us"])
        if op == "sysctl":
            self.sysctls[req["name"]] = req["value"]
            self.host.configure(self.sysctls)
            return {"ok": True}
        if op == "socket":
            new = self.host.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
            new.setblocking(not req.get("nonblock"))
            return {"ret": self.add(new)}
        if op not in CALLS:
            return {"error": f"unknown op {op}"}
        if sock is None and op != "poll":
            return {"ret": -1, "errno": "EBADF"}
        call = CALLS[op](self, sock, req)
        reply, blocked = self.attempt(call)
        if reply is None and (op == "poll" or sock.getblocking()):
            self.waiting.append([req["id"], call])
            return {"pending": True}
        return reply or {"ret": -1, "errno": blocked}

    def add(self, sock):
        self.sockets[self.next_fd] = sock
        self.next_fd += 1
        return self.next_fd - 1

    def poll(self, req):
        entries = [(self.sockets[e["fd"]], flags_of(e["events"])) for e in req["fds"]]
        timeout = req["timeout_us"]
        deadline = None if timeout < 0 else round(self.clock.now() * 1e6) + timeout

        def call():
            ready = dict((id(s), ev) for s, ev in self.host.poll(entries, 0))
            if not ready and deadline is not None and self.clock.now() * 1e6 < deadline:
                raise OSError(errno.EAGAIN, "not yet")
            if not ready and deadline is None:
                raise OSError(errno.EAGAIN, "not yet")
            revents = [[n for n, bit in POLL.items() if ready.get(id(s), 0) & bit] for s, _ in entries]
            return {"ret": len(ready), "revents": revents}
        call.deadline = deadline
        return call


def microseconds(seconds):
    """A due time in whole microseconds, not before it (float noise below 1 ns ignored)."""
    return math.ceil(seconds * 1e6 - 1e-3)


def flags_of(names):
    value = 0
    for name in names:
        value |= POLL[name]
    return value


def getsockopt(sock, req):
    level, name = LEVELS[req["level"]], getattr(socket, req["name"])
    if req["name"] == "SO_LINGER":
        onoff, linger = struct.unpack("ii", sock.getsockopt(level, name, 8))
        return {"value": {"l_onoff": onoff, "l_linger": linger}}
    return {"value": sock.getsockopt(level, name)}


def setsockopt(sock, req):
    value = req["value"]
    if isinstance(value, dict):
        value = struct.pack("ii", value["l_onoff"], value["l_linger"])
    sock.setsockopt(LEVELS[req["level"]], getattr(socket, req["name"]), value)


def state(sock):
    conn = sock.conn
    if conn is None:
        return {"state": {"state": "LISTEN" if sock.listening else "CLOSED"}}
    return {"state": {"state": conn.state.value, "SND.UNA": conn.snd_una, "SND.NXT": conn.snd_nxt,
                      "RCV.NXT": conn.rcv_nxt, "ISS": conn.iss, "IRS": conn.irs,
                      "SND.WND": conn.snd_wnd, "RCV.WND": conn.rcv_wnd, "cwnd": conn.cc.cwnd,
                      "ssthresh": conn.cc.ssthresh, "RTO": round(conn.rtt.rto * 1e6),
                      "SMSS": conn.mss, "RMSS": conn.rcv_mss}}


def address(pair):
    return {"addr": {"ip": pair[0], "port": pair[1]}}


CALLS = {   # op -> (adapter, socket, request) -> a call to try now and again later
    "bind": lambda a, s, r: lambda: s.bind((r["addr"]["ip"], r["addr"]["port"])),
    "listen": lambda a, s, r: lambda: s.listen(r["backlog"]),
    "accept": lambda a, s, r: lambda: (lambda new: {"ret": a.add(new[0]), **address(new[1])})(s.accept()),
    "connect": lambda a, s, r: lambda: s.connect((r["addr"]["ip"], r["addr"]["port"])),
    "read": lambda a, s, r: lambda: (lambda d: {"ret": len(d), "data": d.hex()})(
        s.recv(r["count"], flags(r.get("flags", [])))),
    "write": lambda a, s, r: lambda: {"ret": s.send(bytes.fromhex(r["data"]), flags(r.get("flags", [])))},
    "shutdown": lambda a, s, r: lambda: s.shutdown(getattr(socket, r["how"])),
    "close": lambda a, s, r: lambda: (a.sockets.pop(r["fd"]), s.close()) and None,
    "setsockopt": lambda a, s, r: lambda: setsockopt(s, r),
    "getsockopt": lambda a, s, r: lambda: getsockopt(s, r),
    "fcntl": lambda a, s, r: lambda: (s.setblocking(not r["nonblock"]) if "nonblock" in r else None,
                                      {"nonblock": not s.getblocking()})[1],
    "poll": lambda a, s, r: a.poll(r),
    "getsockname": lambda a, s, r: lambda: address(s.getsockname()),
    "getpeername": lambda a, s, r: lambda: address(s.getpeername()),
    "ioctl": lambda a, s, r: lambda: {"value": s.ioctl(IOCTLS[r["request"]])},
    "state": lambda a, s, r: lambda: state(s),
}


def main():
    packets = socket.socket(fileno=int(os.environ["RFCDRILL_PACKET_FD"]))
    adapter = Adapter(packets)
    say(HELLO)
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "quit":
            say({"id": request["id"], "ok": True})
            break
        say({"id": request["id"], **adapter.handle(request)})
        adapter.progress()     # a call may have made the stack send


if __name__ == "__main__":
    main()
