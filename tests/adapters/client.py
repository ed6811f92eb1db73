"""rfcdrill's side of target protocol v1 (harness/targets/PROTOCOL.md), as far as the
adapter tests need it, written apart from the harness's own client so that the tests check
the adapters against the protocol's text. Packets are built and read with scapy."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess

from scapy.layers.inet import IP

REPLY_TIMEOUT = 20.0   # seconds of real time before a missing reply fails the test


class AdapterClient:
    """One adapter process: JSON lines on its stdin and stdout, packets on a socketpair."""

    def __init__(self, binary: str) -> None:
        self.peer, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.proc = subprocess.Popen(
            [binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            pass_fds=[theirs.fileno()], env={**os.environ, "RFCDRILL_PACKET_FD": str(theirs.fileno())})
        theirs.close()
        self.pending_output = b""
        self.sent = 0              # packets written to the adapter
        self.last_id = 0
        self.messages: list[dict] = []    # every message read, in the order it was written
        self.hello = self.read_message()

    def read_message(self) -> dict:
        stdout = self.proc.stdout.fileno()
        while b"\n" not in self.pending_output:
            ready, _, _ = select.select([stdout], [], [], REPLY_TIMEOUT)
            assert ready, f"the adapter wrote nothing for {REPLY_TIMEOUT:.0f} s"
            chunk = os.read(stdout, 65536)
            assert chunk, f"the adapter exited: {self.proc.stderr.read().decode()}"
            self.pending_output += chunk
        line, self.pending_output = self.pending_output.split(b"\n", 1)
        message = json.loads(line)
        self.messages.append(message)
        return message

    def write_line(self, line: str) -> None:
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def raw(self, line: str) -> dict:
        """Write a line as it is; the next message the adapter writes."""
        self.write_line(line)
        return self.read_message()

    def request(self, op: str, **args) -> dict:
        """Send a request; return its first reply (a final one, `pending`, or an error)."""
        self.last_id += 1
        request_id = self.last_id
        self.write_line(json.dumps({"id": request_id, "op": op, **args}))
        while True:
            message = self.read_message()
            if message.get("id") == request_id:
                return message

    def final(self, request_id: int) -> dict | None:
        """The final reply to a request that was pending, if it has come."""
        finals = [m for m in self.messages if m.get("id") == request_id and "pending" not in m]
        return finals[-1] if finals else None

    def packets(self) -> list[IP]:
        """Every packet the stack has written since the last look."""
        out = []
        while select.select([self.peer], [], [], 0)[0]:
            out.append(IP(self.peer.recv(65536)))
        return out

    def close(self) -> None:
        """Ask the adapter to quit; it must exit with status 0."""
        if self.proc.poll() is None:
            self.request("quit")
            assert self.proc.wait(timeout=5) == 0
        self.peer.close()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            stream.close()
