"""An adapter process and the harness's side of the target protocol's channels (PROTOCOL.md).

Theory of operation: `Adapter` starts the adapter's command with one end of a
socketpair(AF_UNIX, SOCK_SEQPACKET) inherited (its number in RFCDRILL_PACKET_FD), stdin and
stdout as the JSON-line control channel and stderr into a file (the case's report shows it).
It reads the hello, then a reader thread takes every reply line and hands it to the request
waiting for it, so that calls made from several threads (a blocking call runs on its own)
and the runner's sync/advance requests share the channel. A reply `{"pending": true}` is a
first answer; the final one comes later. A request unanswered for REPLY_LIMIT seconds, an
`error` reply or an adapter that exits mid-case is an error of the harness side (CaseError),
never a verdict on TCP.
"""

from __future__ import annotations

import json
import os
import select
import shlex
import socket
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from typing import Any, Callable

from harness.capabilities import Capabilities
from harness.errors import CaseError

PROTOCOL_VERSION = 1
HELLO_LIMIT = 10.0      # seconds an adapter may take to start and say hello
REPLY_LIMIT = 30.0      # seconds a request may stay unanswered (a pending call is answered)
QUIT_LIMIT = 2.0        # seconds an adapter has to exit after quit (PROTOCOL.md section 6)
DATAGRAM_MAX = 65535


class AdapterError(Exception):
    """The adapter cannot serve as a target: it does not start, or its hello is wrong."""


@dataclass(frozen=True)
class Hello:
    name: str
    version: str
    time: str                      # "virtual" or "real"
    capabilities: Capabilities
    sysctls: tuple[str, ...]       # the names (or `*` patterns) it applies


def _strings(caps: dict[str, Any], key: str, where: str) -> list[str]:
    value = caps.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AdapterError(f"{where}: capabilities.{key} must be a list of strings")
    return value


def parse_hello(line: bytes, where: str) -> Hello:
    """The hello line, checked (PROTOCOL.md section 1); AdapterError says what is wrong."""
    try:
        hello = json.loads(line)
    except ValueError:
        raise AdapterError(f"{where}: the first line is not JSON: {line[:200]!r}") from None
    if not isinstance(hello, dict) or hello.get("event") != "hello":
        raise AdapterError(f"{where}: the first line is not a hello: {line[:200]!r}")
    if hello.get("protocol") != PROTOCOL_VERSION:
        raise AdapterError(f"{where}: speaks protocol {hello.get('protocol')!r}; this rfcdrill "
                           f"speaks protocol {PROTOCOL_VERSION}")
    caps = hello.get("capabilities")
    if not isinstance(caps, dict):
        raise AdapterError(f"{where}: the hello has no capabilities object")
    clock = caps.get("time")
    if clock not in ("virtual", "real"):
        raise AdapterError(f"{where}: capabilities.time must be \"virtual\" or \"real\", not {clock!r}")
    versions = set(_strings(caps, "ip_versions", where))
    if not versions or not versions <= {"ipv4", "ipv6"}:
        raise AdapterError(f"{where}: capabilities.ip_versions must list ipv4 and/or ipv6")
    if {"ipv4", "ipv6"} <= versions:
        versions.add("ipv4-mapped-ipv6")
    sysctls = tuple(_strings(caps, "sysctls", where))
    fixed = caps.get("fixed_sysctls", {})
    if not isinstance(fixed, dict) or not all(isinstance(v, str) for v in fixed.values()):
        raise AdapterError(f"{where}: capabilities.fixed_sysctls must map names to strings")
    capabilities = Capabilities(
        ip_versions=frozenset(versions),
        tcp_options=frozenset(_strings(caps, "tcp_options", where)),
        ip_options=bool(caps.get("ip_options", False)),
        calls=frozenset(_strings(caps, "calls", where)),
        sockopts=frozenset(_strings(caps, "sockopts", where)),
        state=frozenset(_strings(caps, "state", where)),
        sysctls=sysctls, fixed_sysctls=dict(fixed), namespace=bool(caps.get("namespace", False)))
    return Hello(str(hello.get("name", "")), str(hello.get("version", "")), clock,
                 capabilities, sysctls)


class Reply:
    """The answers to one request: `first` is set by its first reply (final or pending),
    `final` by its final one. `on_final` runs in the reader thread just before `final` is set."""

    def __init__(self, on_final: Callable[[], None] | None) -> None:
        self.first = threading.Event()
        self.final = threading.Event()
        self.pending = False
        self.data: dict[str, Any] = {}
        self.on_final = on_final


