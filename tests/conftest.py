"""Shared fixtures for rfcdrill's own tests."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from harness.errors import CaseError
from harness.grammar import parse_script

pytest_plugins = ["pytester"]

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create network namespaces")

HANDSHAKE = """\
0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0    setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0    bind(3, ..., ...) = 0
+0    listen(3, 1) = 0
+0    < S 0:0(0) win 65535 <mss 1460>
+0    > S. 0:0(0) ack 1 <mss 1460>
+.01  < . 1:1(0) ack 1 win 65535
+0    accept(3, ..., ...) = 4
"""

PLAIN_SYSCTLS = {"net.ipv4.tcp_timestamps": 0, "net.ipv4.tcp_sack": 0,
                 "net.ipv4.tcp_window_scaling": 0}


def case_yaml(case_id: str, script: str, requirements: str = "rfc793:transition:LISTEN:syn",
              extra: str = "") -> str:
    """A case file's text around a script, with the sysctls that keep the SYN-ACK plain."""
    body = textwrap.indent(script, "  ")
    return (f"id: {case_id}\nrequirements: [{requirements}]\n{extra}"
            "sysctl:\n  net.ipv4.tcp_timestamps: 0\n  net.ipv4.tcp_sack: 0\n"
            f"  net.ipv4.tcp_window_scaling: 0\nscript: |\n{body}")


@pytest.fixture
def write_case(tmp_path: Path):
    def write(name: str, text: str) -> Path:
        path = tmp_path / "cases" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path
    return write

# tests/pkt holds inputs that test_pkt.py runs with its own expectations, not cases.
collect_ignore_glob = ["pkt/*"]


def located_error(text: str, where: str, message: str) -> None:
    """`text` (script lines of t.yaml) is refused with `message` at `where` (file:line:column)."""
    with pytest.raises(CaseError) as caught:
        parse_script(text + "\n", "t.yaml")
    assert str(caught.value).startswith(where + ": ") and message in str(caught.value), caught.value
