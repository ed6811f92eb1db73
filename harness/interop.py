"""`rfcdrill interop`: the userspace stack against the kernel's TCP, over a TUN device.

Theory of operation: each scenario runs in a process forked for it, which enters a private
network namespace (`netns.enter_private_netns`) and creates a TUN device there whose kernel
side is 192.0.2.1 and whose far side, 192.168.0.1, is the stack (`stack_host`). That process
then forks once more: the grandchild plays the kernel side with ordinary sockets, the child
runs the stack (one core each), and both report a small dict through a pipe. The stack's
socket object has the methods of `socket.socket`, so the bulk, half-close and reset programs
below run unchanged on either side; many concurrent connections are served by `serve`, an
event loop on `Host.poll` (also what `python -m stack serve` runs). Nothing is configured in
the host's namespace: when the scenario's process exits, the namespace and its device go.

Scenarios: bulk both ways with SHA-256 checks (stack client -> kernel server and the
reverse), half-close, abortive close (SO_LINGER 0 seen as ECONNRESET on the other side), many
concurrent connections to a stack echo server, and bulk transfers over a lossy, reordering
link (`stack.ImpairedLink`, seeded, in both directions).
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import random
import select
import signal
import socket
import struct
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

import stack
from harness import netns
from harness.tcpinfo import TCP_INFO_LEN, decode_tcp_info

STACK_IP, KERNEL_IP = "192.168.0.1", "192.0.2.1"
PORT = 5001
PR_SET_PDEATHSIG = 1
BIG_BUFFERS = {"net.ipv4.tcp_rmem": "4096 4194304 8388608",
               "net.ipv4.tcp_wmem": "4096 4194304 8388608"}
CHUNK = 1 << 16


# ---------------------------------------------------------------------------- plumbing

def stack_host(mtu: int = 1500, impair: dict | None = None, gso: bool = False,
               **settings) -> stack.Host:
    """In a process that has entered its private namespace: the TUN device (kernel side
    KERNEL_IP, peer STACK_IP) and a real-time stack host on it. With `gso` the stack hands the
    kernel each flight of segments as one GSO packet (stack.gso)."""
    fd = netns.open_tun("tun0", address=KERNEL_IP, netmask="255.255.255.255", peer=STACK_IP,
                        mtu=mtu, vnet_hdr=gso)
    clock = stack.RealClock()
    link = (stack.GsoTunLink if gso else stack.TunLink).from_fd(fd, mtu)
    if impair:
        link = ImpairedBothWays(link, clock, **impair)
    sysctl = dict(BIG_BUFFERS, **settings.pop("sysctl", {}))
    return stack.Host(STACK_IP, clock, link, sysctl, mtu=mtu, **settings)


class ImpairedBothWays:
    """`stack.ImpairedLink` on what the stack sends and, with another seed, on what it
    receives: drops and reordering in both directions, reproducibly."""

    def __init__(self, inner, clock, seed: int, **impairment) -> None:
        self.inner, self.clock = inner, clock
        self.inbox = stack.MemoryLink()
        self.out = stack.ImpairedLink(inner, clock, seed, **impairment)
        sink = type("Sink", (), {"send": staticmethod(self.inbox.inject)})()
        self.inc = stack.ImpairedLink(sink, clock, seed + 1, **impairment)

    def send(self, packet: bytes) -> None:
        self.out.send(packet)

    def release(self) -> None:
        self.out.release()
        self.inc.release()

    def next_deadline(self) -> float | None:
        times = [t for t in (self.out.next_deadline(), self.inc.next_deadline()) if t is not None]
        return min(times, default=None)

    def recv(self, timeout: float | None = 0.0) -> bytes | None:
        end = None if timeout is None else self.clock.now() + timeout
        while True:
            self.release()
            packet = self.inbox.recv(0)
            if packet is not None:
                return packet
            now = self.clock.now()
            limits = [t - now for t in (end, self.next_deadline()) if t is not None]
            wait = max(0.0, min(limits)) if limits else None
            packet = self.inner.recv(wait)
            if packet is not None:
                self.inc.send(packet)
            elif end is not None and self.clock.now() >= end:
                return None

    def fileno(self) -> int:
        return self.inner.fileno()


def payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _die_with_parent() -> None:
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _send_json(fd: int, obj: dict) -> None:
    data = json.dumps(obj).encode()
    os.write(fd, data)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def _run(fn: Callable[[], dict], out: int) -> None:
    """Run `fn` in this (forked) process, write its dict (or the exception) to `out`, exit."""
    code = 0
    try:
        result = fn()
    except BaseException as exc:       # noqa: BLE001 - everything goes back to the parent
        result, code = {"error": f"{type(exc).__name__}: {exc}",
                        "traceback": traceback.format_exc()}, 1
    try:
        _send_json(out, result)
    finally:
        os._exit(code)


def fork_call(fn: Callable[[], dict], timeout: float, setup: Callable[[], None] | None = None
              ) -> dict:
    """Run `fn` in a forked child (after `setup` there) and return its dict; a child that
    outlives `timeout` is killed (by its pid) and reported as timed out."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        _die_with_parent()
        if setup is not None:
            try:
                setup()
            except BaseException as exc:   # noqa: BLE001
                _send_json(wfd, {"error": f"setup: {type(exc).__name__}: {exc}"})
                os._exit(1)
        _run(fn, wfd)
    os.close(wfd)
    end = time.monotonic() + timeout
    chunks = []
    try:
        while True:
            left = end - time.monotonic()
            if left <= 0 or not select.select([rfd], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return {"error": f"timed out after {timeout:.0f} s"}
            chunk = os.read(rfd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(rfd)
    os.waitpid(pid, 0)
    try:
        return json.loads(b"".join(chunks) or b"{}") or {"error": "child said nothing"}
    except ValueError:
        return {"error": "child's report is not JSON"}


def pair(stack_side: Callable[[stack.Host, Callable[[], bool]], dict],
         kernel_side: Callable[[], dict], *, mtu: int = 1500, impair: dict | None = None,
         gso: bool = False, timeout: float = 120.0, settings: dict | None = None) -> dict:
    """In a private namespace: the stack side in one process, the kernel side in another.
    `stack_side(host, kernel_done)` gets a function that says whether the kernel side has
    finished (so a server can stop). Returns {"stack": ..., "kernel": ...}."""

    def scenario() -> dict:
        host = stack_host(mtu, impair, gso, **(settings or {}))
        kernel = {}
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(rfd)
            _die_with_parent()
            os.close(host.link.fileno())
            _run(kernel_side, wfd)
        os.close(wfd)
        try:
            mine = stack_side(host, lambda: bool(select.select([rfd], [], [], 0)[0]))
        except BaseException as exc:     # noqa: BLE001
            mine = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        # The kernel side ends on its own; keep answering its packets until it has.
        deadline = time.monotonic() + 30
        while not select.select([rfd], [], [], 0)[0] and time.monotonic() < deadline:
            host.poll([], 0.05)
        if select.select([rfd], [], [], 0)[0]:
            kernel = json.loads(_read_all(rfd) or b"{}") or {"error": "kernel side said nothing"}
        else:
            kernel = {"error": "kernel side timed out"}
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        mine["drops"] = dict(host.drops)
        return {"stack": mine, "kernel": kernel}

    return fork_call(scenario, timeout, netns.enter_private_netns)


# ---------------------------------------------------------------------------- programs
# Each runs on a kernel socket or a stack socket alike (`new` makes one).

def _recv_all(sock, digest) -> tuple[int, float]:
    """Read to EOF; the octets and the seconds from the first octet to EOF."""
    total, first = 0, None
    while data := sock.recv(CHUNK):
        first = first or time.perf_counter()
        digest.update(data)
        total += len(data)
    return total, time.perf_counter() - (first or time.perf_counter())


FIN_UNACKED = {4, 9, 11}          # Linux's FIN_WAIT1, LAST_ACK, CLOSING (tcp_states.h)


def _info(sock) -> dict[str, int]:
    return decode_tcp_info(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO_LEN))


def _until_fin_acked(sock, timeout: float = 60) -> None:
    """Wait until the peer has acknowledged our FIN, so all we sent has arrived: on a stack
    socket by running its host's loop, on a kernel socket by watching TCP_INFO."""
    done = lambda: _info(sock)["tcpi_state"] not in FIN_UNACKED     # noqa: E731
    if isinstance(sock, stack.Socket):
        sock.host.wait(done, timeout, errno.ETIMEDOUT)
        return
    end = time.monotonic() + timeout
    while not done():
        if time.monotonic() > end:
            raise TimeoutError("our FIN was not acknowledged")
        time.sleep(0.002)


def _losses(sock) -> dict:
    """The sender's repairs on `sock` (kernel or stack alike): retransmission-timer expiries
    and retransmitted segments, from TCP_INFO."""
    info = _info(sock)
    return {"rto": info["tcpi_total_rto"], "retrans": info["tcpi_total_retrans"]}


def _send(sock, data: bytes) -> None:
    view = memoryview(data)
    for start in range(0, len(view), CHUNK * 4):
        sock.sendall(view[start:start + CHUNK * 4])


def bulk_server(new, size: int, seed: int, port: int = PORT, ready=None) -> dict:
    """Accept one connection; read to EOF (checking the SHA-256), then send `size` octets of
    our own and close: the client's half-close must leave our direction open."""
    data = payload(size, seed + 1)         # made before the clock starts
    expected = _sha(size, seed)
    with new() as srv:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("", port))
        srv.listen(8)
        if ready:
            ready()
        conn, _ = srv.accept()
        with conn:
            conn.settimeout(60)
            digest = hashlib.sha256()
            got, rx_s = _recv_all(conn, digest)
            t0 = time.perf_counter()
            _send(conn, data)
            conn.shutdown(socket.SHUT_WR)
            _until_fin_acked(conn)         # the client has all of it
            tx_s = time.perf_counter() - t0
            losses = _losses(conn)
    return {"received": got, "sha_ok": digest.hexdigest() == expected, "rx_s": rx_s,
            "tx_s": tx_s, **losses}


