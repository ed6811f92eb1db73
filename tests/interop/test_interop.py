"""`rfcdrill interop`, small: every scenario, the stack against kernel TCP over TUN, each in a
private network namespace (so: root only)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from harness import interop

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/net/tun"),
                                reason="needs root and /dev/net/tun for network namespaces")

SIZE = 1_000_000


def _check(outcome: interop.Outcome) -> None:
    assert outcome.ok, f"{outcome.name}: {outcome.detail}"


def test_bulk_stack_client_to_kernel_server():
    _check(interop.bulk_stack_client(SIZE))


def test_bulk_kernel_client_to_stack_server():
    _check(interop.bulk_kernel_client(SIZE))


def test_bulk_with_segmentation_offload():
    # the stack hands each flight to the kernel as one GSO packet (stack/gso.py)
    _check(interop.bulk_stack_client(SIZE, gso=True))


def test_bulk_at_64k_mtu():
    _check(interop.bulk_stack_client(SIZE, mtu=65535))


def test_half_close_both_ways():
    for outcome in interop.half_close():
        _check(outcome)


def test_abortive_close_is_econnreset_both_ways():
    for outcome in interop.resets():
        _check(outcome)


def test_concurrent_connections():
    _check(interop.concurrent(50))


@pytest.mark.parametrize("direction", ["stack client", "kernel client"])
def test_lossy_reordering_link(direction):
    impair = dict(interop.LOSSY, seed=11)
    run = interop.bulk_stack_client if direction == "stack client" else interop.bulk_kernel_client
    _check(run(200_000, impair=impair))


def test_a_failing_scenario_fails_the_run(capsys, monkeypatch):
    monkeypatch.setattr(interop, "scenarios",
                        lambda quick: [lambda: [interop.Outcome("x", False, "forced")]])
    assert interop.main(type("Args", (), {"quick": True})()) == 1
    assert "FAIL  x: forced" in capsys.readouterr().out


@pytest.mark.skipif(shutil.which("nsenter") is None, reason="needs nsenter (util-linux)")
def test_serve_echo_reached_through_the_printed_nsenter_command():
    server = subprocess.Popen([sys.executable, "-m", "stack", "serve", "--echo", "--seconds", "20"],
                              stdout=subprocess.PIPE, text=True)
    try:
        lines = [server.stdout.readline() for _ in range(2)]
        command = re.search(r"sudo (nsenter --net=\S+) nc", lines[1]).group(1).split()
        talk = ("import socket; s = socket.create_connection(('192.168.0.1', 7), timeout=5); "
                "s.sendall(b'ping-pong'); print(s.recv(100).decode())")
        out = subprocess.run(command + [sys.executable, "-c", talk], capture_output=True,
                             text=True, timeout=15)
        assert out.stdout.strip() == "ping-pong", out.stderr
    finally:
        server.terminate()
        server.wait(10)
