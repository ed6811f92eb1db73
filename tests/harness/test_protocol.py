"""The protocol target against a scripted fake adapter: hello and its refusal, unavailable
targets, pending calls, sync/advance in virtual time, not-applicable. No root, no kernel:
the runner plays the fake adapter in this process."""

from __future__ import annotations

import dataclasses
import errno
import json
import socket
import struct
import sys
from pathlib import Path

import pytest

from harness.calls import Call
from harness.capabilities import missing, needs
from harness.constants import CONSTANTS
from harness.errors import CaseError
from harness.execute import Job
from harness.loader import load
from harness.record import ADAPTER_STDERR
from harness.report import junit, panel
from harness.result import NOT_APPLICABLE, PASS, SKIPPED, Result, Step
from harness.runner import RunFailure, Runner
from harness.suite import skipped_result
from harness.targets import registry
from harness.targets.adapter import Adapter, AdapterError
from harness.targets.protocol import ProtocolCalls, ProtocolTarget

FAKE = Path(__file__).with_name("fake_adapter.py")
LISTEN = """\
0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0    bind(3, ..., ...) = 0
+0    listen(3, 1) = 0
"""


def command(mode: str, log: Path | None = None) -> list[str]:
    return [sys.executable, str(FAKE), mode] + ([str(log)] if log else [])


def exec_name(mode: str, log: Path | None = None) -> str:
    return "exec:" + " ".join(command(mode, log))


def play(tmp_path: Path, script: str, mode: str = "virtual") -> tuple[list[Step], Runner, list[dict]]:
    """Run `script` against the fake adapter: the steps, the runner, the requests it got."""
    log = tmp_path / "requests.log"
    case = tmp_path / "case.pkt"
    case.write_text(script)
    target = ProtocolTarget("fake", command(mode, log), registry.resolve(exec_name(mode)).capabilities)
    target.setup(load(str(case)))
    steps: list[Step] = []
    runner = Runner(load(str(case)), target, on_step=steps.append)
    try:
        runner.run()
    finally:
        target.teardown()
    return steps, runner, [json.loads(line) for line in log.read_text().splitlines()]


def test_the_hello_gives_the_adapters_capabilities():
    spec = registry.resolve(exec_name("virtual"))
    assert not spec.unavailable
    assert spec.hello.name == "fake" and spec.hello.time == "virtual"
    assert spec.capabilities.ip_versions == {"ipv4"} and spec.capabilities.tcp_options == {"mss"}


@pytest.mark.parametrize("mode, reason", [
    ("version2", "speaks protocol 2; this rfcdrill speaks protocol 1"),
    ("mute", "exited with status 0 instead of a hello"),
    ("garbage", "the first line is not JSON"),
])
def test_an_adapter_with_a_wrong_hello_is_unavailable_with_the_reason(mode, reason):
    spec = registry.resolve(exec_name(mode))
    assert reason in spec.unavailable


def test_a_missing_adapter_is_unavailable_and_its_cases_say_so(tmp_path):
    name = "exec:/nonexistent/adapter --flag"
    spec = registry.resolve(name)
    assert spec.unavailable == "adapter /nonexistent/adapter --flag cannot be started: No such file or directory"
    case = tmp_path / "case.pkt"
    case.write_text(LISTEN)
    result = skipped_result(Job(str(case), name, load(str(case)), case_id="case"))
    assert result.verdict == SKIPPED and result.expectation.startswith(f"the {name} target is unavailable")


def test_a_shipped_adapter_whose_build_fails_is_unavailable(tmp_path, monkeypatch):
    (tmp_path / "build.sh").write_text("echo 'liblwip-dev is not installed' >&2; exit 3\n")
    (tmp_path / "good.sh").write_text(f"echo building; echo {sys.executable}\n")
    monkeypatch.setattr(registry, "ROOT", tmp_path)
    monkeypatch.setitem(registry.ADAPTERS, "broken", registry.Adapter(build="build.sh"))
    monkeypatch.setitem(registry.ADAPTERS, "absent", registry.Adapter(build="nothing.sh"))
    assert registry._build("build.sh") == "build.sh failed (exit 3): liblwip-dev is not installed"
    assert registry._build("good.sh") == [sys.executable]
    assert registry.resolve("absent").unavailable == "nothing.sh does not exist (this adapter is not part of this checkout)"
    registry.resolve.cache_clear()


def test_a_registered_name_runs_its_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rfcdrill-targets.toml").write_text(
        f'[targets.mystack]\ncommand = "{sys.executable} {FAKE} virtual"\nexpectations = "kernel"\n')
    registry._configured.cache_clear()
    try:
        spec = registry.resolve("mystack")
        assert spec.hello.name == "fake" and spec.expectations_name == "kernel"
        assert "mystack" in registry.known_names()
    finally:
        registry._configured.cache_clear()
        registry.resolve.cache_clear()


