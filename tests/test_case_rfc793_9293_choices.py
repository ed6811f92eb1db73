"""The RFC 793, RFC 9293 and RFC 2873 cases judge the RFC, not Linux: both directions.

- specific: `stack-alt` (200 ms delayed ACKs without quick-ACK mode, IW 2, RFC 793 reset
  processing without RFC 5961, one-octet zero-window probes, resets with a window...) and the
  RFCs' own choices (RTO floor 1 s, MSL 2 minutes) get no `fail`, and take the RFC 793 branch
  or the other option of a MAY where a case offers one;
- sensitive: a stack breaking what a case states (no exponential backoff, an RTO 25 % late,
  an ACK delayed 0.6 s) fails it.
The helpers are the RFC 1122/5681 ones (tests/test_case_timers_and_windows.py).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from harness.execute import run_one
from harness.ip import decode
from harness.loader import load
from stack import connection, handshake, host, seqnum
from stack.connection import Connection
from stack.events import State, Timer, reset_for
from stack.host import Host
from stack.sender import Sender
from stack.wire import ACK, RST, SYN, URG, TCPSegment
from tests.test_case_timers_and_windows import (PASSING, _fails, _late_rto, _no_backoff, _stack,
                                                _unchanged, _verdict)

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root to create network namespaces")

CASES = Path(__file__).resolve().parent.parent / "cases"
FOLDERS = ("rfc793", "rfc9293", "rfc2873")
EXPECTED_TO_FAIL = {case_id for folder in ("rfc793", "rfc9293")
                    for case_id in yaml.safe_load((CASES / folder / "expectations" / "stack.yaml")
                                                  .read_text()) or {}}
# Gaps of the stack itself, whatever its profile: no ECN (RFC 9293 SHLD-8).
STACK_GAPS = {"rfc9293-3.7.5-passive-ecn-negotiated"}


def _judged(path: Path) -> bool:
    case = load(path)
    return (case.id not in EXPECTED_TO_FAIL | STACK_GAPS
            and (case.targets is None or "stack" in case.targets))


JUDGED = sorted(str(p.relative_to(CASES)) for folder in FOLDERS
                for p in (CASES / folder).rglob("*.yaml")
                if p.parent.name != "expectations" and _judged(p))


def test_the_cases_are_found():
    assert len(JUDGED) >= 110


@pytest.mark.parametrize("path", JUDGED)
def test_stack_alt_passes(path: str):
    verdict = _verdict(path, "stack-alt")
    assert verdict.split(":")[0] in PASSING, verdict


@pytest.mark.parametrize("path", JUDGED)
def test_the_rfcs_choices_pass(path: str):
    with _stack():
        verdict = _verdict(path)
    assert verdict.split(":")[0] in PASSING, verdict


def _reset_flags(result) -> list[str]:
    """The flags of the segments the case's `R|R.` lines took, as sent."""
    return [step.note.split()[0] for step in result.timeline
            if step.kind == "outbound" and "R|R." in step.text]


def _branches(path: str, target: str) -> list[str]:
    result = run_one(load(CASES / path), target)
    assert result.verdict in PASSING, result.failure and result.failure.render(path)
    return [b.label for b in result.branches]


@pytest.mark.parametrize("path", [
    "rfc793/reset/established-rst-in-window-not-rcv-nxt.yaml",
    "rfc793/segment-arrives/close-wait-syn-in-window.yaml",
])
def test_rfc_793_processing_takes_the_rfc_793_branch(path: str):
    """stack-alt processes RSTs and SYNs as RFC 793 does: the case passes on its own branch,
    where the Linux-like stack is reported as following RFC 5961."""
    assert all(label.startswith("RFC 793") for label in _branches(path, "stack-alt"))
    assert any("5961" in label for label in _branches(path, "stack-linux"))


SYN_RECEIVED_SYN = "rfc793/reset/syn-received-syn-in-window.yaml"


def _silent_return_to_listen(patch: pytest.MonkeyPatch) -> None:
    """RFC 1122 4.2.2.20(e) / RFC 9293 3.10.7.4 read literally: an in-window SYN in a passively
    opened SYN-RECEIVED returns the connection to LISTEN, and nothing is sent."""
    reset_and_close = Connection._reset_and_close

    def silent(self: Connection, seg, error=None) -> None:
        if self.state is State.SYN_RECEIVED and self.passive:
            self._terminate(None)
        else:
            reset_and_close(self, seg, error)
    patch.setattr(Connection, "_reset_and_close", silent)