def bulk_client(new, address: tuple[str, int], size: int, seed: int) -> dict:
    data, expected = payload(size, seed), _sha(size, seed + 1)
    with _connected(new, address, 60) as sock:
        t0 = time.perf_counter()
        _send(sock, data)
        sock.shutdown(socket.SHUT_WR)
        tx_s = time.perf_counter() - t0
        digest = hashlib.sha256()
        got, rx_s = _recv_all(sock, digest)
        losses = _losses(sock)
    return {"received": got, "sha_ok": digest.hexdigest() == expected,
            "tx_s": tx_s, "rx_s": rx_s, **losses}


def _connected(new, address: tuple[str, int], timeout: float, tries: int = 100):
    """A connected socket, retrying (with a new socket) while the listener is not up yet."""
    for _ in range(tries):
        sock = new()
        sock.settimeout(timeout)
        try:
            sock.connect(address)
            return sock
        except ConnectionRefusedError:
            sock.close()
            time.sleep(0.05)
    raise ConnectionRefusedError(f"{address} refused {tries} times")


_SHA_CACHE: dict[tuple[int, int], str] = {}


def _sha(size: int, seed: int) -> str:
    key = (size, seed)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = hashlib.sha256(payload(size, seed)).hexdigest()
    return _SHA_CACHE[key]


