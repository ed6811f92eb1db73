"""`rfcdrill bench --stack`: the userspace stack's speed and memory figures.

- bulk transfer between the stack and the kernel over TUN, each direction, at MTU 65535 and
  1500 (goals: at least 1 Gbit/s and 300 Mbit/s), beside the ceiling measured in the same
  run: `bare_receiver`, a Python loop that only reads the TUN device, checks both checksums
  with stack.wire and ACKs, with no TCP state machine at all; at MTU 1500 also the stack's
  sending with each flight handed to the kernel as one GSO packet (stack/gso.py);
- 1,000 concurrent kernel clients against a stack echo listener, then a 1 GB transfer to a
  stack discard server in the same process: all served, resident memory (VmRSS, ru_maxrss)
  under 200 MB, and none gained across the gigabyte;
- the case suite against the stack in virtual time, `rfcdrill run cases --target stack`
  (goal: under 10 s).

Every figure comes from a process in a private network namespace (harness.interop).
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

from harness import interop, netns
from stack import wire
from stack.wire import ACK, FIN, SYN, IPv4, TCPSegment

GIGABYTE = 1_000_000_000


# ---------------------------------------------------------------------------- throughput

def bulk(mtu: int, size: int, gso: bool = False) -> dict[str, float]:
    """Mbit/s each way: stack client <-> kernel server, then kernel client <-> stack server;
    each direction's figure is the better of its two runs."""
    up = interop.bulk_stack_client(size, mtu=mtu, gso=gso)
    down = interop.bulk_kernel_client(size, mtu=mtu, gso=gso)
    for outcome in (up, down):
        if not outcome.ok:
            raise SystemExit(f"bench: {outcome.name} at MTU {mtu} failed: {outcome.detail}")
    return {"stack_to_kernel": max(_rate(up.detail, "stack->kernel"), _rate(down.detail, "stack->kernel")),
            "kernel_to_stack": max(_rate(up.detail, "kernel->stack"), _rate(down.detail, "kernel->stack"))}


def _rate(detail: str, label: str) -> float:
    return float(detail.split(label, 1)[1].split()[0])


def bare_receiver(host, size: int) -> dict:
    """The ceiling: accept one connection and take `size` octets with nothing but a read,
    both checksums, and an ACK for every second segment (cumulative; anything out of order
    is dropped and re-ACKed). Uses only the host's link and address."""
    link, me = host.link, host.address
    fd = link.fileno()
    rcv_nxt = peer = None
    iss, got, pending, t0 = 1000, 0, 0, None
    window = 65535                       # times 2**7 (wscale 7): 8 MiB

    def send(flags: int, options=()) -> None:
        seg = TCPSegment(interop.PORT, peer[1], iss + 1 if flags != SYN | ACK else iss,
                         rcv_nxt, flags, window, options=list(options))
        os.write(fd, wire.build(IPv4(me, peer[0]), seg))

    while True:
        packet = link.recv(5.0)
        if packet is None:
            raise TimeoutError("bare receiver: nothing for 5 s")
        ip = wire.decode_ipv4(packet)
        seg = wire.decode_tcp(ip.payload, ip.src, ip.dst)
        if not (ip.checksum_ok and seg.checksum_ok) or seg.dport != interop.PORT:
            continue
        if seg.flags & SYN:
            peer, rcv_nxt = (ip.src, seg.sport), (seg.seq + 1) & 0xFFFFFFFF
            send(SYN | ACK, [("mss", link.mtu - 40), ("nop",), ("wscale", 7)])
            continue
        if peer is None or seg.seq != rcv_nxt:
            if peer is not None and seg.payload:
                send(ACK)
            continue
        if seg.payload:
            t0 = t0 or time.perf_counter()
            rcv_nxt = (rcv_nxt + len(seg.payload)) & 0xFFFFFFFF
            got += len(seg.payload)
            pending += 1
        if seg.flags & FIN:
            rcv_nxt = (rcv_nxt + 1) & 0xFFFFFFFF
            elapsed = time.perf_counter() - t0
            send(ACK | FIN)
            return {"received": got, "seconds": elapsed}
        if pending >= 2:
            send(ACK)
            pending = 0


def _sender(size: int) -> dict:
    time.sleep(0.2)
    with socket.create_connection((interop.STACK_IP, interop.PORT), timeout=30) as sock:
        interop._send(sock, interop.payload(size, 9))
        sock.shutdown(socket.SHUT_WR)
        sock.recv(1)
    return {"sent": size}


def ceiling(mtu: int, size: int) -> float:
    """Mbit/s of the bare receiver against a kernel sender."""
    res = interop.pair(lambda h, _: bare_receiver(h, size), lambda: _sender(size), mtu=mtu,
                       timeout=120)
    err = interop._errors(res)
    if err or res["stack"]["received"] != size:
        raise SystemExit(f"bench: bare receiver at MTU {mtu}: {err or res['stack']}")
    return interop._mbit(size, res["stack"]["seconds"])