def _syn_ignored_in_syn_received(patch: pytest.MonkeyPatch) -> None:
    """lwIP's way: the SYN bit is not looked at, the ACK completes the handshake."""
    reset_and_close = Connection._reset_and_close

    def ignore(self: Connection, seg, error=None) -> None:
        if self.state is State.SYN_RECEIVED and self.passive:
            self._synchronized(replace(seg, flags=seg.flags & ~SYN))
        else:
            reset_and_close(self, seg, error)
    patch.setattr(Connection, "_reset_and_close", ignore)


def test_a_silent_return_to_listen_follows_rfc_1122():
    with _stack() as patch:
        _silent_return_to_listen(patch)
        result = run_one(load(CASES / SYN_RECEIVED_SYN), "stack")
    assert result.verdict == "follows-later-rfc", result.failure and result.failure.render("c")
    assert [b.label for b in result.branches] == [
        "RFC 1122 4.2.2.20(e), RFC 9293 3.10.7.4 (passive OPEN: back to LISTEN, no reset)"]
    assert _reset_flags(result) == ["R"]                  # the reset the stray ACK then draws
    assert all(label.startswith("RFC 793") for label in _branches(SYN_RECEIVED_SYN, "stack"))


def test_a_syn_ignored_in_syn_received_fails():
    verdict = _fails(SYN_RECEIVED_SYN, _syn_ignored_in_syn_received)
    assert verdict.startswith("fail"), verdict


@pytest.mark.parametrize("path, target, option", [
    ("rfc9293/ack/ack-below-window-discarded.yaml", "stack-alt", "without MAY-12"),
    ("rfc9293/ack/ack-below-window-discarded.yaml", "stack-linux", "MAY-12, RFC 5961"),
])
def test_a_may_is_reported_as_the_option_taken(path: str, target: str, option: str):
    assert run_one(load(CASES / path), target).verdict == "choice"
    assert any(option in label for label in _branches(path, target))


@pytest.mark.parametrize("path", [
    "rfc9293/window/zero-window-probes-backoff.yaml",
])
@pytest.mark.parametrize("probe", ["octet", "empty"])
def test_either_probe_form_passes(path: str, probe: str):
    """RFC 9293 3.8.6.1's octet of new data, or a zero-length probe at SND.UNA-1."""
    with _stack(zero_window_probe=probe):
        verdict = _verdict(path)
    assert verdict.split(":")[0] in PASSING, verdict


@pytest.mark.parametrize("path", [
    "rfc9293/retransmit/user-timeout-aborts.yaml",
    "rfc793/retransmission/user-timeout.yaml",
    "rfc9293/window/shrunk-window-no-new-data.yaml",
    "rfc9293/window/zero-window-probes-backoff.yaml",
])
def test_linuxs_200_ms_rto_floor_passes(path: str):
    with _stack(rto_min=0.2):
        verdict = _verdict(path)
    assert verdict.split(":")[0] in PASSING, verdict


@pytest.mark.parametrize("path", ["rfc793/retransmission/syn-backoff-exponential.yaml",
                                  "rfc9293/handshake/syn-retries-give-up.yaml"])
@pytest.mark.parametrize("initial", [1.0, 3.0])
def test_either_initial_syn_rto_passes_the_backoff(path: str, initial: float):
    """RFC 6298 2.1's 1 s or RFC 1122 4.2.3.1's 3 s: the doubling is what is checked."""
    with _stack(rto_initial=initial):
        verdict = _verdict(path)
    assert verdict == "pass", verdict


BROKEN = [
    # RFC 6298 5.5 / RFC 9293 SHLD-30, MUST-19: no exponential backoff
    ("rfc9293/window/zero-window-probes-backoff.yaml", _no_backoff, {}),
    ("rfc9293/window/shrunk-to-zero-not-timed-out.yaml", _no_backoff, {}),
    ("rfc9293/retransmit/karn-no-rtt-from-retransmission.yaml", _no_backoff, {}),
    ("rfc9293/retransmit/user-timeout-aborts.yaml", _no_backoff, {"rto_min": 0.2}),
    ("rfc9293/slow/data-r2-beyond-100-seconds.yaml", _no_backoff, {}),
    ("rfc793/retransmission/data-rto-backoff.yaml", _no_backoff, {}),
    ("rfc793/retransmission/syn-backoff-exponential.yaml", _no_backoff, {}),
    ("rfc793/retransmission/syn-backoff-exponential.yaml", _no_backoff, {"rto_initial": 3.0}),
    ("rfc9293/handshake/syn-retries-give-up.yaml", _no_backoff, {}),
    # an RTO 25 % late on the RFC's 1 s floor (or on RFC 6298's 1.5 s from a 0.5 s RTT)
    ("rfc9293/window/shrunk-window-no-new-data.yaml", _late_rto, {}),
    ("rfc9293/retransmit/retransmission-ip-id.yaml", _late_rto, {}),
    ("rfc9293/retransmit/karn-no-rtt-from-retransmission.yaml", _late_rto, {}),
    ("rfc793/close/last-ack-fin-again.yaml", _late_rto, {}),
    ("rfc793/retransmission/data-rto-backoff.yaml", _late_rto, {}),
    # RFC 1122 4.2.3.2 / RFC 9293 MUST-40: an ACK delayed 0.6 s
    ("rfc793/open/listen-syn-with-data.yaml", _unchanged, {"delayed_ack": 0.6, "quick_ack": False}),
    ("rfc9293/options/eol-zero-padding.yaml", _unchanged, {"delayed_ack": 0.6, "quick_ack": False}),
]


