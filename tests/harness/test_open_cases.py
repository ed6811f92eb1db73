"""The cases rewritten to accept what the RFCs allow still fail what they do not: each is run
on the stack as it is (inside the allowed set) and as an edited copy whose allowed set leaves
the stack's behaviour out."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.execute import run_one
from harness.loader import load
from harness.result import CHOICE, FAIL, FOLLOWS, PASS

CASES = Path(__file__).resolve().parents[2] / "cases"


@pytest.mark.parametrize("case, edit, verdict, message", [
    ("rfc793/reset/established-rst-in-window-not-rcv-nxt.yaml", None, FOLLOWS, ""),
    ("rfc793/reset/established-rst-in-window-not-rcv-nxt.yaml",
     ("+0    > . 1:1(0) ack 1", "+0    > . 1:1(0) ack 7"), FAIL,
     "the target's segment matches no branch"),
    ("rfc793/segment-arrives/fin-wait-1-syn-in-window.yaml", None, FOLLOWS, ""),
    ("rfc793/segment-arrives/fin-wait-1-syn-in-window.yaml",
     ("+0    assert 4 state FIN_WAIT1", "+0    assert 4 state CLOSE"), FAIL,
     "fd 4 is in state FIN_WAIT1, expected CLOSE"),
    ("rfc793/close/time-wait-text-ignored.yaml", None, PASS, ""),
    ("rfc793/close/time-wait-text-ignored.yaml",        # the ACK made mandatory
     (">? . 2:2(0) ack 2", "> . 2:2(0) ack 2"), FAIL, "expected segment did not arrive"),
    ("rfc5681/initial-window/iw-at-most-three-segments.yaml", None, PASS, ""),
    ("rfc5681/initial-window/iw-at-most-three-segments.yaml",
     ("segments 1..3", "segments 1..2"), FAIL, "the flight does not match"),
    ("rfc5681/fast-retransmit/dupack-inflation-limited.yaml", None, CHOICE, ""),
    ("rfc5681/fast-retransmit/dupack-inflation-limited.yaml",
     ("> . 15001:16001(1000) ack 1", "> . 15001:16002(1001) ack 1"), FAIL,
     "the target's segment matches no branch"),
])
def test_inside_the_allowed_set_passes_and_outside_fails(tmp_path: Path, case: str, edit,
                                                         verdict: str, message: str) -> None:
    text = (CASES / case).read_text()
    if edit is not None:
        assert edit[0] in text
        text = text.replace(edit[0], edit[1], 1)
    copy = tmp_path / Path(case).name
    copy.write_text(text)
    result = run_one(load(copy), "stack")
    assert result.verdict == verdict, result.failure
    if message:
        assert result.failure.message.startswith(message)