def test_an_unknown_name_is_a_clear_error():
    with pytest.raises(Exception, match="unknown target 'nosuch'; known: .*kernel.*exec:COMMAND"):
        registry.resolve("nosuch")


def test_a_blocking_call_pends_and_returns_when_virtual_time_reaches_it(tmp_path):
    steps, _, requests = play(tmp_path, LISTEN + "+0...1.0 accept(3, ..., ...) = 4\n")
    assert [(s.time, s.note) for s in steps if s.line == 4] == [(0.0, "started (blocking)"), (1.0, "= 4")]
    advances = [r["to_us"] for r in requests if r["op"] == "advance"]
    assert advances[-1] == 1_000_000 and max(advances) == 1_000_000   # to the adapter's next timer, not past


def test_a_blocking_call_returning_late_fails_with_its_virtual_time(tmp_path):
    with pytest.raises(RunFailure, match=r"blocking call (returned at 2\.000000|has not returned)"):
        play(tmp_path, LISTEN + "+0...1.0 accept(3, ..., ...) = 4\n", mode="late")


def test_a_call_that_pends_without_saying_so_fails_at_once(tmp_path):
    with pytest.raises(RunFailure, match="the call blocked"):
        play(tmp_path, LISTEN + "+0 accept(3, ..., ...) = 4\n")


def test_sync_then_advance_to_the_adapters_timer_gives_the_segment_its_virtual_time(tmp_path):
    script = LISTEN + "+0 < S 0:0(0) win 1000 <mss 1460>\n+.3 > S. 0:0(0) ack 1 win 1000 <mss 1460>\n"
    _, runner, requests = play(tmp_path, script)
    ops = [r["op"] for r in requests]
    assert ops[ops.index("sync"):ops.index("sync") + 2] == ["sync", "advance"]
    assert requests[ops.index("sync")]["packets"] == 1
    assert [r["to_us"] for r in requests if r["op"] == "advance"][0] == 300_000
    out = [p for p in runner.packets if p.direction == "out"]
    assert [p.time for p in out] == [0.3]


def test_a_segment_at_the_wrong_virtual_time_fails(tmp_path):
    script = LISTEN + "+0 < S 0:0(0) win 1000 <mss 1460>\n+.5 > S. 0:0(0) ack 1 win 1000 <mss 1460>\n"
    with pytest.raises(RunFailure, match="outbound segment early: at 0.300000"):
        play(tmp_path, script)


def test_state_assertions_read_the_rfc_state(tmp_path):
    play(tmp_path, LISTEN + "+0 assert 3 state LISTEN\n")
    with pytest.raises(RunFailure, match="fd 3 is in state LISTEN, expected ESTABLISHED"):
        play(tmp_path, LISTEN + "+0 assert 3 state ESTABLISHED\n")


def test_the_adapters_stderr_goes_into_the_report_and_it_exits_on_quit(tmp_path):
    case = tmp_path / "case.pkt"
    case.write_text(LISTEN)
    target = ProtocolTarget("fake", command("virtual"), registry.resolve(exec_name("virtual")).capabilities)
    target.setup(load(str(case)))
    target.teardown()
    assert target.adapter.proc.returncode == 0
    env = target.environment()
    assert env[ADAPTER_STDERR] == "fake adapter ready\n"
    assert env["stack"] == "fake 0" and env["clock"] == "virtual"
    html = panel._run(Result("c", str(case), "fake", PASS, environment=env), False)
    assert "<pre>fake adapter ready\n</pre>" in html


def test_an_unstartable_adapter_is_an_adapter_error():
    with pytest.raises(AdapterError, match="cannot be started"):
        Adapter(["/nonexistent"])


def test_a_case_needing_what_the_adapter_lacks_is_not_applicable_and_says_what(tmp_path):
    case = tmp_path / "sack.pkt"
    case.write_text(LISTEN + "+0 < S 0:0(0) win 1000 <mss 1460,sackOK>\n"
                    "+0 > S. 0:0(0) ack 1 <mss 1460,sackOK>\n"
                    "+0 setsockopt(3, IPPROTO_TCP, TCP_NODELAY, [1], 4) = 0\n"
                    "+0 assert 3 tcpi_snd_cwnd == 10\n")
    name = exec_name("virtual")
    result = skipped_result(Job(str(case), name, load(str(case)), case_id="sack"))
    assert result.verdict == NOT_APPLICABLE
    assert result.expectation == ("needs TCP option sack; call setsockopt; socket option "
                                  "IPPROTO_TCP.TCP_NODELAY; tcpi_snd_cwnd (state cwnd, SMSS)")
    xml = junit.render([result]).decode()
    assert f'<skipped message="not-applicable: {result.expectation}"' in xml


