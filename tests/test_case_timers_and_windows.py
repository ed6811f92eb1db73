"""The RFC 1122 and RFC 5681 cases judge the RFC, not Linux: timers, windows, congestion.

Both directions, on the project's stack in virtual time:
- specific: a stack taking other legal choices than Linux's gets no `fail`: the `stack-alt`
  target (delayed ACKs of 200 ms without quick-ACK mode, an initial window of 2 segments,
  NewReno's other full-ACK option, RTO floor 1 s as RFC 6298 2.4 says...), the RFCs' own
  choices (Config's defaults), and RFC 1122's 3 s initial RTO;
- sensitive: a stack breaking the rule a case states (no exponential backoff, an RTO 25 %
  late, an initial window of 4 segments where RFC 5681 3.1 allows 3, slow start past
  ssthresh, cwnd grown by a whole stretch ACK, no growth at all, an ACK delayed 0.6 s)
  fails it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from harness.execute import run_one
from harness.loader import load
from harness.mutate.patching import applied
from harness.mutate.registry import MUTANTS
from harness.targets.stack import StackTarget
from stack.config import PROFILES
from stack.congestion import Reno
from stack.rtt import RttEstimator

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root to create network namespaces")

CASES = Path(__file__).resolve().parent.parent / "cases"
EXPECTED_TO_FAIL = {case_id for folder in ("rfc1122", "rfc5681") for case_id in
                    yaml.safe_load((CASES / folder / "expectations" / "stack.yaml").read_text())}


def _judged_on_the_stack(path: Path) -> bool:
    """A case the stack runs and is not expected to fail (a real gap of the stack, or a later
    RFC it follows, as its expectations file says)."""
    case = load(path)
    return case.id not in EXPECTED_TO_FAIL and (case.targets is None or "stack" in case.targets)


JUDGED = sorted(str(p.relative_to(CASES)) for folder in ("rfc1122", "rfc5681")
                for p in (CASES / folder).rglob("*.yaml")
                if p.parent.name != "expectations" and _judged_on_the_stack(p))
PASSING = {"pass", "choice", "follows-later-rfc", "skipped", "not-applicable"}


def _verdict(path: str, target: str = "stack") -> str:
    result = run_one(load(CASES / path), target)
    if result.failure is None:
        return result.verdict
    return f"{result.verdict}: {result.failure.render(path)}"


@contextmanager
def _stack(**settings: object) -> Iterator[pytest.MonkeyPatch]:
    """The `stack` target built with these Config settings (and no others), undone on exit."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(PROFILES, "under-test", settings)
        patch.setattr(StackTarget, "profile", "under-test")
        yield patch


def test_the_cases_are_found():
    assert len(JUDGED) >= 70


@pytest.mark.parametrize("path", JUDGED)
def test_stack_alt_passes(path: str):
    """stack-alt: 200 ms delayed ACKs without quick-ACK mode, IW 2, cwnd = ssthresh on a full
    ACK, RFC 793 reset processing, an RTO floor of 1 s: each allowed by the RFCs the cases
    cite, none Linux's."""
    verdict = _verdict(path, "stack-alt")
    assert verdict.split(":")[0] in PASSING, verdict


@pytest.mark.parametrize("path", JUDGED)
def test_the_rfcs_choices_pass(path: str):
    """The stack with the RFCs' own choices (Config's defaults: RTO floor 1 s, MSL 2 min, RFC
    5681's IW, NewReno's first full-ACK option, quick-ACK start)."""
    with _stack():
        verdict = _verdict(path)
    assert verdict.split(":")[0] in PASSING, verdict


@pytest.mark.parametrize("path", [p for p in JUDGED if "syn" in p])
def test_rfc_1122s_initial_rto_of_3_s_passes(path: str):
    with _stack(rto_initial=3.0):
        verdict = _verdict(path)
    assert verdict.split(":")[0] in PASSING, verdict


def _fails(path: str, patch_stack, **settings: object) -> str:
    """The verdict with the RFCs' choices (must pass), then with the stack broken by
    `patch_stack` and `settings` (returned)."""
    with _stack():
        assert _verdict(path).split(":")[0] in PASSING
    with _stack(**settings) as patch:
        patch_stack(patch)
        return _verdict(path)


