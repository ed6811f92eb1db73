"""Opening a connection: the active OPEN, a listener's SYN, and the SYN-SENT state.

Theory of operation: `Handshake` is one part of `Connection` (see connection.py). `open` sends
<SEQ=ISS><CTL=SYN> (RFC 9293 3.10.1); `accept_syn` answers a SYN a listener accepted with a
SYN-ACK (3.10.7.2); `_syn_sent` processes what arrives in SYN-SENT (3.10.7.3), including
simultaneous open (RFC 1122 4.2.2.20's correction). The peer's SYN fixes IRS, the negotiated
options (options.negotiate), and with them the congestion window and the loss-recovery
algorithm. Text and FIN carried by a SYN are processed once the connection is established.
"""

from __future__ import annotations

import errno
from dataclasses import replace

from . import seqnum
from .congestion import NewReno, Reno
from .events import Notice, State, event
from .options import answer, negotiate, syn_options
from .sack import SackRecovery
from .wire import ACK, FIN, RST, SYN, TCPSegment


class Handshake:
    """Active and passive opening, and the SYN-SENT state (see the module comment)."""

    # ---------------------------------------------------------------- opening

    @event
    def open(self) -> None:
        """Active OPEN (RFC 9293 3.10.1): send <SEQ=ISS><CTL=SYN>, enter SYN-SENT."""
        self.state = State.SYN_SENT
        self._send_syn()
        self._arm_retransmit()

    @event
    def accept_syn(self, syn: TCPSegment) -> None:
        """A listener's SYN (RFC 9293 3.10.7.2, third check): set IRS and RCV.NXT, send
        <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>, enter SYN-RECEIVED. Text or FIN on the SYN "should
        be queued for processing later": it is processed once ESTABLISHED (Linux without Fast
        Open drops it instead)."""
        self.passive = True
        if syn.payload or syn.flags & FIN:
            self.syn_queued = syn
        self.offer = answer(self.offer, syn)
        self._take_syn(syn)
        self.snd_wnd = syn.window            # RFC 7323 2.2: a SYN's window is never scaled
        self.snd_wl1, self.snd_wl2 = syn.seq, syn.ack
        self.max_snd_wnd = self.snd_wnd
        self.state = State.SYN_RECEIVED
        self._send_syn()
        self._arm_retransmit()

    def _take_syn(self, syn: TCPSegment) -> None:
        """Record the peer's SYN: IRS, RCV.NXT, negotiated options, TS.Recent."""
        self.irs = syn.seq
        self.rcv_nxt = seqnum.add(syn.seq, 1)
        self.rcv_adv = seqnum.add(self.rcv_nxt, self._syn_window())
        self.neg = negotiate(self.offer, syn)
        self.cc = Reno(self.mss, self.cfg.initial_window)   # IW from the agreed MSS
        # Loss recovery: RFC 6675 with SACK, else RFC 5681 3.2 with NewReno (RFC 6582).
        self.recovery = SackRecovery(self.cc, self.iss) if self.neg.sack \
            else NewReno(self.cc, self.iss, self.cfg.full_ack_option)
        ts = syn.option("TS")
        if self.neg.timestamps and ts:
            self.ts_recent, self.ts_recent_at = ts[1], self.now

    def _send_syn(self) -> None:
        flags = SYN | (0 if self.state is State.SYN_SENT else ACK)
        tsecr = self.ts_recent if flags & ACK else 0
        self._segment(flags, self.iss, options=syn_options(self.offer, self.ts_now, tsecr))
        if self.snd_nxt == self.iss:
            self.snd_nxt = self.snd_max = seqnum.add(self.iss, 1)
            self.timing = (self.iss, self.now)

    def _established(self) -> None:
        """Enter ESTABLISHED (RFC 9293 3.10.7.3, 3.10.7.4). After a SYN that timed out
        without an RTT sample RTO is 3 s (RFC 6298 5.7) and the initial window one segment
        (RFC 5681 3.1)."""
        self.state = State.ESTABLISHED
        if self.stats["total_retrans"]:
            self.rtt.fall_back()
            self.cc.syn_lost()
        self._fx.notices.append(Notice.ESTABLISHED)
        self._arm_keepalive()
        if self.syn_queued is not None:
            syn, self.syn_queued = self.syn_queued, None
            self._after_syn(syn)

    # ---------------------------------------- SYN-SENT, and our SYN-ACK again (RFC 9293 3.10.7.3)

    def _syn_sent(self, seg: TCPSegment) -> None:
        """RFC 9293 3.10.7.3."""
        # First, the ACK bit: it must acknowledge our SYN and nothing beyond.
        if seg.flags & ACK and not (seqnum.gt(seg.ack, self.iss) and seqnum.le(seg.ack, self.snd_max)):
            if not seg.flags & RST:
                self._segment(RST, seg.ack)          # <SEQ=SEG.ACK><CTL=RST>
            return
        # Second, RST: only with an acceptable ACK (RFC 5961 3.2 / RFC 9293 3.10.7.3).
        if seg.flags & RST:
            if seg.flags & ACK:
                self._terminate(errno.ECONNREFUSED)
            return
        # Third, security/precedence: ignored (RFC 2873 3, RFC 9293 3.10.7.3 note).
        # Fourth, SYN.
        if not seg.flags & SYN:
            return
        self._take_syn(seg)
        if seg.flags & ACK:
            self._ack_advance(seg)
            self._take_window(seg, force=True)     # RFC 1122 4.2.2.20 (c): set SND.WND
            self._established()
            self._ack_due = True
            self._after_syn(seg)
        else:
            # Simultaneous open: "snd SYN,ACK" (RFC 1122 4.2.2.20 correction of Figure 6).
            self.state = State.SYN_RECEIVED
            self.snd_wnd, self.snd_wl1, self.snd_wl2 = seg.window, seg.seq, seg.ack
            self.max_snd_wnd = self.snd_wnd
            self.timing = None                     # Karn: the SYN gets no sample now
            self._send_syn()

    def _after_syn(self, seg: TCPSegment) -> None:
        """Text and controls on a SYN-ACK continue at the sixth step (RFC 9293 3.10.7.3), and
        those queued from a listener's SYN once it is established (3.10.7.2)."""
        rest = replace(seg, seq=seqnum.add(seg.seq, 1), flags=seg.flags & ~SYN)
        self._urgent(rest)
        self._text_and_fin(rest)

    def _their_syn_again(self, seg: TCPSegment) -> bool:
        """The peer's SYN seen again in SYN-RECEIVED. A bare SYN is a retransmission: our
        SYN-ACK was lost, so send it again (RFC 9293 3.8.1 / Figure 10; Linux does so, rate
        limited). A SYN-ACK acknowledging our SYN (simultaneous open, RFC 9293 Figure 7) is
        handled as its ACK: returns True to go on without the SYN."""
        if seg.flags & ACK and seqnum.gt(seg.ack, self.snd_una) and seqnum.le(seg.ack, self.snd_max):
            self._ack_due = True     # its SYN is old (below RCV.NXT): acknowledged (3.10.7.4)
            return True
        if self._rate_ok(seg):
            self._send_syn()
        return False
