"""One TCP connection as a sans-I/O state machine.

Theory of operation
-------------------
A `Connection` is the TCB of RFC 9293 section 3.3.1 plus the machinery around it. It is driven
by exactly three kinds of event, each given the current time:

* a segment arrived (`on_segment`),
* the user called (`open`, `accept_syn`, `send`, `read`, `read_urgent`, `shutdown`, `close`,
  `abort`),
* time passed (`on_timer`), or an ICMP error arrived (`on_icmp`).

Every event returns an `Effects`: the segments to transmit (TCP only; the host wraps them in
IP), every timer armed after the event (kind -> deadline in clock seconds; the host wakes the
connection at the earliest), notices for the user (established, readable, EOF, error...) and the
user call's result. The connection never reads a clock, never touches a device and never
sleeps, so a test can feed it one segment and look at the one that comes back.

The code of the TCB is in parts, each a class `Connection` inherits and all working on the same
variables (set up here): `Handshake` (handshake.py: OPEN, a listener's SYN, SYN-SENT), `Sender`
(sender.py: output, retransmission, what an ACK of our data does), `Receiver` (receiver.py: the
window offered, acceptability, the ACK policy, text and urgent data) and `Timeouts`
(timeouts.py: timers, RTO, persist, keep-alive, ICMP). This module holds the state machine
proper: the steps of SEGMENT ARRIVES in the synchronized states, the per-state effects of an
ACK and a FIN, CLOSE and ABORT, TIME-WAIT. The vocabulary they share is in events.py.

Rules for these modules: the processing of an arriving segment follows the order of RFC 9293
3.10.7 (SEGMENT ARRIVES) step by step, with RFC 5961 for RST/SYN/ACK validation, RFC 7323 for
PAWS and RFC 1122 4.2 corrections; each rule carries its section. Sequence numbers are only
compared through `seqnum`. Sending goes through `_output` (new data and FIN under the send
window, congestion window, Nagle and SWS rules) and `_segment` (headers, window, options).

The LISTEN state lives in the host (a listener holds no TCB); a SYN it accepts becomes a new
connection through `accept_syn`. The CLOSED state's replies are `reset_for`.
"""

from __future__ import annotations

import errno
from dataclasses import replace
from typing import Callable

from . import seqnum
from .buffers import Reassembly, SendQueue
from .config import Config, SocketOptions
from .congestion import NewReno, Reno
from .events import SYNCHRONIZED, Effects, Notice, State, Throttle, Timer, event, reset_for
from .handshake import Handshake
from .options import Negotiated, Offer, segment_options, wscale_for
from .receiver import Receiver
from .rtt import RttEstimator
from .sack import SackRecovery
from .sender import Sender
from .timeouts import Timeouts
from .wire import ACK, FIN, RST, SYN, TCPSegment


