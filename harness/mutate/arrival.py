"""Mutants of SEGMENT ARRIVES: acceptability, RST, SYN and ACK checks per state (RFC 793 3.9,
RFC 9293 3.10.7), the LISTEN and CLOSED replies, and the SYN-SENT and SYN-RECEIVED steps."""

from __future__ import annotations

import errno
from dataclasses import replace

from stack import seqnum
from stack.connection import Connection
from stack.events import SYNCHRONIZED, State
from stack.host import Host
from stack.wire import ACK, FIN, RST, SYN, TCPSegment

from harness.mutate.patching import Mutant, after, guard, method, mutant

C = Connection
_T = "rfc793:transition:"
_NAMES = {State.ESTABLISHED: "ESTABLISHED", State.FIN_WAIT_1: "FIN-WAIT-1",
          State.FIN_WAIT_2: "FIN-WAIT-2", State.CLOSE_WAIT: "CLOSE-WAIT", State.CLOSING: "CLOSING",
          State.LAST_ACK: "LAST-ACK", State.TIME_WAIT: "TIME-WAIT",
          State.SYN_RECEIVED: "SYN-RECEIVED"}
_RST_IDS = {State.CLOSING: "rst", State.LAST_ACK: "rst", State.TIME_WAIT: "rst"}
_SYN_IDS = {State.TIME_WAIT: "syn"}


def _slug(state: State) -> str:
    return _NAMES[state].lower()


def _rst_ignored(state: State) -> Mutant:
    """RFC 9293 3.10.7.4 second step: an acceptable RST at RCV.NXT closes in every state."""
    rid = _T + _NAMES[state] + ":" + _RST_IDS.get(state, "rst-in-window")
    return mutant(f"rst-ignored-in-{_slug(state)}", [rid],
                  f"a RST at RCV.NXT is ignored in {_NAMES[state]}",
                  guard(C, "_synchronized", lambda self, seg: self.state is state
                        and bool(seg.flags & RST) and seg.seq == self.rcv_nxt))


def _unacceptable_silent(state: State) -> Mutant:
    """First step: an unacceptable non-RST segment is answered with an ACK."""
    return mutant(f"unacceptable-seq-not-acked-in-{_slug(state)}",
                  [_T + _NAMES[state] + ":unacceptable-seq"],
                  f"an out-of-window segment is dropped without the ACK in {_NAMES[state]}",
                  guard(C, "_synchronized", lambda self, seg: self.state is state
                        and not seg.flags & RST and not self._acceptable(seg)))


def _syn_ignored(state: State) -> Mutant:
    """Fourth step: an in-window SYN draws a RST (RFC 793) or a challenge ACK (RFC 5961);
    silence is neither."""
    rid = _T + _NAMES[state] + ":" + _SYN_IDS.get(state, "syn-in-window")
    return mutant(f"syn-in-window-ignored-in-{_slug(state)}", [rid],
                  f"an in-window SYN draws neither RST nor ACK in {_NAMES[state]}",
                  guard(C, "_synchronized", lambda self, seg: self.state is state
                        and bool(seg.flags & SYN) and not seg.flags & RST
                        and seg.seq != self.irs and self._acceptable(seg)))


def _text_after_fin(state: State) -> Mutant:
    """Seventh step: text after the peer's FIN cannot occur and is ignored."""
    def deliver(self: Connection, seg: TCPSegment) -> None:
        self._deliver(seg.payload)
        self._ack_due = True
    return mutant(f"text-after-fin-delivered-in-{_slug(state)}",
                  [_T + _NAMES[state] + ":data-or-urg"],
                  f"text arriving in {_NAMES[state]} is delivered and acknowledged",
                  guard(C, "_text_and_fin", lambda self, seg: self.state is state
                        and bool(seg.payload), deliver))


def _fin_again_resets(state: State) -> Mutant:
    """Eighth step: a FIN in CLOSE-WAIT, CLOSING or LAST-ACK leaves the state as it is."""
    def reset(self: Connection, seg: TCPSegment) -> None:
        self._segment(RST | ACK, self.snd_max)
        self._terminate(errno.ECONNRESET)
    return mutant(f"fin-again-resets-in-{_slug(state)}", [_T + _NAMES[state] + ":fin"],
                  f"the peer's FIN seen again in {_NAMES[state]} resets the connection",
                  guard(C, "_synchronized", lambda self, seg: self.state is state
                        and bool(seg.flags & FIN) and not seg.flags & RST, reset))


PER_STATE = [
    *(_rst_ignored(s) for s in (State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2,
                                State.CLOSE_WAIT, State.CLOSING, State.LAST_ACK, State.TIME_WAIT)),
    *(_unacceptable_silent(s) for s in _NAMES),
    *(_syn_ignored(s) for s in _NAMES),
    *(_text_after_fin(s) for s in (State.CLOSE_WAIT, State.CLOSING, State.LAST_ACK,
                                   State.TIME_WAIT)),
    *(_fin_again_resets(s) for s in (State.CLOSE_WAIT, State.CLOSING, State.LAST_ACK)),
]