@pytest.mark.parametrize("path, breaking, settings", BROKEN,
                         ids=[f"{p.split('/')[-1]}-{b.__name__.strip('_')}" for p, b, _ in BROKEN])
def test_a_stack_breaking_the_rule_fails(path: str, breaking, settings: dict):
    verdict = _fails(path, breaking, **settings)
    assert verdict.startswith("fail"), verdict


def test_a_target_that_never_reopens_time_wait_is_a_choice():
    """RFC 9293 MAY-2 not taken: every SYN in TIME-WAIT, the one far above RCV.NXT with a newer
    TSval included, gets the TIME-WAIT ACK: the second branch, a choice, not a failure."""
    with _stack() as patch:
        patch.setattr(Host, "_reopens", lambda self, conn, seg: False)
        verdict = _verdict("rfc9293/close/time-wait-syn-newer-timestamp.yaml")
    assert verdict == "choice", verdict


def test_no_urg_while_the_urgent_offset_does_not_fit_passes():
    """A sender that leaves URG off a segment whose urgent offset exceeds 16 bits (Linux's
    rule when its next segment would not bring the pointer within reach) takes the second
    branch; one sending 0xFFFF, the stack's, the first."""
    mark = Connection._mark_urgent

    def only_in_reach(self, seg) -> None:
        mark(self, seg)
        if seg.urg == 0xFFFF:
            seg.flags &= ~URG
    path = "rfc9293/urgent/send-urgent-pointer-beyond-16-bits.yaml"
    with _stack() as patch:
        patch.setattr(Connection, "_mark_urgent", only_in_reach)
        result = run_one(load(CASES / path), "stack")
    assert result.verdict == "pass", result.failure
    assert [taken.index for taken in result.branches] == [2]


# -- the TCP option layout (RFC 9293 3.1, RFC 7323 Appendix A) --------------------------------

TIMESTAMP_CASES = ["rfc9293/options/mss-less-options-timestamps.yaml",
                   "rfc9293/close/time-wait-syn-newer-timestamp.yaml",
                   "rfc1122/4.2.2.6-mss/effective-mss-mtu-and-options.yaml"]


def _ts_first_no_padding(patch: pytest.MonkeyPatch) -> None:
    """Another legal layout: TS before MSS on a SYN-ACK, no NOPs on any segment."""
    syn_options, segment_options = handshake.syn_options, connection.segment_options
    patch.setattr(handshake, "syn_options", lambda *a, **k: sorted(
        (o for o in syn_options(*a, **k) if o[0] != "nop"), key=lambda o: o[0] != "TS"))
    patch.setattr(connection, "segment_options", lambda *a, **k: [
        o for o in segment_options(*a, **k) if o[0] != "nop"])


def _unoffered_window_scale(patch: pytest.MonkeyPatch) -> None:
    """A SYN-ACK with a window scale the peer's SYN did not offer (RFC 7323 2.2 forbids it)."""
    syn_options = handshake.syn_options
    patch.setattr(handshake, "syn_options",
                  lambda *a, **k: [*syn_options(*a, **k), ("nop",), ("wscale", 7)])


def _mss_counts_no_options(patch: pytest.MonkeyPatch) -> None:
    """Segments of the peer's whole MSS plus 12 octets of TS option (RFC 9293 MUST-16 broken)."""
    patch.setattr(Sender, "mss", property(lambda self: min(self.neg.peer_mss, self.pmtu - 40)))


