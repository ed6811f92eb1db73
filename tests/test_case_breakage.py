"""The cases catch the breakage they are written against.

A case that passes on a broken target is worse than no case. Each test here takes one real
case (most from cases/rfc793/), checks that it passes as written (the control), then breaks
the rule it checks and requires the runner to FAIL it at the right line and for the right
reason:

- by changing the target's behaviour with a sysctl in the case's own namespace (the kernel
  then acts as a target that gets the rule wrong), or by replacing a part of the project's
  stack with one that breaks the rule (the stack target runs in a fork of the test), or
- by making the case's expectation deliberately wrong (an edited Script, or an edited copy of
  the case file in tmp_path): the kernel's correct answer must then be reported as a mismatch
  of exactly the edited field.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from harness.execute import run_one
from harness.loader import load
from harness.model import PacketEvent, PythonEvent, Script, TimeSpec
from harness.result import Result
from harness.tcp import ACK, RST
from stack.isn import IsnGenerator

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root to create network namespaces")

CASES = Path(__file__).resolve().parent.parent / "cases" / "rfc793"
RFC1122, RFC9293 = CASES.parent / "rfc1122", CASES.parent / "rfc9293"


def event(script: Script, text: str) -> PacketEvent:
    """The one packet line of the script whose text contains `text`."""
    found = [e for e in script.events if isinstance(e, PacketEvent) and text in e.text]
    assert len(found) == 1, f"{text!r} matches {len(found)} lines of {script.path}"
    return found[0]


def reset_either(script: Script) -> PacketEvent:
    """The one line of the script expecting a reset with or without the ACK bit, `R|R.`
    (RFC 9293 3.5.2's <SEQ=SEG.ACK><CTL=RST> forbids neither)."""
    found = [e for e in script.events if isinstance(e, PacketEvent)
             and (e.flags, e.flag_alternatives) == (RST, (RST | ACK,))]
    assert len(found) == 1, f"{len(found)} reset alternatives in {script.path}"
    return found[0]


def run(script: Script) -> Result:
    return run_one(script, "kernel")


def control(path: str | Path, target: str = "kernel") -> None:
    """The case as written passes on the target (the kernel unless told)."""
    result = run_one(load(CASES / path), target)
    assert result.verdict == "pass", result.failure and result.failure.render(str(path))


def failed_at(result: Result, line: int) -> str:
    """Assert the run failed at `line` and return the failure's text for further checks."""
    assert result.verdict == "fail", f"broken case did not fail: {result.verdict}"
    text = result.failure.render(result.path)
    assert result.failure.line == line, text
    return text


def diff_fields(result: Result) -> set[str]:
    return {d["field"] for d in result.failure.diff}


# -- the target's behaviour changed by a sysctl ------------------------------------------------

def test_syn_backoff_fails_with_linear_timeouts():
    """rfc1122 4.2.3.1 exponential backoff: with Linux's linear SYN timeouts back on, the
    second SYN retransmission comes 1 s after the first, not twice that, and the case must
    say 'early' at its first `x2` line."""
    path = "retransmission/syn-backoff-exponential.yaml"
    control(path)
    script = load(CASES / path)
    script.sysctl["net.ipv4.tcp_syn_linear_timeouts"] = 4
    doubled = [e for e in script.events if isinstance(e, PacketEvent) and e.time.kind == "ratio"]
    assert len(doubled) == 2
    text = failed_at(run(script), doubled[0].loc.line)
    assert "early" in text


def test_time_wait_rst_fails_with_rfc1337():
    """RFC 793 TIME-WAIT RST: with tcp_rfc1337=1 the kernel ignores the RST, so the bare ACK
    afterwards is still absorbed by TIME-WAIT and the expected CLOSED-state reset never comes."""
    path = "close/time-wait-rst.yaml"
    control(path)
    script = load(CASES / path)
    script.sysctl["net.ipv4.tcp_rfc1337"] = 1
    last_reset = reset_either(script)      # the reset, with or without the ACK bit
    text = failed_at(run(script), last_reset.loc.line)
    assert "expected segment did not arrive" in text


def test_active_open_fails_when_syn_flags_change():
    """The active-open cases pin the SYN's flags: with tcp_ecn=1 the kernel's SYN carries ECE
    and CWR, and the case must fail on the SYN line, on its flags."""
    path = "open/active-open-nonblocking.yaml"
    control(path)
    script = load(CASES / path)
    script.sysctl["net.ipv4.tcp_ecn"] = 1
    syn = event(script, "> S 0:0(0)")
    result = run(script)
    failed_at(result, syn.loc.line)
    assert "flags" in diff_fields(result)


def test_active_open_passes_with_other_syn_options():
    """The SYN's options are the target's choice (RFC 9293 3.1, 3.7.1): a SYN that also offers
    SACK-permitted, timestamps and window scaling must not fail an active-open case."""
    path = "open/active-open-blocking.yaml"
    script = load(CASES / path)
    for name in ("net.ipv4.tcp_sack", "net.ipv4.tcp_timestamps", "net.ipv4.tcp_window_scaling"):
        script.sysctl[name] = 1
    result = run(script)
    assert result.verdict == "pass", result.failure


def test_return_route_case_fails_when_source_routes_are_refused():
    """RFC 1122 4.2.3.8 return route: with accept_source_route off again, Linux drops the
    source-routed SYN (as RFC 7126 advises), and the SYN-ACK along the reversed route that the
    case requires never comes."""
    path = RFC1122 / "4.2.3.8-ip-options" / "passive-open-return-route.yaml"
    control(path)
    script = load(path)
    script.sysctl["net.ipv4.conf.all.accept_source_route"] = 0
    syn_ack = event(script, "> (dst 192.0.2.2, ipopt 0x830704c0000201) S.")
    text = failed_at(run(script), syn_ack.loc.line)
    assert "did not arrive" in text


def test_clock_driven_isn_case_fails_on_a_per_connection_counter(monkeypatch):
    """RFC 9293 3.4.1 clock-driven ISNs: a stack whose ISN grows by a fixed step per
    connection (time plays no part) gives equal differences for unequal gaps; the case's
    Python block must fail on proportionality."""
    path = RFC9293 / "isn" / "isn-clock-driven.yaml"
    control(path, "stack")
    counter = itertools.count(1)
    monkeypatch.setattr(IsnGenerator, "isn", lambda self, local, remote, now: 64000 * next(counter))
    script = load(path)
    block = next(e for e in script.events if isinstance(e, PythonEvent))
    text = failed_at(run_one(script, "stack"), block.loc.line)
    assert "not proportional to time" in text


# -- the case's expectation made wrong ---------------------------------------------------------

def test_listen_ack_fails_on_wrong_reset_seq():
    """RFC 793 LISTEN + ACK: the reset must be <SEQ=SEG.ACK>; expecting SEG.ACK+1 must fail on
    the seq field of that line and nothing else."""
    path = "reset/listen-ack.yaml"
    control(path)
    script = load(CASES / path)
    reset = reset_either(script)
    reset.seq = reset.end = 5556           # R|R.: the seq is required with either flags
    result = run(script)
    failed_at(result, reset.loc.line)
    assert result.failure.diff == [{"field": "seq", "expected": "5556", "actual": "5555"}]


def test_closed_port_fails_on_missing_ack_flag():
    """RFC 793 CLOSED + segment without ACK: the reset is RST,ACK; a case expecting a bare RST
    must fail on the flags of that line."""
    path = "reset/closed-port-syn.yaml"
    control(path)
    script = load(CASES / path)
    reset = event(script, "ack 1001")
    assert reset.flags == RST | ACK
    reset.flags = RST
    reset.ack = None
    result = run(script)
    failed_at(result, reset.loc.line)
    assert "flags" in diff_fields(result)


def test_data_rto_fails_on_wrong_rto():
    """RFC 6298 RTO of 1.5 s: expecting the first retransmission after 1.2 s (an RTO computed
    as 2.4 x RTT) must fail at that line - the segment is not there by 1.2 s plus the
    tolerance - rather than pass."""
    path = "retransmission/data-rto-backoff.yaml"
    control(path)
    script = load(CASES / path)
    first = event(script, "+1.5")
    first.time = TimeSpec("rel", 1.2)
    text = failed_at(run(script), first.loc.line)
    assert "did not arrive" in text


def test_data_both_ways_fails_on_wrong_ack(tmp_path: Path):
    """A deliberately wrong copy of the case file: the ACK of the peer's 100 bytes written as
    ack 100 instead of 101. The runner must fail on that line's ack field."""
    original = (CASES / "data" / "data-both-ways.yaml").read_text()
    assert original.count("> . 1:1(0) ack 101\n") == 1
    broken = tmp_path / "data-both-ways.yaml"
    broken.write_text(original.replace("> . 1:1(0) ack 101\n", "> . 1:1(0) ack 100\n"))
    control("data/data-both-ways.yaml")
    script = load(broken)
    line = event(script, "> . 1:1(0) ack 100").loc.line
    result = run(script)
    failed_at(result, line)
    assert diff_fields(result) == {"ack"}


def test_restart_after_idle_fails_without_the_restart():
    """RFC 5681 4.1: with tcp_slow_start_after_idle=0 Linux keeps its cwnd over the idle
    period; the case must fail before the peer's first ACK after it, where a fourth segment
    (or a cwnd above 3) shows that the window did not restart."""
    path = CASES.parent / "rfc5681" / "idle" / "restart-after-idle.yaml"
    assert run_one(load(path), "kernel").verdict == "pass"
    script = load(path)
    script.sysctl["net.ipv4.tcp_slow_start_after_idle"] = 0
    third = event(script, "11001:12001(1000)").loc.line
    first_ack = event(script, "ack 10001").loc.line
    result = run(script)
    assert result.verdict == "fail"
    assert third < result.failure.line < first_ack, result.failure.render(result.path)