def _with_mutant(path: str, name: str) -> str:
    """The verdict with the RFCs' choices (must pass), then with `rfcdrill mutate`'s mutant
    `name` installed (returned)."""
    with _stack():
        assert _verdict(path).split(":")[0] in PASSING
        with applied(MUTANTS[name]):
            return _verdict(path)


def _no_backoff(patch: pytest.MonkeyPatch) -> None:
    patch.setattr(RttEstimator, "expired", lambda self: None)


def _late_rto(patch: pytest.MonkeyPatch) -> None:
    rto = RttEstimator.rto.fget
    patch.setattr(RttEstimator, "rto", property(lambda self: rto(self) * 1.25))


def _slow_start_always(patch: pytest.MonkeyPatch) -> None:
    patch.setattr(Reno, "grow",
                  lambda self, acked: setattr(self, "cwnd", self.cwnd + min(acked, self.mss)))


def _grow_by_all_acked(patch: pytest.MonkeyPatch) -> None:
    patch.setattr(Reno, "grow", lambda self, acked: setattr(self, "cwnd", self.cwnd + acked))


def _never_grow(patch: pytest.MonkeyPatch) -> None:
    patch.setattr(Reno, "grow", lambda self, acked: None)


def _unchanged(patch: pytest.MonkeyPatch) -> None:
    """The stack's own code: what breaks the rule is a setting."""


BROKEN = [
    # RFC 6298 5.5 / RFC 1122 4.2.3.1-c: no exponential backoff (on the RFC's 1 s floor, so
    # that the ratio checks, not only the windows, are what fails)
    ("rfc1122/4.2.3.1-rto/rto-exponential-backoff.yaml", _no_backoff, {}),
    ("rfc1122/4.2.3.1-rto/karn-and-backoff-kept.yaml", _no_backoff, {}),
    ("rfc1122/4.2.3.1-rto/syn-rto-backoff.yaml", _no_backoff, {}),
    ("rfc1122/4.2.2.17-zero-window/zero-window-probes-back-off.yaml", _no_backoff, {}),
    ("rfc5681/rto/loss-window-and-ssthresh.yaml", _no_backoff, {}),
    ("rfc1122/4.2.3.5-r1-r2/r2-closes-connection.yaml", _no_backoff, {}),
    # an RTO timer 25 % late where the RFC fixes its value
    ("rfc1122/4.2.3.1-rto/rto-from-measured-rtt.yaml", _late_rto, {}),
    ("rfc1122/4.2.3.1-rto/syn-initial-rto-3s.yaml", _late_rto, {}),
    ("rfc1122/4.2.3.5-r1-r2/user-timeout-sets-r2.yaml", _late_rto, {}),
    # RFC 5681 3.1: an initial window of 4 segments at SMSS 1460 (at most 3 allowed)
    ("rfc5681/initial-window/iw-at-most-three-segments.yaml", _unchanged, {"initial_window": 4}),
    # RFC 5681 3.1: slow start past ssthresh, growth by a whole stretch ACK, no growth
    ("rfc5681/congestion-avoidance/one-smss-per-rtt.yaml", _slow_start_always, {}),
    ("rfc1122/4.2.2.15-congestion/slow-start-to-ssthresh-then-linear.yaml", _slow_start_always, {}),
    ("rfc5681/slow-start/stretch-ack-adds-one-smss.yaml", _grow_by_all_acked, {}),
    ("rfc1122/4.2.2.15-congestion/slow-start-growth.yaml", _never_grow, {}),
    # RFC 1122 4.2.3.2, RFC 9293 MUST-40: an ACK delayed 0.6 s
    ("rfc1122/4.2.3.2-delayed-ack/single-segment-delayed-ack.yaml", _unchanged,
     {"delayed_ack": 0.6, "quick_ack": False}),
    ("rfc5681/ack/delayed-ack-and-every-second-segment.yaml", _unchanged,
     {"delayed_ack": 0.6, "quick_ack": False}),
]


@pytest.mark.parametrize("path, breaking, settings", BROKEN,
                         ids=[f"{p.split('/')[-1]}-{b.__name__.strip('_')}" for p, b, _ in BROKEN])
def test_a_stack_breaking_the_rule_fails(path: str, breaking, settings: dict):
    verdict = _fails(path, breaking, **settings)
    assert verdict.startswith("fail"), verdict