def reset_server(new, port: int = PORT) -> dict:
    """Accept, read the client's greeting, then abort: SO_LINGER {1, 0} and close."""
    with new() as srv:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("", port))
        srv.listen(1)
        conn, _ = srv.accept()
        conn.settimeout(10)
        greeting = conn.recv(100)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
    return {"greeting": greeting.decode(errors="replace")}


def reset_client(new, address: tuple[str, int]) -> dict:
    """Connect, greet, then expect ECONNRESET from the server's abortive close."""
    with _connected(new, address, 10) as sock:
        sock.sendall(b"hello")
        try:
            data = sock.recv(100)
            outcome = f"recv returned {data!r}"
        except ConnectionResetError:
            outcome = "ECONNRESET"
        except OSError as exc:
            outcome = f"{type(exc).__name__}: {exc}"
    return {"outcome": outcome}


# ---------------------------------------------------------------------------- echo server

@dataclass
class Served:
    accepted: int = 0
    closed: int = 0
    octets: int = 0
    peak: int = 0
    pending: dict = field(default_factory=dict)


def serve(host: stack.Host, port: int, echo: bool = True,
          stop: Callable[[Served], bool] = lambda s: False, tick: float = 0.5,
          on_tick: Callable[[Served], None] | None = None) -> Served:
    """An echo (or discard) server on the stack, driven by `Host.poll`, until `stop(stats)`."""
    import select as sel
    listener = host.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("", port))
    listener.listen(1024)
    listener.setblocking(False)
    stats = Served()
    conns: dict = {}                       # socket -> bytearray still to echo
    while not stop(stats):
        entries = [(listener, sel.POLLIN)]
        entries += [(s, sel.POLLIN | (sel.POLLOUT if out else 0)) for s, out in conns.items()]
        for sock, events in host.poll(entries, tick):
            if sock is listener:
                while True:
                    try:
                        child, _ = listener.accept()
                    except BlockingIOError:
                        break
                    child.setblocking(False)
                    conns[child] = bytearray()
                    stats.accepted += 1
                stats.peak = max(stats.peak, len(conns))
                continue
            out = conns[sock]
            try:
                if events & sel.POLLOUT and out:
                    del out[:sock.send(out)]
                if events & (sel.POLLIN | sel.POLLHUP | sel.POLLERR):
                    data = sock.recv(CHUNK)
                    if not data and not out:
                        raise ConnectionAbortedError
                    stats.octets += len(data)
                    if echo:
                        out += data
                        if out:
                            try:
                                del out[:sock.send(out)]
                            except BlockingIOError:
                                pass
            except BlockingIOError:
                pass
            except OSError:
                sock.close()
                del conns[sock]
                stats.closed += 1
        if on_tick is not None:
            on_tick(stats)
    for sock in conns:
        sock.close()
    listener.close()
    return stats


