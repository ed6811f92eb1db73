"""The last Linux pins lifted (issue 9): each case named here passes on the stack made to take
another choice the RFC allows, and fails on one breaking the rule the case checks.

- the SYN-ACK's MSS: any value up to the MTU less 40, or no option at all when the MSS is
  the default 536 (RFC 9293 3.7.1, SHLD-5/MAY-3); stack-alt announces 1400 and runs the
  whole suite (README, "Stack profiles");
- stretch-ack-adds-one-smss: growth below one SMSS per ACK, which the MUST allows, is a
  choice; growth by everything acknowledged fails (tests/test_case_timers_and_windows.py);
- illegal-option-length-safe: MUST-7's suggested reset, on the SYN or on the data segment;
- rst-at-zero-window: any receive-buffer accounting (stack-alt's 1400-octet window as
  Linux's 1460), and a stack dropping RSTs in a zero window fails.
"""

from __future__ import annotations

import os

import pytest

from harness.execute import run_one
from harness.loader import load
from stack import handshake
from stack.host import Host
from stack.events import reset_for
from stack.wire import Malformed, decode_tcp
from tests.test_case_timers_and_windows import (CASES, PASSING, _never_grow, _stack, _verdict,
                                                _with_mutant)

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root to create network namespaces")

STRETCH = "rfc5681/slow-start/stretch-ack-adds-one-smss.yaml"
ILLEGAL = "rfc9293/options/illegal-option-length-safe.yaml"
ZERO_WINDOW = "rfc9293/rst/rst-at-zero-window.yaml"


def _branches(path: str) -> list[tuple[int, str]]:
    result = run_one(load(CASES / path), "stack")
    assert result.verdict in PASSING, result.failure and result.failure.render(path)
    return [(b.index, b.kind) for b in result.branches]


def _without_mss_option(patch: pytest.MonkeyPatch) -> None:
    """SYN-ACKs without an MSS option: what a TCP whose receive MSS is 536 may send."""
    build = handshake.syn_options
    patch.setattr(handshake, "syn_options",
                  lambda offer, tsval=0, tsecr=0: [o for o in build(offer, tsval, tsecr) if o[0] != "mss"])


HANDSHAKE_CASES = sorted(str(p.relative_to(CASES)) for p in (CASES / "rfc793").rglob("*.yaml")
                         if "<{mss? <=1460}>" in p.read_text())


def test_the_handshake_cases_are_found():
    assert len(HANDSHAKE_CASES) >= 40


@pytest.mark.parametrize("path", HANDSHAKE_CASES)
def test_a_syn_ack_announcing_536_by_omission_keeps_every_verdict(path: str):
    """MSS 536 (MTU 1500 less 964 of headroom) and no MSS option (RFC 9293 3.7.1: SHOULD send
    it only when the MSS differs from 536): the verdict of the default stack."""
    default = _verdict(path).split(":")[0]
    with _stack(mss_headroom=924) as patch:
        _without_mss_option(patch)
        assert _verdict(path).split(":")[0] == default


def test_the_mss_case_still_requires_the_option():
    """The other side: where the option is the subject (SHLD-5), leaving it out fails."""
    path = "rfc1122/4.2.2.6-mss/mss-536-received.yaml"
    with _stack() as patch:
        assert _verdict(path) == "pass"
        _without_mss_option(patch)
        assert _verdict(path).startswith("fail")


def test_stretch_ack_growth_below_one_smss_is_a_choice():
    with _stack():
        assert _branches(STRETCH) == [(1, "choice")]          # RFC 5681's min(N, SMSS)
    with _stack() as patch:
        _never_grow(patch)
        assert _branches(STRETCH) == [(2, "choice")]          # less, within the MUST


def _resetting_on_bad_options(patch: pytest.MonkeyPatch, syn_too: bool) -> None:
    """RFC 9293 3.1's suggested handling of an illegal option length: reset the connection
    (a segment without a connection, the SYN, gets <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>)."""
    tcp = Host._tcp

    def checked(self: Host, ip, seg) -> None:
        try:
            decode_tcp(ip.payload, ip.src, ip.dst, strict=True)
        except Malformed:
            conn = self.conns.get((seg.dport, ip.src, seg.sport))
            if conn is not None:
                self.apply(conn, conn.abort(self.clock.now()))
                return
            if syn_too:
                self._send_tcp(ip.src, reset_for(seg, self.cfg.rst_window))
                return
        tcp(self, ip, seg)
    patch.setattr(Host, "_tcp", checked)


@pytest.mark.parametrize("syn_too, taken", [
    (True, [(2, "")]),                  # the SYN's reset
    (False, [(1, ""), (2, "")]),        # the SYN processed, the data segment's reset (R|R.)
])
def test_the_suggested_reset_passes_on_the_syn_and_on_the_data(syn_too: bool, taken: list):
    with _stack() as patch:
        _resetting_on_bad_options(patch, syn_too)
        assert _branches(ILLEGAL) == taken


def test_a_stack_crashing_on_a_bad_length_does_not_pass():
    """The crash is the stack's exception: the run reports it as an error (not a pass)."""
    assert _with_mutant(ILLEGAL, "bad-option-length-crashes").startswith("error: internal error")


def test_a_zero_window_of_any_size_is_found():
    """stack-alt's window is 1400 octets (its MSS), the default stack's 1460: the reset goes
    where each one's last ACK points."""
    assert _verdict(ZERO_WINDOW, "stack-alt") == "pass"
    assert _verdict(ZERO_WINDOW, "stack") == "pass"


def test_a_stack_dropping_a_reset_in_a_zero_window_fails():
    assert _with_mutant(ZERO_WINDOW, "zero-window-drops-rst-and-urg").startswith("fail")