# ---------------------------------------------------------------------------- memory

def _memory_side(host, kernel_done, count: int, transfer: int) -> dict:
    stats = interop.serve(host, interop.PORT, echo=True, tick=0.2,
                          stop=lambda s: s.closed >= count or kernel_done())
    after_conns = interop.rss_kib()
    samples: list[tuple[int, int]] = []
    last = [0.0]

    def sample(s) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.25:
            last[0] = now
            samples.append((s.octets, interop.rss_kib()))

    t0 = time.perf_counter()
    progress = [0, time.monotonic()]

    def stop(s) -> bool:            # done, or the kernel side gave up and nothing moves
        if s.octets != progress[0]:
            progress[:] = [s.octets, time.monotonic()]
        return s.closed >= 1 or (kernel_done() and time.monotonic() - progress[1] > 5)

    bulk = interop.serve(host, interop.PORT + 1, echo=False, tick=0.2, on_tick=sample, stop=stop)
    elapsed = time.perf_counter() - t0
    warm = [rss for octets, rss in samples if octets >= transfer // 10] or [after_conns]
    return {"accepted": stats.accepted, "peak_open": stats.peak, "rss_after_conns_kib": after_conns,
            "octets": bulk.octets, "seconds": elapsed, "rss_warm_kib": warm[0],
            "rss_end_kib": interop.rss_kib(), "rss_max_sample_kib": max(r for _, r in samples),
            "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def _memory_clients(count: int, transfer: int) -> dict:
    time.sleep(0.3)
    many = interop.many_clients(count, 4096, 4, timeout=120)
    chunk = interop.payload(1 << 20, 5)
    # The stack listens on PORT + 1 once it has seen all `count` close: retry until then.
    with interop._connected(socket.socket, (interop.STACK_IP, interop.PORT + 1), 60, 600) as sock:
        for _ in range(transfer // len(chunk)):
            sock.sendall(chunk)
    return many


def memory(count: int, transfer: int, mtu: int = 65535) -> dict:
    res = interop.pair(lambda h, done: _memory_side(h, done, count, transfer),
                       lambda: _memory_clients(count, transfer), mtu=mtu, timeout=600)
    err = interop._errors(res)
    if err:
        raise SystemExit(f"bench: concurrency/memory run failed: {err}")
    return dict(res["stack"], ok=res["kernel"]["ok"], errors=res["kernel"]["errors"])


# ---------------------------------------------------------------------------- suite

def suite(cases: str) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "harness", "run", cases, "--target", "stack",
                           "-q"], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    last = [line for line in proc.stdout.splitlines() if " results in " in line]
    return {"wall_s": wall, "summary": last[-1] if last else proc.stderr.strip()[-200:]}


# ---------------------------------------------------------------------------- report

def main(quick: bool, cases: str | None) -> None:
    netns.require_privileges("rfcdrill bench --stack")
    size = 20_000_000 if quick else 100_000_000
    for mtu, goal in ((65535, 1000), (1500, 300)):
        octets = size if mtu > 1500 else size // 5
        figures = bulk(mtu, octets)
        bare = ceiling(mtu, octets)
        offload = "" if mtu > 1500 else (
            f" (stack->kernel as GSO packets: {bulk(mtu, octets, gso=True)['stack_to_kernel']:.0f}"
            " Mbit/s)")
        print(f"stack bulk over TUN, MTU {mtu}: stack->kernel {figures['stack_to_kernel']:.0f} "
              f"Mbit/s, kernel->stack {figures['kernel_to_stack']:.0f} Mbit/s{offload}; ceiling "
              f"(bare Python receiver: read, checksums, ACK) {bare:.0f} Mbit/s   "
              f"[goal: >= {goal} Mbit/s]", flush=True)
    count, transfer = (200, GIGABYTE // 10) if quick else (1000, GIGABYTE)
    mem = memory(count, transfer)
    mib = lambda kib: kib / 1024             # noqa: E731
    print(f"stack listener, {count} concurrent kernel clients: {mem['ok']}/{count} served "
          f"(peak {mem['peak_open']} open), VmRSS {mib(mem['rss_after_conns_kib']):.0f} MiB; then "
          f"{mem['octets'] / 1e9:.2f} GB in {mem['seconds']:.1f} s: VmRSS {mib(mem['rss_warm_kib']):.0f}"
          f" MiB after the first tenth, {mib(mem['rss_end_kib']):.0f} MiB at the end, ru_maxrss "
          f"{mib(mem['maxrss_kib']):.0f} MiB   [goal: all served, < 200 MiB, no growth]", flush=True)
    cases = cases or str(Path(__file__).resolve().parent.parent / "cases")
    if Path(cases).is_dir():
        run = suite(cases)
        print(f"case suite against the stack (virtual time), rfcdrill run {cases} --target stack: "
              f"{run['wall_s']:.1f} s wall ({run['summary']})   [goal: < 10 s]", flush=True)