def many_clients(count: int, size: int, seed: int, address=(STACK_IP, PORT),
                 timeout: float = 60) -> dict:
    """`count` kernel clients at once: connect all, send `size` octets each, read the echo,
    check it; each stays open until every one is done (so all `count` are open together),
    then all close. Non-blocking sockets on one selector."""
    import selectors
    sel = selectors.DefaultSelector()
    data = payload(size, seed)
    states = {}
    for i in range(count):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(address)
        states[s] = {"sent": 0, "got": bytearray()}
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    done = ok = 0
    end = time.monotonic() + timeout
    while done < count and time.monotonic() < end:
        for key, ev in sel.select(1.0):
            s, st = key.fileobj, states[key.fileobj]
            try:
                if ev & selectors.EVENT_WRITE and st["sent"] < size:
                    st["sent"] += s.send(data[st["sent"]:])
                    if st["sent"] == size:
                        sel.modify(s, selectors.EVENT_READ)
                if ev & selectors.EVENT_READ:
                    chunk = s.recv(CHUNK)
                    st["got"] += chunk
                    if len(st["got"]) >= size or not chunk:
                        ok += bytes(st["got"]) == data
                        done += 1
                        sel.unregister(s)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                st["error"] = str(exc)
                done += 1
                sel.unregister(s)
    for s in states:
        s.close()
    errors = sorted({st["error"] for st in states.values() if "error" in st})
    return {"count": count, "done": done, "ok": ok, "errors": errors[:5]}


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# ---------------------------------------------------------------------------- scenarios

@dataclass
class Outcome:
    name: str
    ok: bool
    detail: str
    mbit: float | None = None


def _kernel_new():
    return socket.socket(socket.AF_INET, socket.SOCK_STREAM)


def _mbit(octets: int, seconds: float) -> float:
    return octets * 8 / max(seconds, 1e-9) / 1e6


def _errors(res: dict) -> str | None:
    for side in ("stack", "kernel"):
        if "error" in res.get(side, {}):
            return f"{side} side: {res[side]['error']}"
    return res.get("error")


def _bulk_outcome(name: str, res: dict, size: int, client: str) -> Outcome:
    err = _errors(res)
    if err:
        return Outcome(name, False, err)
    server = "kernel" if client == "stack" else "stack"
    c, s = res[client], res[server]
    ok = c["sha_ok"] and s["sha_ok"] and c["received"] == size and s["received"] == size
    up, down = _mbit(size, s["rx_s"]), _mbit(size, c["rx_s"])
    repairs = lambda side: f"{side['rto']} RTO, {side['retrans']} retransmitted"   # noqa: E731
    detail = (f"{size / 1e6:g} MB each way, SHA-256 {'ok' if ok else 'MISMATCH'}; "
              f"{client}->{server} {up:.1f} Mbit/s ({repairs(c)}), "
              f"{server}->{client} {down:.1f} Mbit/s ({repairs(s)})")
    return Outcome(name, ok, detail, min(up, down))


def bulk_stack_client(size: int, seed: int = 1, mtu: int = 1500, impair=None,
                      name: str = "bulk stack client -> kernel server", gso: bool = False
                      ) -> Outcome:
    res = pair(lambda h, _: bulk_client(h.socket, (KERNEL_IP, PORT), size, seed),
               lambda: bulk_server(_kernel_new, size, seed), mtu=mtu, impair=impair, gso=gso,
               timeout=60 + size / 1e5)
    return _bulk_outcome(name, res, size, "stack")


def bulk_kernel_client(size: int, seed: int = 2, mtu: int = 1500, impair=None,
                       name: str = "bulk kernel client -> stack server", gso: bool = False
                       ) -> Outcome:
    res = pair(lambda h, _: bulk_server(h.socket, size, seed),
               lambda: bulk_client(_kernel_new, (STACK_IP, PORT), size, seed),
               mtu=mtu, impair=impair, gso=gso, timeout=60 + size / 1e5)
    return _bulk_outcome(name, res, size, "kernel")


