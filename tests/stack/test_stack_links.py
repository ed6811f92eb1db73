"""Links and clocks: the in-memory link, the seeded impairment wrapper, and a TUN device in a
private network namespace talking to the Linux kernel in real time."""

from __future__ import annotations

import ctypes
import json
import os
import socket
import threading
import traceback

import pytest

import stack
from stack.link import ImpairedLink, MemoryLink


def test_memory_link_queues_what_is_sent_and_pairs_back_to_back() -> None:
    link = MemoryLink()
    link.send(b"one")
    assert link.drain() == [b"one"] and link.drain() == []
    a, b = MemoryLink.pair()
    a.send(b"hello")
    assert b.recv(0) == b"hello" and b.recv(0) is None


def test_virtual_clock_moves_only_when_told() -> None:
    clock = stack.VirtualClock()
    assert clock.now() == 0 and clock.advance(1.5) == 1.5
    with pytest.raises(ValueError):
        clock.set(1.0)


def impaired_run(seed: int) -> tuple[list[bytes], dict]:
    clock = stack.VirtualClock()
    sink = MemoryLink()
    link = ImpairedLink(sink, clock, seed, drop=0.2, duplicate=0.2, reorder=0.2, delay=0.01)
    for i in range(200):
        link.send(b"%d" % i)
        clock.advance(0.001)
    clock.advance(1)
    link.release()
    return sink.drain(), link.stats


def test_impaired_link_is_reproducible_from_its_seed() -> None:
    first, stats = impaired_run(5)
    assert impaired_run(5) == (first, stats)
    assert impaired_run(6)[0] != first
    assert stats["dropped"] and stats["duplicated"] and stats["reordered"]
    numbers = [int(p) for p in first]
    assert numbers != sorted(numbers)                                  # reordered
    assert len(numbers) == 200 - stats["dropped"] + stats["duplicated"]


def test_two_hosts_move_data_intact_over_a_bad_link() -> None:
    from stack.soak import Soak
    soak = Soak(seed=3, attack_rate=0.0)
    assert soak.run(2000) == []
    assert len(soak.received["b"]) > 50_000


# ---------------------------------------------------------------- TUN, real time

CLONE_NEWNET = 0x40000000


def in_private_netns(body) -> dict:
    """Run `body()` in a forked child inside a network namespace of its own; its result
    (JSON) or its traceback comes back through a pipe. Nothing touches this namespace."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 0
        try:
            os.close(read_end)
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
            out = {"result": body()}
        except BaseException:
            out, status = {"error": traceback.format_exc()}, 1
        os.write(write_end, json.dumps(out).encode())
        os._exit(status)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    os.waitpid(pid, 0)
    return json.loads(b"".join(chunks) or b'{"error": "no answer"}')


def tun_available() -> bool:
    try:
        import pytun  # noqa: F401
    except ImportError:
        return False
    return os.geteuid() == 0 and os.path.exists("/dev/net/tun")


def kernel_and_stack() -> dict:
    """Kernel at 10.9.0.1 on a TUN device; the stack at 10.9.0.2 behind it, in real time."""
    link = stack.TunLink("rfcdrill0")
    link.device.addr, link.device.netmask = "10.9.0.1", "255.255.255.0"
    link.device.up()
    host = stack.Host("10.9.0.2", stack.RealClock(), link, {"net.ipv4.tcp_timestamps": 1})
    results = {}

    def kernel_client() -> None:
        with socket.create_connection(("10.9.0.2", 7), timeout=5) as c:
            c.sendall(b"hello stack")
            results["echo"] = c.recv(100).decode()

    # Passive open on the stack, active open from the kernel.
    srv = host.socket()
    srv.bind(("", 7))
    srv.listen(1)
    srv.settimeout(5)
    client = threading.Thread(target=kernel_client)
    client.start()
    conn, _ = srv.accept()
    conn.settimeout(5)
    data = conn.recv(100)
    conn.sendall(data.upper())
    client.join(5)
    conn.close()

    # Active open from the stack to a kernel listener.
    kernel = socket.socket()
    kernel.bind(("10.9.0.1", 9))
    kernel.listen(1)
    kernel.settimeout(5)
    accepted = {}
    server = threading.Thread(target=lambda: accepted.update(sock=kernel.accept()[0]))
    server.start()
    out = host.socket()
    out.settimeout(5)
    out.connect(("10.9.0.1", 9))
    server.join(5)
    received = bytearray()

    def kernel_reader() -> None:
        peer = accepted["sock"]
        peer.settimeout(5)
        while len(received) < 100_000 and (chunk := peer.recv(65536)):
            received.extend(chunk)

    reader = threading.Thread(target=kernel_reader)
    reader.start()
    out.sendall(b"x" * 100_000)
    # The stack only runs while one of its calls waits: let it run until the kernel has all.
    host.wait(lambda: len(received) >= 100_000, 5, 11)
    reader.join(5)
    got = bytes(received)
    info = out.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    out.close()
    results.update(bulk=len(got), state=info[0], options=info[5])
    return results


@pytest.mark.skipif(not tun_available(), reason="needs root, /dev/net/tun and python-pytun")
def test_stack_talks_to_the_kernel_over_tun_in_a_private_namespace() -> None:
    outcome = in_private_netns(kernel_and_stack)
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert result["echo"] == "HELLO STACK"
    assert result["bulk"] == 100_000 and result["state"] == 1      # ESTABLISHED
    assert result["options"] & 7 == 7                              # TS, SACK, wscale agreed