def _acceptable_ack(self: Connection, seg: TCPSegment) -> bool:
    return seqnum.gt(seg.ack, self.iss) and seqnum.le(seg.ack, self.snd_max)


def _bare_ack_establishes(self: Connection, seg: TCPSegment) -> None:
    self.irs, self.rcv_nxt = seqnum.add(seg.seq, -1), seg.seq
    self._ack_advance(seg)
    self._take_window(seg, force=True)
    self._established()


def _refused(self: Connection, seg: TCPSegment) -> None:
    self._terminate(errno.ECONNREFUSED)


def _rst_reply(self: Host, ip, seg: TCPSegment, iss) -> None:
    self._send_tcp(ip.src, TCPSegment(seg.dport, seg.sport, seg.ack, 0, RST, 0))


def _rst_ack_reply(self: Host, ip, seg: TCPSegment, iss) -> None:
    self._send_tcp(ip.src, TCPSegment(seg.dport, seg.sport, 0, seqnum.add(seg.seq, seg.seg_len),
                                      RST | ACK, 0))


def _listening(self: Host, seg: TCPSegment) -> bool:
    return seg.dport in self.listeners


def _closed_port(build_reply):
    """The CLOSED state's reply (RFC 9293 3.10.7.1) to a segment for a port nobody listens
    on: `build_reply(segment)`, None for none."""
    def reply(self: Host, ip, seg: TCPSegment, iss) -> None:
        answer = build_reply(seg)
        if answer is not None:
            self._send_tcp(ip.src, answer)
    return guard(Host, "_listen", lambda self, ip, seg, iss: not _listening(self, seg), reply)


def _synack_acks_seq(fx, self, syn: TCPSegment, now: float):
    for seg in fx.segments:
        if seg.flags & SYN:
            seg.ack = syn.seq
    return fx


def _syn_sent_strip(self: Connection, seg: TCPSegment) -> bool:
    return self.state is State.SYN_SENT and bool(seg.flags & SYN and seg.flags & ACK) \
        and bool(seg.payload or seg.flags & FIN)


def _strip_text(orig):
    def stripped(self: Connection, seg: TCPSegment) -> None:
        if _syn_sent_strip(self, seg):
            seg = replace(seg, payload=b"", flags=seg.flags & ~FIN)
        orig(self, seg)
    return stripped


def _no_ack_after_synack(orig):
    def quiet(self: Connection, seg: TCPSegment) -> None:
        orig(self, seg)
        if self.state is State.ESTABLISHED and not seg.payload:
            self._ack_due = False
    return quiet


def _syn_data_dropped(flag_only: bool):
    def build(orig):
        def listen(self: Host, ip, seg: TCPSegment, iss) -> None:
            if seg.flags & SYN and not seg.flags & (ACK | RST):
                seg = replace(seg, flags=seg.flags & ~FIN) if flag_only else replace(seg, payload=b"")
            orig(self, ip, seg, iss)
        return listen
    return build


def _no_ack_bit_taken(orig):
    def take(self: Connection, seg: TCPSegment) -> None:
        if self.state in SYNCHRONIZED and not seg.flags & (ACK | SYN | RST):
            seg = replace(seg, flags=seg.flags | ACK, ack=self.snd_una)
        orig(self, seg)
    return take


def _mark_syn_received(orig):
    def ack(self: Connection, seg: TCPSegment) -> bool:
        was = self.state is State.SYN_RECEIVED
        result = orig(self, seg)
        return result and not (was and (seg.payload or seg.flags & FIN))
    return ack