def half_close() -> list[Outcome]:
    """Each side shuts its writing half first; the other must see EOF and still send."""
    out = []
    for shutter in ("stack", "kernel"):
        name = f"half-close by the {shutter}"
        if shutter == "stack":
            res = pair(lambda h, _: bulk_client(h.socket, (KERNEL_IP, PORT), 100_000, 3),
                       lambda: bulk_server(_kernel_new, 100_000, 3))
        else:
            res = pair(lambda h, _: bulk_server(h.socket, 100_000, 3),
                       lambda: bulk_client(_kernel_new, (STACK_IP, PORT), 100_000, 3))
        err = _errors(res)
        if err:
            out.append(Outcome(name, False, err))
            continue
        c = res["stack" if shutter == "stack" else "kernel"]
        ok = c["sha_ok"] and c["received"] == 100_000
        out.append(Outcome(name, ok, "EOF seen, 100 kB sent back after the FIN"
                           if ok else f"client got {c['received']} octets after its FIN"))
    return out


def resets() -> list[Outcome]:
    out = []
    res = pair(lambda h, _: reset_client(h.socket, (KERNEL_IP, PORT)),
               lambda: reset_server(_kernel_new))
    out.append(_reset_outcome("RST: kernel aborts (SO_LINGER 0), stack sees ECONNRESET",
                              res, "stack"))
    res = pair(lambda h, _: reset_server(h.socket),
               lambda: reset_client(_kernel_new, (STACK_IP, PORT)))
    out.append(_reset_outcome("RST: stack aborts (SO_LINGER 0), kernel sees ECONNRESET",
                              res, "kernel"))
    return out


def _reset_outcome(name: str, res: dict, client: str) -> Outcome:
    err = _errors(res)
    if err:
        return Outcome(name, False, err)
    outcome = res[client]["outcome"]
    return Outcome(name, outcome == "ECONNRESET", outcome)


def concurrent(count: int, size: int = 4096, seed: int = 4) -> Outcome:
    def stack_side(host: stack.Host, kernel_done) -> dict:
        stats = serve(host, PORT, echo=True, stop=lambda s: s.closed >= count or kernel_done(),
                      tick=0.2)
        return {"accepted": stats.accepted, "closed": stats.closed, "peak": stats.peak,
                "rss_kib": rss_kib()}

    t0 = time.perf_counter()
    res = pair(stack_side, lambda: _delayed(lambda: many_clients(count, size, seed)),
               timeout=120)
    wall = time.perf_counter() - t0
    name = f"{count} concurrent kernel clients -> stack echo server"
    err = _errors(res)
    if err:
        return Outcome(name, False, err)
    k, s = res["kernel"], res["stack"]
    ok = k["ok"] == count
    return Outcome(name, ok, f"{k['ok']}/{count} echoed {size} B intact, peak {s['peak']} open"
                   f" on the stack, {wall:.1f} s" + (f"; errors: {k['errors']}" if k["errors"] else ""))


def _delayed(fn: Callable[[], dict], delay: float = 0.2) -> dict:
    time.sleep(delay)           # let the stack's listener come up
    return fn()


LOSSY = {"drop": 0.02, "reorder": 0.02, "delay": 0.001, "jitter": 0.001}


def scenarios(quick: bool = False) -> list[Callable[[], list[Outcome]]]:
    size = 2_000_000 if quick else 20_000_000
    lossy = 500_000 if quick else 4_000_000
    many = 50 if quick else 200
    return [
        lambda: [bulk_stack_client(size)],
        lambda: [bulk_kernel_client(size)],
        half_close,
        resets,
        lambda: [concurrent(many)],
        lambda: [bulk_stack_client(lossy, seed=5, impair=dict(LOSSY, seed=7),
                                   name="lossy (2 % loss, reordering): stack client -> kernel")],
        lambda: [bulk_kernel_client(lossy, seed=6, impair=dict(LOSSY, seed=8),
                                    name="lossy (2 % loss, reordering): kernel client -> stack")],
    ]


def main(args) -> int:
    netns.require_privileges("rfcdrill interop")
    failed = 0
    for scenario in scenarios(args.quick):
        t0 = time.perf_counter()
        for outcome in scenario():
            failed += not outcome.ok
            print(f"{'PASS' if outcome.ok else 'FAIL'}  {outcome.name}: {outcome.detail}"
                  f"  ({time.perf_counter() - t0:.1f} s)", flush=True)
    print(f"\n{'all scenarios passed' if not failed else f'{failed} scenario(s) FAILED'}")
    return 1 if failed else 0