class Adapter:
    """One running adapter process."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.where = f"adapter {shlex.join(argv)}"
        self.packets, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.stderr = tempfile.TemporaryFile()
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                pass_fds=(theirs.fileno(),),
                env={**os.environ, **(env or {}), "RFCDRILL_PACKET_FD": str(theirs.fileno())})
        except OSError as exc:
            self.packets.close()
            raise AdapterError(f"{self.where} cannot be started: {exc.strerror}") from None
        finally:
            theirs.close()
        self._lock = threading.Lock()        # one writer at a time on stdin
        self._replies: dict[int, Reply] = {}
        self._next_id = 1
        self._gone = ""                       # why the channel ended, once it has
        self.hello = parse_hello(self._first_line(), self.where)
        self._reader = threading.Thread(target=self._read, name="adapter-reader", daemon=True)
        self._reader.start()

    def _first_line(self) -> bytes:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], HELLO_LIMIT)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            self.kill()
            state = ("exited with status " + str(self.proc.returncode) if ready
                     else f"said nothing in {HELLO_LIMIT:.0f} s")
            raise AdapterError(f"{self.where} {state} instead of a hello"
                               + _tail(self.stderr_text(), ": "))
        return line

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                message = {"error": f"a line that is not JSON on stdout: {line[:200]!r}"}
            if "event" in message:
                continue            # no events but the hello are defined in protocol 1
            reply = self._replies.get(message.get("id"))
            if reply is None:
                self._gone = f"a reply to no request: {line[:200]!r}"
                break
            if message.get("pending") is True and not reply.first.is_set():
                reply.pending = True
                reply.first.set()
                continue
            reply.data = message
            del self._replies[message["id"]]
            if reply.on_final is not None:
                reply.on_final()
            reply.first.set()
            reply.final.set()
        self._gone = self._gone or f"the adapter closed its stdout (exit status {self.proc.poll()})"
        for reply in list(self._replies.values()):
            reply.data = {"error": self._gone}
            if reply.on_final is not None:
                reply.on_final()
            reply.first.set()
            reply.final.set()

    def send(self, op: str, on_final: Callable[[], None] | None = None, **args: Any) -> Reply:
        """Write a request; its replies arrive in the returned Reply."""
        reply = Reply(on_final)
        with self._lock:
            if self._gone:
                raise CaseError(None, f"{self.where}: {self._gone}" + _tail(self.stderr_text(), "; stderr: "))
            request_id = self._next_id
            self._next_id += 1
            self._replies[request_id] = reply
            line = json.dumps({"id": request_id, "op": op, **args}) + "\n"
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(line.encode())
                self.proc.stdin.flush()
            except OSError:
                raise CaseError(None, f"{self.where} has exited (status {self.proc.poll()})"
                                + _tail(self.stderr_text(), "; stderr: ")) from None
        return reply

    def request(self, op: str, **args: Any) -> dict[str, Any]:
        """Send and wait for the final reply (for requests that never pend)."""
        reply = self.send(op, **args)
        return self.result(op, reply, reply.final)

    def result(self, op: str, reply: Reply, answered: threading.Event) -> dict[str, Any]:
        """Wait for `answered` (reply.first or reply.final); an error reply raises."""
        if not answered.wait(REPLY_LIMIT):
            raise CaseError(None, f"{self.where} did not answer {op} in {REPLY_LIMIT:.0f} s")
        if "error" in reply.data:
            raise CaseError(None, f"{self.where} could not carry out {op}: {reply.data['error']}"
                            + _tail(self.stderr_text(), "; stderr: "))
        return reply.data

    def stderr_text(self, limit: int = 8192) -> str:
        """The last `limit` characters the adapter wrote on stderr."""
        self.stderr.seek(0, os.SEEK_END)
        size = self.stderr.tell()
        self.stderr.seek(max(0, size - limit))
        return self.stderr.read().decode(errors="replace")

    def quit(self) -> None:
        """Ask the adapter to exit; kill it if it has not after QUIT_LIMIT seconds."""
        try:
            if not self._gone:
                self.send("quit")
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        except (OSError, CaseError):
            pass
        try:
            self.proc.wait(QUIT_LIMIT)
        except subprocess.TimeoutExpired:
            self.kill()
        self.packets.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _tail(text: str, lead: str) -> str:
    text = text.strip()
    return lead + text[-600:] if text else ""


def probe(argv: list[str]) -> Hello:
    """Start an adapter only to read its hello (the parent's view of a target's capabilities)."""
    adapter = Adapter(argv)
    adapter.quit()
    return adapter.hello
