"""Cases sharpened for `rfcdrill mutate`: each passes on the stack with the RFCs' choices and
fails with the mutant that survived the suite before it (the one rule that mutant breaks).
That they pass on stack-alt too, a stack taking other legal choices, is checked with every
case in tests/test_case_timers_and_windows.py and tests/test_case_rfc793_9293_choices.py."""

from __future__ import annotations

import os

import pytest

from tests.test_case_timers_and_windows import _with_mutant

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root to create network namespaces")

KILLS = [
    ("rfc793/data/window-update-old-ack.yaml", "window-update-from-old-segment"),
    ("rfc793/slow/time-wait-fin-restarts-timer.yaml", "time-wait-fin-no-restart"),
    ("rfc9293/window/receiver-sws-no-tiny-updates.yaml", "no-receiver-sws-avoidance"),
    ("rfc9293/window/receiver-sws-no-tiny-updates.yaml", "window-retracts"),
    ("rfc9293/close/time-wait-syn-newer-timestamp.yaml", "time-wait-syn-ignores-timestamps"),
    ("rfc9293/urgent/receive-long-urgent.yaml", "urgent-pointer-not-advanced"),
    ("rfc9293/urgent/send-urgent-pointer-beyond-16-bits.yaml", "urgent-pointer-wraps"),
    ("rfc1122/4.2.3.2-delayed-ack/stream-of-small-segments-acked-in-time.yaml",
     "delayed-ack-restarted-per-segment"),
    ("rfc1122/4.2.2.2-push/sws-held-data-not-held-forever.yaml", "data-held-without-override"),
    ("rfc5681/loss-recovery/sack-recovery-half-the-segments.yaml", "sack-recovery-keeps-cwnd"),
]


@pytest.mark.parametrize("path, name", KILLS, ids=[name for _, name in KILLS])
def test_the_case_fails_its_mutant(path: str, name: str):
    verdict = _with_mutant(path, name)
    assert verdict.startswith("fail"), verdict
