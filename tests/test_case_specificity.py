"""The cases accept the choices the RFCs leave open, not only Linux's.

A case that fails a compliant target is as bad as one that passes a broken one. Each test here
runs real cases on the project's stack made to take another legal choice than Linux's, and
requires the same verdicts as with the stack's defaults.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest

import harness.targets.stack
from harness.execute import run_one
from harness.loader import load
from stack import Host
from stack.receiver import Receiver

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root to create network namespaces")

CASES = Path(__file__).resolve().parent.parent / "cases"
DELAYED_ACK_NOTE = "within the 0.5 s RFC 1122 4.2.3.2 allows"


def _delaying(monkeypatch: pytest.MonkeyPatch, delay: float) -> None:
    """The stack acknowledges data only on its delayed-ACK timer or every second full-sized
    segment (RFC 1122 4.2.3.2, RFC 5681 4.2): no quick-ACK mode, `delay` for the timer."""
    monkeypatch.setattr(Receiver, "_enter_quick_ack", lambda self: None)
    monkeypatch.setattr(harness.targets.stack, "Host", functools.partial(Host, delayed_ack=delay))


def _acks_data_later_than(result, seconds: float) -> bool:
    """Some outbound step came at least `seconds` after the injection before it."""
    last_inject = None
    for step in result.timeline:
        if step.kind == "inject":
            last_inject = step.time
        elif step.kind == "outbound" and last_inject is not None and step.time - last_inject >= seconds:
            return True
    return False


DELAYED_ACK_CASES = sorted(str(p.relative_to(CASES)) for p in CASES.rglob("*.yaml")
                           if DELAYED_ACK_NOTE in p.read_text())


def test_the_delayed_ack_cases_are_found():
    assert len(DELAYED_ACK_CASES) >= 30


@pytest.mark.parametrize("path", DELAYED_ACK_CASES)
def test_a_receiver_that_delays_its_acks_400_ms_keeps_every_verdict(path: str, monkeypatch):
    """RFC 1122 4.2.3.2: an ACK may be delayed up to 0.5 s; a stack without quick-ACK mode
    whose delayed-ACK timer is 400 ms gets each case's verdict of the default stack."""
    default = run_one(load(CASES / path), "stack")
    _delaying(monkeypatch, 0.4)
    delayed = run_one(load(CASES / path), "stack")
    assert delayed.verdict == default.verdict, delayed.failure and delayed.failure.render(path)


def test_the_delaying_stack_delays(monkeypatch):
    """The tests above are not vacuous: with the patch, data is acknowledged 400 ms late."""
    _delaying(monkeypatch, 0.4)
    result = run_one(load(CASES / "rfc793" / "data" / "data-both-ways.yaml"), "stack")
    assert result.verdict == "pass"
    assert _acks_data_later_than(result, 0.39)


def test_a_receiver_that_delays_past_half_a_second_fails():
    """The other side: 0.6 s is more than RFC 1122 4.2.3.2 allows, and the case says so."""
    path = CASES / "rfc793" / "data" / "data-both-ways.yaml"
    assert run_one(load(path), "stack").verdict == "pass"
    with pytest.MonkeyPatch.context() as patch:
        _delaying(patch, 0.6)
        result = run_one(load(path), "stack")
    assert result.verdict == "fail"
    assert "+0~+.5 > . 1:1(0) ack 101" in result.failure.render(str(path))