def test_needs_are_read_off_the_script(tmp_path):
    case = tmp_path / "case.pkt"
    case.write_text("`sysctl -w net.ipv4.tcp_sack=0`\n" + LISTEN
                    + "+0 < [ipopt 0x01010100] S 0:0(0) win 1000 <mss 1460,sackOK,TS val 1 ecr 0>\n"
                    "+0 > S. 0:0(0) ack 1 <mss 1460,TS val 1 ecr 1>\n"
                    "+0 recv(3, ..., 10, 0) = 0\n+0 %{ assert tcpi_rtt > 0 }%\n`ip route show`\n")
    need = needs(load(str(case)))
    assert need.ip_options and need.tcp_options == {"mss", "timestamps"}   # sackOK only offered
    assert need.calls == {"socket", "bind", "listen", "read"}
    assert need.sysctls == {"net.ipv4.tcp_sack": "0"} and need.shell == ["ip route show"]
    assert need.tcpi == {"tcpi_rtt"}
    lacking = missing(load(str(case)), registry.resolve(exec_name("virtual")).capabilities)
    assert lacking == ["IP options", "TCP option timestamps", "call read", "tcpi_rtt",
                       "shell commands on the case's network namespace ('ip route show')"]
    # tcp_sack=0 is what a stack without SACK does anyway; =1 it cannot do


def test_a_sysctl_the_stack_behaves_as_anyway_is_no_need(tmp_path):
    case = tmp_path / "case.yaml"
    case.write_text("id: c\nrequirements: [rfc793:transition:LISTEN:syn]\nsysctl:\n"
                    "  net.ipv4.tcp_sack: 1\n  net.ipv4.tcp_timestamps: 0\n  net.ipv4.tcp_ecn: 0\n"
                    "script: |\n  0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    caps = registry.resolve(exec_name("virtual")).capabilities      # tcp_options: mss only
    assert missing(load(str(case)), caps) == ["sysctl net.ipv4.tcp_ecn", "sysctl net.ipv4.tcp_sack"]
    fixed = dataclasses.replace(caps, fixed_sysctls={"net.ipv4.tcp_ecn": "0"})
    assert missing(load(str(case)), fixed) == ["sysctl net.ipv4.tcp_sack"]


class Recorded:
    """A protocol request function that answers from a table and keeps what it was sent."""

    def __init__(self, replies: dict[str, dict]) -> None:
        self.replies, self.sent = replies, []

    def __call__(self, op: str, **args) -> dict:
        self.sent.append({"op": op, **args})
        return self.replies.get(op, {"ret": 0})


def test_a_call_is_one_protocol_request_and_its_reply_a_result():
    request = Recorded({"write": {"ret": 2}, "read": {"ret": 3, "data": "616263"},
                        "connect": {"ret": -1, "errno": "ECONNREFUSED"},
                        "poll": {"ret": 1, "revents": [[], ["POLLIN", "POLLOUT"]]},
                        "getsockopt": {"ret": 0, "value": {"l_onoff": 1, "l_linger": 0}}})
    calls = ProtocolCalls(request)
    flags = CONSTANTS["MSG_DONTWAIT"] | CONSTANTS["MSG_MORE"]
    assert calls.call(Call("write", 5, {"data": b"hi", "count": 2, "flags": flags})).ret == 2
    assert request.sent[-1] == {"op": "write", "fd": 5, "data": "6869",
                                "flags": ["MSG_DONTWAIT", "MSG_MORE"]}
    read = calls.call(Call("read", 5, {"count": 10, "flags": 0}))
    assert (read.ret, read.data) == (3, b"abc")
    refused = calls.call(Call("connect", 5, {"addr": ("192.0.2.1", 8080)}))
    assert (refused.ret, refused.err) == (-1, errno.ECONNREFUSED)
    assert request.sent[-1]["addr"] == {"ip": "192.0.2.1", "port": 8080}
    polled = calls.call(Call("poll", None, {"entries": [(5, 1), (6, 4)], "timeout": 0.25}))
    assert (polled.ret, polled.revents) == (1, [0, CONSTANTS["POLLIN"] | CONSTANTS["POLLOUT"]])
    assert request.sent[-1]["timeout_us"] == 250000
    linger = calls.call(Call("getsockopt", 5, {"level": socket.SOL_SOCKET,
                                               "name": socket.SO_LINGER, "size": 8}))
    assert linger.value == struct.pack("ii", 1, 0)


def test_what_the_protocol_cannot_carry_is_a_case_error():
    calls = ProtocolCalls(Recorded({}))
    with pytest.raises(CaseError, match="NULL buffer"):
        calls.call(Call("read", 5, {"count": 10, "flags": 0, "null": True}))
    with pytest.raises(CaseError, match=r"pipe\(\) is not a call of the target protocol"):
        calls.call(Call("pipe"))