STEPS = [
    mutant("rst-out-of-window-accepted", [_T + "ESTABLISHED:unacceptable-seq-rst"],
           "a RST outside the receive window resets the connection",
           guard(C, "_synchronized", lambda self, seg: self.state is State.ESTABLISHED
                 and bool(seg.flags & RST) and not self._acceptable(seg),
                 lambda self, seg: self._reset_by_peer())),
    mutant("rst-with-data-ignored", ["rfc9293:SHLD-2", "rfc1122:4.2.2.12-a"],
           "a RST that carries data is dropped",
           guard(C, "_synchronized", lambda self, seg: bool(seg.flags & RST) and bool(seg.payload))),
    mutant("ack-of-unsent-data-accepted", [_T + "ESTABLISHED:ack-unsent-data"],
           "an ACK beyond SND.NXT is taken as acknowledging data (SND.UNA jumps past SND.NXT)",
           guard(C, "_ack", lambda self, seg: self.state in SYNCHRONIZED
                 and seqnum.gt(seg.ack, self.snd_max),
                 lambda self, seg: (setattr(self, "snd_una", seg.ack), setattr(self, "snd_max", seg.ack),
                                    setattr(self, "snd_nxt", seg.ack), True)[-1])),
    mutant("ack-of-unsent-data-silent", [_T + "ESTABLISHED:ack-unsent-data"],
           "an ACK beyond SND.NXT is dropped without sending an ACK",
           guard(C, "_ack", lambda self, seg: self.state in SYNCHRONIZED
                 and seqnum.gt(seg.ack, self.snd_max), lambda self, seg: False)),
    mutant("old-ack-resets", [_T + "ESTABLISHED:ack-duplicate"],
           "an old ACK (below SND.UNA) aborts the connection with a RST instead of being ignored",
           guard(C, "_ack", lambda self, seg: self.state is State.ESTABLISHED
                 and seqnum.lt(seg.ack, self.snd_una)
                 and not seqnum.lt(seg.ack, seqnum.add(self.snd_una, -self.max_snd_wnd)),
                 lambda self, seg: (self._abort(errno.ECONNRESET), False)[-1])),
    mutant("new-ack-ignored", [_T + "ESTABLISHED:ack-new"],
           "an ACK of new data does not advance SND.UNA",
           guard(C, "_ack_advance", lambda self, seg, *rest, **kw: self.state in SYNCHRONIZED)),
    mutant("window-update-from-old-segment", [_T + "ESTABLISHED:ack-new"],
           "the send window is taken from every segment, ignoring SND.WL1/SND.WL2",
           method(C, "_take_window", lambda orig: lambda self, seg, force=False: orig(self, seg, True))),
    mutant("segment-without-ack-processed", [_T + "ESTABLISHED:no-ack-flag"],
           "a segment without the ACK bit is processed as if it acknowledged SND.UNA",
           method(C, "_synchronized", _no_ack_bit_taken)),
    # SYN-SENT (RFC 9293 3.10.7.3)
    mutant("syn-sent-bare-ack-establishes", [_T + "SYN-SENT:no-syn-no-rst"],
           "in SYN-SENT an acceptable ACK without SYN establishes the connection",
           guard(C, "_syn_sent", lambda self, seg: seg.flags & (ACK | SYN | RST) == ACK
                 and _acceptable_ack(self, seg), _bare_ack_establishes)),
    mutant("syn-sent-rst-without-ack-accepted", [_T + "SYN-SENT:rst-no-ack"],
           "in SYN-SENT a RST without ACK refuses the connection",
           guard(C, "_syn_sent", lambda self, seg: seg.flags & (RST | ACK) == RST, _refused)),
    mutant("syn-sent-rst-ignored", [_T + "SYN-SENT:rst-acceptable-ack"],
           "in SYN-SENT a RST with an acceptable ACK is ignored",
           guard(C, "_syn_sent", lambda self, seg: seg.flags & (RST | ACK) == RST | ACK
                 and _acceptable_ack(self, seg))),
    mutant("syn-sent-bad-ack-not-reset", [_T + "SYN-SENT:unacceptable-ack"],
           "in SYN-SENT an unacceptable ACK is dropped without <SEQ=SEG.ACK><CTL=RST>",
           guard(C, "_syn_sent", lambda self, seg: seg.flags & (RST | ACK) == ACK
                 and not _acceptable_ack(self, seg))),
    mutant("syn-sent-bad-ack-rst-accepted", [_T + "SYN-SENT:unacceptable-ack-with-rst"],
           "in SYN-SENT a RST with an unacceptable ACK refuses the connection",
           guard(C, "_syn_sent", lambda self, seg: seg.flags & (RST | ACK) == RST | ACK
                 and not _acceptable_ack(self, seg), _refused)),
    mutant("simultaneous-open-ignored", [_T + "SYN-SENT:syn-no-ack", "rfc9293:MUST-10",
                                         "rfc1122:4.2.2.10-a"],
           "in SYN-SENT a SYN without ACK is dropped (no simultaneous open)",
           guard(C, "_syn_sent", lambda self, seg: seg.flags & (SYN | ACK | RST) == SYN)),
    mutant("syn-ack-text-dropped", [_T + "SYN-SENT:syn-ack-with-data"],
           "text and FIN on a SYN-ACK are dropped", method(C, "_syn_sent", _strip_text)),
    mutant("syn-ack-not-acknowledged", [_T + "SYN-SENT:syn-ack"],
           "an acceptable SYN-ACK establishes the connection but draws no ACK",
           method(C, "_syn_sent", _no_ack_after_synack)),
    mutant("active-open-syn-ack-flag", [_T + "CLOSED:open-active"],
           "the active OPEN's SYN also carries the ACK flag",
           after(C, "_send_syn", lambda result, self: [setattr(s, "flags", s.flags | ACK)
                                                      for s in self._fx.segments if s.flags & SYN])),
    # SYN-RECEIVED
    mutant("syn-received-bad-ack-not-reset", [_T + "SYN-RECEIVED:ack-unacceptable"],
           "in SYN-RECEIVED an unacceptable ACK is dropped without a RST",
           guard(C, "_ack", lambda self, seg: self.state is State.SYN_RECEIVED and not (
               seqnum.lt(self.snd_una, seg.ack) and seqnum.le(seg.ack, self.snd_max)),
               lambda self, seg: False)),
    mutant("syn-received-ack-stops-processing", [_T + "SYN-RECEIVED:ack-acceptable",
                                                 _T + "SYN-RECEIVED:fin"],
           "the ACK that completes the handshake establishes, but its text and FIN are dropped",
           method(C, "_ack", _mark_syn_received)),
    mutant("passive-syn-received-rst-ignored", [_T + "SYN-RECEIVED:rst-passive", "rfc9293:MUST-11",
                                                "rfc1122:4.2.2.11-a"],
           "a RST in SYN-RECEIVED from a passive open is ignored (the half-open connection stays)",
           guard(C, "_reset_by_peer", lambda self: self.state is State.SYN_RECEIVED and self.passive)),
    mutant("active-syn-received-rst-not-refused", [_T + "SYN-RECEIVED:rst-active", "rfc9293:MUST-11",
                                                   "rfc1122:4.2.2.11-a"],
           "a RST in SYN-RECEIVED from an active open closes without 'connection refused'",
           guard(C, "_reset_by_peer", lambda self: self.state is State.SYN_RECEIVED
                 and not self.passive, lambda self: self._terminate(None))),
    # LISTEN (RFC 9293 3.10.7.2) and CLOSED (3.10.7.1)
    mutant("listen-ack-not-reset", [_T + "LISTEN:ack"],
           "an ACK arriving at a listener draws no RST",
           guard(Host, "_listen", lambda self, ip, seg, iss: _listening(self, seg)
                 and seg.flags & (ACK | RST) == ACK)),
    mutant("listen-rst-answered", [_T + "LISTEN:rst"], "a RST arriving at a listener is answered with a RST",
           guard(Host, "_listen", lambda self, ip, seg, iss: _listening(self, seg)
                 and bool(seg.flags & RST), _rst_reply)),
    mutant("listen-other-answered", [_T + "LISTEN:other"],
           "a segment without SYN, ACK or RST at a listener draws a RST",
           guard(Host, "_listen", lambda self, ip, seg, iss: _listening(self, seg)
                 and not seg.flags & (SYN | ACK | RST), _rst_ack_reply)),
    mutant("listen-syn-refused", [_T + "LISTEN:syn", _T + "CLOSED:open-passive"],
           "a listener answers a SYN with a RST, as if nobody listened",
           guard(Host, "_listen", lambda self, ip, seg, iss: _listening(self, seg)
                 and seg.flags & (SYN | ACK | RST) == SYN, _rst_ack_reply)),
    mutant("synack-acks-syn-seq", [_T + "LISTEN:syn"],
           "the first SYN-ACK acknowledges SEG.SEQ instead of SEG.SEQ+1",
           after(C, "accept_syn", _synack_acks_seq)),
    mutant("syn-text-dropped", [_T + "LISTEN:syn-with-data"], "text on a SYN to a listener is dropped",
           method(Host, "_listen", _syn_data_dropped(flag_only=False))),
    mutant("syn-fin-dropped", [_T + "LISTEN:syn-with-fin"], "a FIN on a SYN to a listener is dropped",
           method(Host, "_listen", _syn_data_dropped(flag_only=True))),
    mutant("closed-port-answers-rst", [_T + "CLOSED:rst"], "a RST to a closed port is answered with a RST",
           _closed_port(lambda seg: TCPSegment(seg.dport, seg.sport, seg.ack, 0, RST, 0))),
    mutant("closed-port-rst-ack-ignores-len", [_T + "CLOSED:segment-no-ack"],
           "a closed port's RST,ACK acknowledges SEG.SEQ, not SEG.SEQ+SEG.LEN",
           _closed_port(lambda seg: None if seg.flags & RST else TCPSegment(
               seg.dport, seg.sport, seg.ack if seg.flags & ACK else 0, seg.seq,
               RST if seg.flags & ACK else RST | ACK, 0))),
    mutant("closed-port-rst-seq-zero", [_T + "CLOSED:segment-with-ack"],
           "a closed port answers a segment with ACK by <SEQ=0><CTL=RST,ACK>",
           _closed_port(lambda seg: None if seg.flags & RST else TCPSegment(
               seg.dport, seg.sport, 0, seqnum.add(seg.seq, seg.seg_len), RST | ACK, 0))),
]

MUTANTS = [*PER_STATE, *STEPS]