@pytest.mark.parametrize("path", TIMESTAMP_CASES)
def test_any_option_layout_passes(path: str):
    """The runner learns the TS clock from the SYN-ACK wherever TS sits: the peer's echo of it
    (ecr) is right, so the stack's RTT samples and PAWS see their own clock."""
    with _stack() as patch:
        _ts_first_no_padding(patch)
        result = run_one(load(CASES / path), "stack")
    assert result.verdict in PASSING, result.failure and result.failure.render(path)
    _, syn_ack = decode(next(p.data for p in result.packets if p.direction == "out"))
    assert syn_ack.options[0][0] == "TS" and ("nop",) not in syn_ack.options, syn_ack.options


@pytest.mark.parametrize("path, breaking", [
    (TIMESTAMP_CASES[0], _unoffered_window_scale),
    (TIMESTAMP_CASES[1], _unoffered_window_scale),
    (TIMESTAMP_CASES[2], _unoffered_window_scale),
    (TIMESTAMP_CASES[0], _mss_counts_no_options),
    (TIMESTAMP_CASES[2], _mss_counts_no_options),
])
def test_a_stack_breaking_the_option_rules_fails(path: str, breaking):
    verdict = _fails(path, breaking)
    assert verdict.startswith("fail"), verdict


def _ack_for_ack_above_snd_nxt_in_syn_received(patch: pytest.MonkeyPatch) -> None:
    """RFC 9293 3.10.7.4 with MAY-12 (RFC 5961 5): the range check comes before SYN-RECEIVED's
    own rule, so an ACK above SND.NXT draws an ACK, not RFC 793's reset."""
    ack = Connection._ack

    def checked(self: Connection, seg) -> bool:
        if self.state is State.SYN_RECEIVED and seqnum.gt(seg.ack, self.snd_max):
            self._challenge_ack()
            return False
        return ack(self, seg)
    patch.setattr(Connection, "_ack", checked)


def test_an_ack_above_snd_nxt_in_syn_received_may_draw_an_ack():
    path = "rfc793/reset/syn-received-unacceptable-ack.yaml"
    assert all(label.startswith("RFC 793") for label in _branches(path, "stack-alt"))
    with _stack() as patch:
        _ack_for_ack_above_snd_nxt_in_syn_received(patch)
        result = run_one(load(CASES / path), "stack")
    assert result.verdict == "follows-later-rfc", result.failure and result.failure.render(path)


def _any_ack_completes_syn_received(patch: pytest.MonkeyPatch) -> None:
    """Broken: an ACK of data never sent completes the handshake (RFC 793 3.9's check gone)."""
    ack = Connection._ack

    def lax(self: Connection, seg) -> bool:
        if self.state is State.SYN_RECEIVED and seqnum.gt(seg.ack, self.snd_max):
            seg = replace(seg, ack=self.snd_max)
        return ack(self, seg)
    patch.setattr(Connection, "_ack", lax)


def test_an_ack_above_snd_nxt_completing_the_handshake_fails():
    verdict = _fails("rfc793/reset/syn-received-unacceptable-ack.yaml",
                     _any_ack_completes_syn_received)
    assert verdict.startswith("fail"), verdict


ABORT_CASES = ["rfc793/reset/abort-established.yaml", "rfc793/reset/abort-close-wait.yaml",
               "rfc9293/close/close-unread-data-sends-rst.yaml"]


def _bare_abort_reset(patch: pytest.MonkeyPatch) -> None:
    """RFC 9293 3.10.5's form exactly: <SEQ=SND.NXT><CTL=RST>, no ACK bit."""
    def abort(self: Connection, error) -> None:
        if self.state in (State.SYN_RECEIVED, State.ESTABLISHED, State.FIN_WAIT_1,
                          State.FIN_WAIT_2, State.CLOSE_WAIT):
            self._segment(RST, self.snd_max)
        self._terminate(error)
    patch.setattr(Connection, "_abort", abort)


def _abort_reset_at_snd_una(patch: pytest.MonkeyPatch) -> None:
    """Broken: the reset at SND.UNA instead of SND.NXT."""
    def abort(self: Connection, error) -> None:
        self._segment(RST, self.snd_una)
        self._terminate(error)
    patch.setattr(Connection, "_abort", abort)


@pytest.mark.parametrize("path", ABORT_CASES)
def test_an_abort_reset_with_or_without_the_ack_bit_passes(path: str):
    with _stack() as patch:
        _bare_abort_reset(patch)
        result = run_one(load(CASES / path), "stack")
    assert result.verdict == "pass", result.failure and result.failure.render(path)
    assert _reset_flags(result)[0] == "R"                 # the ABORT's reset, bare
    assert _reset_flags(run_one(load(CASES / path), "stack"))[0] == "R."


def test_an_abort_reset_at_the_wrong_seq_fails():
    verdict = _fails(ABORT_CASES[0], _abort_reset_at_snd_una)
    assert verdict.startswith("fail"), verdict