class Connection(Handshake, Sender, Receiver, Timeouts):
    """The TCB and its state machine; see the module comment."""

    def __init__(self, cfg: Config, opts: SocketOptions, local: tuple[str, int],
                 remote: tuple[str, int], iss: int, ts_offset: int, throttle: Throttle,
                 now: float) -> None:
        self.cfg, self.opts = cfg, opts
        self.local, self.remote = local, remote
        self.throttle = throttle
        self.now = now
        self.state = State.CLOSED
        self.passive = False
        self.error: int | None = None          # errno of an abort, for SO_ERROR / calls
        self.soft_error: int | None = None     # last soft ICMP error (RFC 1122 4.2.3.9)
        self.orphan = False                    # the user closed the socket (no more reads)
        self.timers: dict[Timer, float] = {}
        self._fx = Effects()
        self._ack_due = False
        # Send sequence variables (RFC 9293 3.3.1). snd_max is the highest SND.NXT ever sent;
        # SND.NXT falls back below it after a timeout (go-back-N).
        self.iss = iss
        self.snd_una = self.snd_nxt = self.snd_max = iss
        self.snd_wnd = self.snd_wl1 = self.snd_wl2 = self.max_snd_wnd = 0
        self.snd_up: int | None = None
        self.sendq = SendQueue(seqnum.add(iss, 1))
        self.fin_queued = False
        self.snd_sml = self.sendq.base         # end of the last short segment sent (Minshall)
        self.fin_seq: int | None = None        # sequence number of our FIN once sent
        # Receive sequence variables. rcv_adv is the right edge last advertised.
        self.irs = self.rcv_nxt = self.rcv_adv = 0
        self.rcv_off = 0                       # stream octets received in order (unwrapped)
        self.rcv_up: int | None = None         # urgent pointer, as "octet after" (MUST-62)
        self.recvq = bytearray()
        self.oob: bytes | None = None          # the out-of-band octet (Linux MSG_OOB)
        self.oob_read = False                  # that octet was read (MSG_OOB now EINVAL)
        self.mark: int | None = None           # octets in recvq before the urgent octet
        self.reasm = Reassembly()
        self.fin_off: int | None = None        # stream offset of an out-of-order FIN
        self.fin_received = False
        self.syn_queued: TCPSegment | None = None   # a listener's SYN with text or FIN
        # Options.
        self.offer = self._our_offer()
        self.neg = Negotiated()
        self.ts_offset = ts_offset
        self.ts_recent = 0
        self.ts_recent_at = now
        self.last_ack_sent = 0
        # Timing, retransmission and congestion.
        self.rtt = RttEstimator(cfg)
        self.timing: tuple[int, float] | None = None   # (seq, sent at): Karn-safe RTT probe
        self.retries = 0                       # consecutive expiries (R1/R2 of RFC 1122 4.2.3.5)
        self.probes = 0                        # unanswered zero-window or keep-alive probes
        self.pmtu = cfg.mtu
        self.cc = Reno(self.mss, cfg.initial_window)
        self.recovery: NewReno | SackRecovery = NewReno(self.cc, iss, cfg.full_ack_option)
        self.last_send = self.last_recv = self.last_ack_recv = self.last_data_recv = now
        self.una_since = now                   # SND.UNA's data unacknowledged since (RFC 5482)
        self.last_invalid_ack = -1e9
        self.pending_ack_bytes = 0
        self.quick_acks = 0                    # data segments still to ACK at once (quick-ACK mode)
        self.pingpong = False                  # interactive: ACKs wait to ride on replies
        self.stats = dict(segs_in=0, segs_out=0, data_segs_in=0, data_segs_out=0,
                          bytes_sent=0, bytes_retrans=0, bytes_acked=0, bytes_received=0,
                          total_retrans=0, ooo_packets=0, timeouts=0, timeout_episodes=0)

    # ---------------------------------------------------------------- options

    def _our_offer(self) -> Offer:
        wscale = wscale_for(self.rcv_space_max) if self.cfg.window_scaling else None
        return Offer(mss=self.adv_mss, sack=self.cfg.sack, timestamps=self.cfg.timestamps,
                     wscale=wscale)

    @property
    def ts_now(self) -> int:
        """The timestamp clock: milliseconds plus a per-connection offset (RFC 7323 5.4)."""
        return seqnum.add(int(self.now * 1000), self.ts_offset)

    # ---------------------------------------------------------------- timers

    @event
    def on_timer(self) -> None:
        """Fire every timer whose deadline has come."""
        for timer in list(Timer):
            due = self.timers.get(timer)
            if due is not None and due <= self.now and self.state is not State.CLOSED:
                del self.timers[timer]
                self._TIMER_ACTIONS[timer](self)

    # ---------------------------------------------------------------- building segments

    def _segment(self, flags: int, seq: int | None = None, payload: bytes = b"",
                 options: list[tuple] | None = None) -> TCPSegment:
        seq = self.snd_nxt if seq is None else seq
        seg = TCPSegment(self.local[1], self.remote[1], seq, 0, flags, 0, payload=payload)
        if flags & SYN:
            seg.window = self._syn_window()
            seg.options = options or []
        elif flags == RST:
            seg.window = self.cfg.rst_window
        elif flags & ACK:
            seg.window = self._window_field()
            if not flags & RST:     # RFC 7323 4.2 recommends that RSTs carry no timestamp
                seg.options = segment_options(self.neg, self.ts_now, self.ts_recent,
                                              self._sack_blocks())
        if flags & ACK:
            seg.ack = self.rcv_nxt
            self.last_ack_sent = self.rcv_nxt
            self._ack_due = False
            self.pending_ack_bytes = 0
            self.timers.pop(Timer.DELACK, None)
        self._mark_urgent(seg)
        self._fx.segments.append(seg)
        self.stats["segs_out"] += 1
        return seg

    # ---------------------------------------------------------------- user calls

    @event
    def shutdown(self) -> None:
        """Half-close: queue a FIN after the data (RFC 9293 3.10.4 CLOSE, RFC 1122 4.2.2.13)."""
        self._queue_fin()

    @event
    def close(self) -> None:
        """CLOSE with the socket gone. Unread data or SO_LINGER 0 make it an abort with RST
        (RFC 1122 4.2.2.13 SHOULD, RFC 9293 3.10.4/3.10.5); otherwise a FIN goes out."""
        self.orphan = True
        if self.recvq or self.reasm.blocks or self.opts.linger == (True, 0):
            self._abort(None)
            return
        self._queue_fin()
        if self.state is State.FIN_WAIT_2:
            self._arm(Timer.FIN_WAIT_2, self.cfg.fin_timeout)

    @event
    def abort(self) -> None:
        """ABORT (RFC 9293 3.10.5)."""
        self._abort(None)

    def _queue_fin(self) -> None:
        """CLOSE per state (RFC 9293 3.10.4; CLOSE-WAIT goes to LAST-ACK, RFC 1122 4.2.2.20)."""
        if self.state in (State.SYN_SENT, State.CLOSED):
            self._terminate(None)
        elif self.state in (State.SYN_RECEIVED, State.ESTABLISHED):
            # In SYN-RECEIVED no SEND can be pending (send waits for ESTABLISHED), so the FIN
            # is formed and sent now (RFC 9293 3.10.4), behind our SYN.
            self.fin_queued = True
            self.state = State.FIN_WAIT_1
        elif self.state is State.CLOSE_WAIT:
            self.fin_queued = True
            self.state = State.LAST_ACK

    def _abort(self, error: int | None) -> None:
        """RFC 9293 3.10.5: in SYN-RECEIVED, ESTABLISHED, FIN-WAIT-1/2 and CLOSE-WAIT send
        <SEQ=SND.NXT><CTL=RST>; then the TCB goes."""
        if self.state in (State.SYN_RECEIVED, State.ESTABLISHED, State.FIN_WAIT_1,
                          State.FIN_WAIT_2, State.CLOSE_WAIT):
            self._segment(RST | ACK, self.snd_max)
        self._terminate(error)

    def _reset_and_close(self, seg: TCPSegment, error: int | None = None) -> None:
        """Delete the TCB and answer `seg` as a CLOSED port would (RFC 9293 3.10.7.1);
        `error` is what the user will see."""
        self._terminate(error)
        reply = reset_for(seg, self.cfg.rst_window)
        if reply is not None:
            self._fx.segments.append(reply)

    def _terminate(self, error: int | None) -> None:
        """Enter CLOSED and delete the TCB's queues; `error` is what the user will see."""
        self.state = State.CLOSED
        self.timers.clear()
        self._ack_due = False
        self.sendq.release(self.sendq.end)
        if error is not None:
            self.error = error
            self._fx.notices.append(Notice.ERROR)
        self._fx.notices.append(Notice.CLOSED)

    # ---------------------------------------------------------------- segment arrival

    @event
    def on_segment(self, seg: TCPSegment) -> None:
        """SEGMENT ARRIVES (RFC 9293 3.10.7) for a connection past LISTEN."""
        self.stats["segs_in"] += 1
        self.last_recv = self.now
        if self.state is State.SYN_SENT:
            self._syn_sent(seg)
        elif self.state in SYNCHRONIZED or self.state is State.SYN_RECEIVED:
            self._synchronized(seg)

    def _synchronized(self, seg: TCPSegment) -> None:
        """RFC 9293 3.10.7.4, steps one to eight."""
        if self.state is State.TIME_WAIT and seg.flags & RST and self.cfg.rfc1337:
            return                                 # RFC 1337: a RST does not end TIME-WAIT
        if not self._paws_ok(seg):
            return
        if self.state is State.SYN_RECEIVED and seg.flags & SYN and seg.seq == self.irs \
                and not seg.flags & RST:
            if not self._their_syn_again(seg):
                return
            seg = replace(seg, seq=seqnum.add(seg.seq, 1), flags=seg.flags & ~SYN)
        # First: sequence number acceptability.
        if not self._acceptable(seg):
            if seg.flags & RST:
                return
            if self.state is State.TIME_WAIT and seg.flags & FIN:
                self._arm(Timer.TIME_WAIT, 2 * self.cfg.msl)   # the FIN again: restart 2 MSL
            self._ack_invalid(seg)
            return
        # Second: RST. RFC 5961 3.2: only SEG.SEQ == RCV.NXT resets, another in-window RST
        # draws a challenge ACK; RFC 793 3.9: any RST in the window resets.
        if seg.flags & RST:
            if seg.seq == self.rcv_nxt or not self.cfg.rfc5961:
                self._reset_by_peer()
            else:
                self._challenge_ack()
            return
        seg = self._trim(seg)
        # Third: security and precedence are ignored (RFC 2873 3, RFC 9293 3.10.7.4).
        # Fourth: SYN.
        if seg.flags & SYN:
            if self.state is State.SYN_RECEIVED and self.passive:
                # Back to LISTEN (RFC 9293 3.10.7.4, RFC 1122 4.2.2.20(e)); the in-window SYN
                # is an error answered with a reset (RFC 793 3.9), as Linux does.
                self._reset_and_close(seg)
            elif self.cfg.rfc5961:
                self._challenge_ack()              # RFC 5961 4.2
            else:
                # RFC 793 3.9: an in-window SYN "is an error, send a reset", the user is told
                # "connection reset", and the connection is CLOSED.
                self._reset_and_close(seg, errno.ECONNRESET)
            return
        self._update_ts_recent(seg)
        # Fifth: ACK.
        if not seg.flags & ACK:
            return
        if not self._ack(seg):
            return
        # Sixth to eighth: URG, text, FIN.
        self._urgent(seg)
        self._text_and_fin(seg)

    def _reset_by_peer(self) -> None:
        """An acceptable RST (RFC 9293 3.10.7.4 second step, per state)."""
        if self.state is State.SYN_RECEIVED:
            # Passive: back to LISTEN (the listener lives on); active: "connection refused".
            self._terminate(None if self.passive else errno.ECONNREFUSED)
        elif self.state in (State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2):
            self._terminate(errno.ECONNRESET)
        elif self.state is State.CLOSE_WAIT:
            self._terminate(errno.EPIPE)         # Linux: the user already saw EOF
        else:
            self._terminate(None)                # CLOSING, LAST-ACK, TIME-WAIT

    # ---------------------------------------------------------------- ACK processing

    def _ack(self, seg: TCPSegment) -> bool:
        """RFC 9293 3.10.7.4 fifth step. Returns False when the segment is dropped."""
        if self.state is State.SYN_RECEIVED:
            if not (seqnum.lt(self.snd_una, seg.ack) and seqnum.le(seg.ack, self.snd_max)):
                self._segment(RST, seg.ack)          # <SEQ=SEG.ACK><CTL=RST>
                return False
            self._ack_advance(seg, syn_counted=not self.passive)
            self._take_window(seg, force=True)       # RFC 1122 4.2.2.20 (f)
            self._established()
        if seqnum.gt(seg.ack, self.snd_max):
            self._ack_invalid(seg)                   # acks something not yet sent
            return False
        if self.cfg.rfc5961 and seqnum.lt(seg.ack, seqnum.add(self.snd_una, -self.max_snd_wnd)):
            self._challenge_ack()                    # RFC 5961 5.2: too old to be valid
            return False
        self.last_ack_recv = self.now
        self.probes = 0
        acked = seqnum.diff(seg.ack, self.snd_una)
        recovering = self.recovery.active
        duplicate = isinstance(self.recovery, SackRecovery) and self.recovery.on_ack(
            self._sack_option(seg), seg.ack, self.snd_una, self.snd_max)
        if acked > 0:
            self._ack_advance(seg)
            self._congestion_on_ack(acked, seg.ack, recovering)
        elif isinstance(self.recovery, NewReno) and self._is_dupack(seg):
            self._newreno_dupack(seg)
        self._take_window(seg)
        if duplicate:
            self._sack_dupack()
        self._ack_by_state(seg)
        return self.state is not State.CLOSED

    def _ack_by_state(self, seg: TCPSegment) -> None:
        """The per-state part of the fifth step (RFC 9293 3.10.7.4)."""
        fin_acked = self.fin_seq is not None and seqnum.gt(self.snd_una, self.fin_seq)
        if self.state is State.FIN_WAIT_1 and fin_acked:
            self.state = State.FIN_WAIT_2
            if self.orphan:
                self._arm(Timer.FIN_WAIT_2, self.cfg.fin_timeout)
        elif self.state is State.CLOSING and fin_acked:
            self._enter_time_wait()
        elif self.state is State.LAST_ACK and fin_acked:
            self._terminate(None)

    # ---------------------------------------------------------------- FIN and TIME-WAIT

    def _fin(self) -> None:
        """RFC 9293 3.10.7.4 eighth step: FIN in order. Advance RCV.NXT over it, ACK it, tell
        the user, and move on per state."""
        if self.fin_received:
            return
        self.fin_received = True
        self.fin_off = None
        self.rcv_nxt = seqnum.add(self.rcv_nxt, 1)
        self.rcv_off += 1
        self._fx.notices.append(Notice.EOF)
        if self.state in (State.SYN_RECEIVED, State.ESTABLISHED):
            self.state = State.CLOSE_WAIT
            self._ack_fin_soon()
            return
        self._ack_due = True
        if self.state is State.FIN_WAIT_1:
            fin_acked = self.fin_seq is not None and seqnum.gt(self.snd_una, self.fin_seq)
            if fin_acked:
                self._enter_time_wait()              # RFC 1122 4.2.2.20 (e): straight there
            else:
                self.state = State.CLOSING
        elif self.state is State.FIN_WAIT_2:
            self._enter_time_wait()

    def _enter_time_wait(self) -> None:
        """TIME-WAIT: all other timers off, 2 MSL on (RFC 9293 3.10.7.4)."""
        self.state = State.TIME_WAIT
        self.timers.clear()
        self._arm(Timer.TIME_WAIT, 2 * self.cfg.msl)

    def _on_time_wait(self) -> None:
        self._terminate(None)

    def _on_fin_wait_2(self) -> None:
        self._terminate(None)

    # ---------------------------------------------------------------- timers' actions

    _TIMER_ACTIONS: dict[Timer, Callable[["Connection"], None]] = {
        Timer.RETRANSMIT: Timeouts._on_retransmit,
        Timer.PERSIST: Timeouts._on_persist,
        Timer.DELACK: Receiver._on_delack,
        Timer.KEEPALIVE: Timeouts._on_keepalive,
        Timer.TIME_WAIT: _on_time_wait,
        Timer.FIN_WAIT_2: _on_fin_wait_2,
    }