# -- the ACK of a FIN may be delayed (RFC 1122 4.2.3.2: less than 0.5 s) ------------------------

FIN_ACK_CASES = ["rfc793/close/active-close-fin-wait.yaml", "rfc793/close/simultaneous-close.yaml",
                 "rfc793/close/fin-wait-1-fin-and-ack.yaml", "rfc793/close/time-wait-segments.yaml",
                 "rfc793/close/closing-segments.yaml", "rfc9293/slow/time-wait-lasts-2msl.yaml"]


def _fin_acked_after(delay: float):
    """The ACK of a FIN that ends FIN-WAIT (to CLOSING or TIME-WAIT) waits `delay` seconds."""
    def patch_stack(patch: pytest.MonkeyPatch) -> None:
        fin = Connection._fin

        def delayed(self: Connection) -> None:
            fin(self)
            if self._ack_due and self.state in (State.TIME_WAIT, State.CLOSING):
                self._ack_due = False
                self._arm(Timer.DELACK, delay)
        patch.setattr(Connection, "_fin", delayed)
    patch_stack.__name__ = f"_fin_acked_after_{delay}"
    return patch_stack


@pytest.mark.parametrize("path", FIN_ACK_CASES)
def test_a_fin_acknowledged_within_half_a_second_passes(path: str):
    with _stack() as patch:
        _fin_acked_after(0.4)(patch)
        verdict = _verdict(path)
    assert verdict.split(":")[0] in PASSING, verdict


@pytest.mark.parametrize("path", FIN_ACK_CASES[:2])
def test_a_fin_acknowledged_after_half_a_second_fails(path: str):
    verdict = _fails(path, _fin_acked_after(0.6))
    assert verdict.startswith("fail"), verdict


# -- the ACK bit on a reset answering a segment with ACK (RFC 9293 3.10.7.1: seq SEG.ACK) ------

SEG_ACK_RESET_CASES = ["rfc793/reset/closed-port-ack.yaml", "rfc793/reset/listen-ack.yaml",
                       "rfc793/close/passive-close.yaml", "rfc793/close/time-wait-rst.yaml"]


def _closed_reply(make):
    """The CLOSED and LISTEN states' reply (stack.events.reset_for) replaced by `make`."""
    def patch_stack(patch: pytest.MonkeyPatch) -> None:
        for module in (connection, host):
            patch.setattr(module, "reset_for", make)
    patch_stack.__name__ = f"_closed_reply_{make.__name__}"
    return patch_stack


def _reset_with_ack(seg: TCPSegment, window: int = 0) -> TCPSegment | None:
    """lwIP's and netstack's form: <SEQ=SEG.ACK><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>."""
    if seg.flags & RST:
        return None
    seq = seg.ack if seg.flags & ACK else 0
    return TCPSegment(seg.dport, seg.sport, seq, seqnum.add(seg.seq, seg.seg_len), RST | ACK, window)


def _reset_seq_past_seg_ack(seg: TCPSegment, window: int = 0) -> TCPSegment | None:
    """Broken: the reset one past SEG.ACK, which the receiver's seq check may reject."""
    reply = reset_for(seg, window)
    return reply and replace(reply, seq=seqnum.add(reply.seq, 1))


def _reset_without_ack(seg: TCPSegment, window: int = 0) -> TCPSegment | None:
    """Broken: <SEQ=0><CTL=RST> answering a segment without ACK, which a SYN-SENT peer drops
    (RFC 9293 3.10.7.3: a reset is acceptable there only with an acceptable ACK)."""
    reply = reset_for(seg, window)
    return reply and replace(reply, flags=reply.flags & ~ACK)


@pytest.mark.parametrize("path", SEG_ACK_RESET_CASES)
def test_a_seg_ack_reset_with_the_ack_bit_passes(path: str):
    with _stack() as patch:
        _closed_reply(_reset_with_ack)(patch)
        result = run_one(load(CASES / path), "stack")
    assert result.verdict == "pass", result.failure and result.failure.render(path)
    assert "R." in _reset_flags(result), result.timeline


@pytest.mark.parametrize("path", SEG_ACK_RESET_CASES[:2])
def test_a_seg_ack_reset_at_the_wrong_seq_fails(path: str):
    verdict = _fails(path, _closed_reply(_reset_seq_past_seg_ack))
    assert verdict.startswith("fail"), verdict


def test_a_reset_answering_a_syn_without_the_ack_bit_fails():
    verdict = _fails("rfc793/reset/closed-port-syn.yaml", _closed_reply(_reset_without_ack))
    assert verdict.startswith("fail") and "flags" in verdict, verdict
