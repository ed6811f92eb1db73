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

Rules for this module: the processing of an arriving segment follows the order of RFC 9293
3.10.7 (SEGMENT ARRIVES) step by step, with RFC 5961 for RST/SYN/ACK validation, RFC 7323 for
PAWS and RFC 1122 4.2 corrections; each rule carries its section. Sequence numbers are only
compared through `seqnum`. Sending goes through `_output` (new data and FIN under the send
window, congestion window, Nagle and SWS rules) and `_segment` (headers, window, options).

The LISTEN state lives in the host (a listener holds no TCB); a SYN it accepts becomes a new
connection through `accept_syn`. The CLOSED state's replies are `reset_for`.
"""

from __future__ import annotations

import enum
import errno
import functools
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from . import seqnum
from .buffers import Reassembly, SendQueue
from .config import Config, SocketOptions
from .congestion import NewReno, Reno
from .options import Negotiated, Offer, answer, negotiate, segment_options, syn_options, wscale_for
from .rtt import RttEstimator
from .sack import SackRecovery
from .wire import ACK, FIN, PSH, RST, SYN, URG, TCPSegment


class State(enum.Enum):
    CLOSED = "CLOSED"
    LISTEN = "LISTEN"
    SYN_SENT = "SYN-SENT"
    SYN_RECEIVED = "SYN-RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN-WAIT-1"
    FIN_WAIT_2 = "FIN-WAIT-2"
    CLOSE_WAIT = "CLOSE-WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST-ACK"
    TIME_WAIT = "TIME-WAIT"


# Linux's numbering of the states (include/net/tcp_states.h), as tcp_info reports it.
LINUX_STATE = {
    State.ESTABLISHED: 1, State.SYN_SENT: 2, State.SYN_RECEIVED: 3, State.FIN_WAIT_1: 4,
    State.FIN_WAIT_2: 5, State.TIME_WAIT: 6, State.CLOSED: 7, State.CLOSE_WAIT: 8,
    State.LAST_ACK: 9, State.LISTEN: 10, State.CLOSING: 11,
}

SYNCHRONIZED = frozenset({State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2,
                          State.CLOSE_WAIT, State.CLOSING, State.LAST_ACK, State.TIME_WAIT})
# RFC 9293 3.10.7.4 sixth and seventh steps: URG and text are processed only here.
RECEIVING = frozenset({State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2})
# States in which queued data (and then a FIN) may still go out.
TRANSMITTING = frozenset({State.ESTABLISHED, State.CLOSE_WAIT, State.FIN_WAIT_1,
                          State.CLOSING, State.LAST_ACK})


class Timer(enum.Enum):
    RETRANSMIT = "retransmit"     # RFC 6298 (also SYN and SYN-ACK retransmission)
    PERSIST = "persist"           # RFC 9293 3.8.6.1 zero-window probes; RFC 1122 4.2.3.4 override
    DELACK = "delack"             # RFC 9293 3.8.6.3 delayed ACK
    KEEPALIVE = "keepalive"       # RFC 1122 4.2.3.6
    TIME_WAIT = "time-wait"       # 2 MSL (RFC 9293 3.10.7.4)
    FIN_WAIT_2 = "fin-wait-2"     # orphaned FIN-WAIT-2 lifetime (Linux tcp_fin_timeout)


class Notice(enum.Enum):
    ESTABLISHED = "established"
    READABLE = "readable"
    URGENT = "urgent"
    WRITABLE = "writable"
    EOF = "eof"                   # the peer's FIN: "connection closing" (RFC 9293 3.10.7.4)
    ERROR = "error"               # `Connection.error` holds the errno
    CLOSED = "closed"             # the TCB is gone
    NEGATIVE_ADVICE = "negative-advice"   # R1 reached (RFC 1122 4.2.3.5)


@dataclass
class Effects:
    segments: list[TCPSegment] = field(default_factory=list)
    timers: dict[Timer, float] = field(default_factory=dict)
    notices: list[Notice] = field(default_factory=list)
    result: Any = None


class Throttle:
    """At most `limit` events per second (RFC 5961 7: challenge ACKs SHOULD be throttled)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.second = -1
        self.count = 0

    def allow(self, now: float) -> bool:
        if int(now) != self.second:
            self.second, self.count = int(now), 0
        self.count += 1
        return self.count <= self.limit


@dataclass
class IcmpError:
    """An ICMP error about this connection (RFC 1122 4.2.3.9), already classified."""

    errno: int
    hard: bool                 # protocol/port unreachable: abort (RFC 1122 4.2.3.9)
    seq: int                   # the sequence number in the quoted TCP header
    mtu: int | None = None     # fragmentation needed: the next-hop MTU (RFC 1191)


def reset_for(seg: TCPSegment) -> TCPSegment | None:
    """The reply of a CLOSED port (RFC 9293 3.10.7.1): nothing to a RST; otherwise
    <SEQ=SEG.ACK><CTL=RST> if the segment had an ACK, else <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>."""
    if seg.flags & RST:
        return None
    if seg.flags & ACK:
        return TCPSegment(seg.dport, seg.sport, seg.ack, 0, RST, 0)
    return TCPSegment(seg.dport, seg.sport, 0, seqnum.add(seg.seq, seg.seg_len), RST | ACK, 0)


def _event(method: Callable[..., Any]) -> Callable[..., Effects]:
    """Run one event: set the time, collect effects, then send what became sendable."""

    @functools.wraps(method)
    def run(self: "Connection", *args: Any) -> Effects:
        self.now = args[-1]
        self._fx = Effects()
        self._fx.result = method(self, *args[:-1])
        if self.state in TRANSMITTING:
            self._output()
        if self._ack_due and self.state is not State.CLOSED:
            self._send_ack()
        fx, self._fx = self._fx, Effects()
        fx.timers = dict(self.timers)
        return fx

    return run


class Connection:
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
        self.recovery: NewReno | SackRecovery = NewReno(self.cc, iss)
        self.last_send = self.last_recv = self.last_ack_recv = self.last_data_recv = now
        self.una_since = now                   # SND.UNA's data unacknowledged since (RFC 5482)
        self.last_invalid_ack = -1e9
        self.pending_ack_bytes = 0
        self.quick_acks = 0                    # data segments still to ACK at once (quick-ACK mode)
        self.pingpong = False                  # interactive: ACKs wait to ride on replies
        self.stats = dict(segs_in=0, segs_out=0, data_segs_in=0, data_segs_out=0,
                          bytes_sent=0, bytes_retrans=0, bytes_acked=0, bytes_received=0,
                          total_retrans=0, ooo_packets=0, timeouts=0, timeout_episodes=0)

    # ---------------------------------------------------------------- sizes and windows

    def _our_offer(self) -> Offer:
        wscale = wscale_for(self.rcv_space_max) if self.cfg.window_scaling else None
        return Offer(mss=self.adv_mss, sack=self.cfg.sack, timestamps=self.cfg.timestamps,
                     wscale=wscale)

    @property
    def adv_mss(self) -> int:
        """The MSS we announce: MTU - 40 (RFC 9293 3.7.1), lowered by TCP_MAXSEG."""
        mss = self.cfg.mtu - 40
        return min(mss, self.opts.maxseg) if self.opts.maxseg else mss

    @property
    def mss(self) -> int:
        """Eff.snd.MSS (RFC 9293 3.7.1 / RFC 1122 4.2.2.6): the peer's MSS, the path MTU and
        TCP_MAXSEG, less the fixed options each segment carries (RFC 6691)."""
        mss = min(self.neg.peer_mss, self.pmtu - 40)
        if self.opts.maxseg:
            mss = min(mss, self.opts.maxseg)
        return max(mss - (12 if self.neg.timestamps else 0), 64)

    @property
    def rcv_mss(self) -> int:
        """The largest segment the peer should send us (our MSS less its options)."""
        return self.adv_mss - (12 if self.neg.timestamps else 0)

    @property
    def rcvbuf(self) -> int:
        return self.opts.rcvbuf or self.cfg.rmem[1]

    @property
    def rcv_capacity(self) -> int:
        """Octets of receive buffer for data: half of SO_RCVBUF, as Linux accounts it."""
        return self.rcvbuf // 2

    @property
    def rcv_space_max(self) -> int:
        """The largest window we could ever offer (Linux: tcp_rmem[2] unless SO_RCVBUF set)."""
        return self.rcv_capacity if self.opts.rcvbuf else self.cfg.rmem[2]

    @property
    def sndbuf(self) -> int:
        """SO_SNDBUF if set; otherwise tcp_wmem[1], grown once synchronized as Linux's
        tcp_sndbuf_expand does: room for two windows of max(10, cwnd) segments at Linux's
        memory cost per segment (87040 octets at MSS 1460), at most tcp_wmem[2]."""
        if self.opts.sndbuf:
            return self.opts.sndbuf
        if self.state not in SYNCHRONIZED:
            return self.cfg.wmem[1]
        # roundup_pow_of_two(MSS + MAX_TCP_HEADER + skb_shared_info) + sizeof(sk_buff)
        per_segment = (1 << (self.mss + 2 * 320 - 1).bit_length()) + 256
        segments = max(10, self.cc.cwnd // self.mss)
        return max(self.cfg.wmem[1], min(2 * segments * per_segment, self.cfg.wmem[2]))

    @property
    def send_space(self) -> int:
        """Room left in the send queue for the user."""
        return max(0, self.sndbuf - len(self.sendq))

    @property
    def rcv_wnd(self) -> int:
        """RCV.WND: what remains of the window last advertised."""
        return max(0, seqnum.diff(self.rcv_adv, self.rcv_nxt))

    @property
    def flight(self) -> int:
        """FlightSize (RFC 5681 2): octets sent and not yet acknowledged."""
        return max(0, seqnum.diff(self.snd_max, self.snd_una))

    @property
    def ts_now(self) -> int:
        """The timestamp clock: milliseconds plus a per-connection offset (RFC 7323 5.4)."""
        return seqnum.add(int(self.now * 1000), self.ts_offset)

    def _free_space(self) -> int:
        return max(0, self.rcv_capacity - len(self.recvq) - len(self.reasm))

    def _window_to_offer(self) -> int:
        """The window for the next segment, with receiver-side SWS avoidance (RFC 9293
        3.8.6.2.2 / RFC 1122 4.2.3.3): the right edge moves only by min(buffer/2, MSS) or more,
        and it never moves left (RFC 9293 3.8.6.2.2, SHLD-14)."""
        current = self.rcv_wnd
        free = self._free_space()
        if free - current >= min(self.rcv_capacity // 2, self.rcv_mss):
            return free
        return current

    def _window_field(self) -> int:
        """The 16-bit window field, scaled (RFC 7323 2.3); updates RCV.ADV accordingly."""
        window = self._window_to_offer()
        shift = self.neg.rcv_scale
        value = window >> shift
        if (value << shift) < self.rcv_wnd:
            value += 1                           # round up rather than shrink the window
        value = min(value, 0xFFFF)
        self.rcv_adv = seqnum.add(self.rcv_nxt, value << shift)
        return value

    def _syn_window(self) -> int:
        """The unscaled window of a SYN or SYN-ACK (RFC 7323 2.2), a whole number of
        segments like Linux's (e.g. 64240 = 44 * 1460)."""
        return min(self.rcv_capacity, 0xFFFF) // self.rcv_mss * self.rcv_mss

    # ---------------------------------------------------------------- timers

    def _arm(self, timer: Timer, delay: float) -> None:
        self.timers[timer] = self.now + delay

    def _arm_retransmit(self) -> None:
        """(Re)start the retransmission timer for RTO (RFC 6298 5.1, 5.3), but no later than
        the user timeout, which aborts when it expires (RFC 5482 / RFC 9293 3.8.3)."""
        deadline = self.now + self.rtt.rto
        if self.opts.user_timeout and self.state not in (State.SYN_SENT, State.SYN_RECEIVED):
            deadline = min(deadline, self.una_since + self.opts.user_timeout)
        self.timers[Timer.RETRANSMIT] = deadline

    def _cancel(self, *timers: Timer) -> None:
        for timer in timers:
            self.timers.pop(timer, None)

    @_event
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
            self._cancel(Timer.DELACK)
        self._mark_urgent(seg)
        self._fx.segments.append(seg)
        self.stats["segs_out"] += 1
        return seg

    def _mark_urgent(self, seg: TCPSegment) -> None:
        """RFC 9293 3.8.5 / MUST-62: while SND.UP is ahead, segments carry URG and a pointer to
        the octet after the urgent data (tcp_stdurg: to the last urgent octet, RFC 1122 4.2.2.4);
        a pointer too far for 16 bits is sent as 0xFFFF (RFC 6093 4)."""
        if self.snd_up is None or seg.flags & (SYN | RST) or not seqnum.lt(seg.seq, self.snd_up):
            return
        pointer = seqnum.diff(self.snd_up, seg.seq) - (1 if self.cfg.stdurg else 0)
        seg.flags |= URG
        seg.urg = min(pointer, 0xFFFF)

    def _sack_blocks(self) -> list[tuple[int, int]]:
        """RFC 2018 4: the block with the latest segment first, then the others by recency."""
        if not self.neg.sack:
            return []
        return [(self._seq_of(lo), self._seq_of(hi)) for lo, hi in self.reasm.ranges()]

    def _seq_of(self, offset: int) -> int:
        """The sequence number of a receive-stream offset."""
        return seqnum.add(self.rcv_nxt, offset - self.rcv_off)

    def _send_ack(self) -> None:
        """<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> (RFC 9293 3.10.7.4)."""
        self._segment(ACK)

    def _ack_soon(self, data_len: int) -> None:
        """Delayed ACK (RFC 9293 3.8.6.3, RFC 1122 4.2.3.2): at most `delayed_ack` late, and
        at least every second full-sized segment (RFC 5681 4.2). In quick-ACK mode, unless the
        connection is interactive, the segment is acknowledged at once."""
        self.pending_ack_bytes += data_len
        if self.quick_acks and not self.pingpong:
            self.quick_acks -= 1
            self._ack_due = True
        elif self.pending_ack_bytes >= 2 * self.rcv_mss:
            self._ack_due = True
        elif Timer.DELACK not in self.timers:
            self._arm(Timer.DELACK, self.cfg.delayed_ack)

    def _enter_quick_ack(self) -> None:
        """Linux's quick-ACK mode (tcp_incr_quickack), entered on the first data of a
        connection and after an idle gap longer than the RTO: the next RCV.WND / (2 * MSS)
        data segments (at least 2, at most 16) are acknowledged at once, so that delayed ACKs
        do not hold back the sender's slow start. RFC 5681 4.2 bounds how late an ACK may be,
        not how early: acknowledging every segment is always allowed."""
        wanted = min(max(self.rcv_wnd // (2 * self.rcv_mss), 2), 16)
        self.quick_acks = max(self.quick_acks, wanted)

    def _on_delack(self) -> None:
        """The delayed ACK went out alone: no reply carried it, so the connection is not
        interactive after all (Linux leaves pingpong mode here)."""
        self._ack_due = True
        self.pingpong = False

    def _challenge_ack(self) -> None:
        """RFC 5961 3.2, 4.2, 5.2: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, throttled (RFC 5961 7)."""
        if self.throttle.allow(self.now):
            self._ack_due = True

    def _ack_invalid(self, seg: TCPSegment) -> None:
        """The ACK for an unacceptable segment (RFC 9293 3.10.7.4 first step). Like Linux
        (tcp_invalid_ratelimit, see `_rate_ok`) answers are rate-limited."""
        if self._rate_ok(seg):
            self._ack_due = True

    def _rate_ok(self, seg: TCPSegment) -> bool:
        """tcp_invalid_ratelimit: segments of zero length, and SYNs, are answered at most once
        per interval; others (data, FIN) always, being likely retransmissions."""
        if seg.seg_len and not seg.flags & SYN:
            return True
        if self.now - self.last_invalid_ack < self.cfg.invalid_ratelimit:
            return False
        self.last_invalid_ack = self.now
        return True

    # ---------------------------------------------------------------- opening

    @_event
    def open(self) -> None:
        """Active OPEN (RFC 9293 3.10.1): send <SEQ=ISS><CTL=SYN>, enter SYN-SENT."""
        self.state = State.SYN_SENT
        self._send_syn()
        self._arm_retransmit()

    @_event
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
            else NewReno(self.cc, self.iss)
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
        """Enter ESTABLISHED (RFC 9293 3.10.7.3, 3.10.7.4); RFC 6298 5.7: a SYN that timed out without an RTT sample leaves RTO at 3 s; RFC 5681
        3.1: and the initial window is one segment."""
        self.state = State.ESTABLISHED
        if self.stats["total_retrans"]:
            self.rtt.fall_back()
            self.cc.syn_lost()
        self._fx.notices.append(Notice.ESTABLISHED)
        self._arm_keepalive()
        if self.syn_queued is not None:
            syn, self.syn_queued = self.syn_queued, None
            self._after_syn(syn)

    # ---------------------------------------------------------------- user calls

    @_event
    def send(self, data: bytes, urgent: bool = False) -> int:
        """SEND (RFC 9293 3.10.2): queue as much as the send buffer takes; returns the count.
        With `urgent`, SND.UP moves to the octet after the data (MUST-62)."""
        take = bytes(data[:self.send_space])
        self.sendq.append(take)
        if urgent and take:
            self.snd_up = self.sendq.end
        return len(take)

    @_event
    def read(self, size: int, peek: bool = False) -> bytes:
        """RECEIVE (RFC 9293 3.10.3): up to `size` in-order octets. Reading opens the window;
        an update is sent once it grew enough (RFC 1122 4.2.3.3) and at least doubled."""
        data = bytes(self.recvq[:size])
        if not peek:
            del self.recvq[:size]
            if self.mark is not None:           # reading past the urgent octet ends it
                self.mark = None if len(data) > self.mark else self.mark - len(data)
            if self.state in RECEIVING and self._window_to_offer() >= 2 * max(self.rcv_wnd, 1):
                self._ack_due = True
        return data

    @_event
    def push(self) -> None:
        """Nothing but the send rules again (after TCP_CORK is cleared)."""

    @property
    def at_mark(self) -> bool:
        """SIOCATMARK: everything before the last urgent octet has been read."""
        return self.mark == 0

    @property
    def urgent_pending(self) -> bool:
        """The last urgent octet has arrived and is unread (Linux's POLLPRI)."""
        return self.oob is not None or (self.opts.oobinline and self.mark is not None)

    @_event
    def set_quickack(self, on: bool) -> None:
        """TCP_QUICKACK (Linux): off marks the connection interactive, so that ACKs wait for
        a reply to ride on (RFC 1122 4.2.3.2's delay); on ends that and sends a pending ACK."""
        self.pingpong = not on
        if on and Timer.DELACK in self.timers:
            self._ack_due = True

    @_event
    def read_urgent(self) -> bytes | None:
        """The out-of-band octet (Linux MSG_OOB), or None if there is none."""
        data, self.oob = self.oob, None
        self.oob_read = data is not None
        return data

    @_event
    def shutdown(self) -> None:
        """Half-close: queue a FIN after the data (RFC 9293 3.10.4 CLOSE, RFC 1122 4.2.2.13)."""
        self._queue_fin()

    @_event
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

    @_event
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

    def _reset_and_close(self, seg: TCPSegment) -> None:
        """Delete the TCB and answer `seg` as a CLOSED port would (RFC 9293 3.10.7.1)."""
        self._terminate(None)
        reply = reset_for(seg)
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

    @_event
    def on_segment(self, seg: TCPSegment) -> None:
        """SEGMENT ARRIVES (RFC 9293 3.10.7) for a connection past LISTEN."""
        self.stats["segs_in"] += 1
        self.last_recv = self.now
        if self.state is State.SYN_SENT:
            self._syn_sent(seg)
        elif self.state in SYNCHRONIZED or self.state is State.SYN_RECEIVED:
            self._synchronized(seg)

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
        # Second: RST (RFC 5961 3.2: only SEG.SEQ == RCV.NXT resets; else challenge ACK).
        if seg.flags & RST:
            if seg.seq == self.rcv_nxt:
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
            else:
                self._challenge_ack()              # RFC 5961 4.2
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

    def _paws_ok(self, seg: TCPSegment) -> bool:
        """RFC 7323 5.3 R1 (PAWS) and 3.2: once timestamps are agreed, a non-RST segment
        without a TS option is dropped, and one whose TSval is older than TS.Recent is
        answered with an ACK and dropped, unless TS.Recent is over 24 days old."""
        if not self.neg.timestamps or seg.flags & RST:
            return True
        ts = seg.option("TS")
        if ts is None:
            return False
        if seqnum.lt(ts[1], self.ts_recent) and self.now - self.ts_recent_at <= 24 * 86400:
            self._ack_invalid(seg)
            return False
        return True

    def _update_ts_recent(self, seg: TCPSegment) -> None:
        """RFC 7323 5.3 R3 / 4.3: TS.Recent <- SEG.TSval if SEG.SEQ =< Last.ACK.sent."""
        ts = seg.option("TS")
        if self.neg.timestamps and ts and seqnum.ge(ts[1], self.ts_recent) \
                and seqnum.le(seg.seq, self.last_ack_sent):
            self.ts_recent, self.ts_recent_at = ts[1], self.now

    def _acceptable(self, seg: TCPSegment) -> bool:
        """The four cases of RFC 9293 3.10.7.4 (first), with the zero-window allowance for
        ACK, URG and RST at RCV.NXT."""
        length, wnd, nxt = seg.seg_len, self.rcv_wnd, self.rcv_nxt
        if wnd == 0:
            return seg.seq == nxt
        if length == 0:
            return seqnum.within(seg.seq, nxt, wnd)
        last = seqnum.add(seg.seq, length - 1)
        return seqnum.within(seg.seq, nxt, wnd) or seqnum.within(last, nxt, wnd)

    def _trim(self, seg: TCPSegment) -> TCPSegment:
        """Keep only the part inside the window (RFC 9293 3.10.7.4: "segments with higher
        beginning sequence numbers may be held"; what is left of the window is trimmed)."""
        payload, flags, seq = seg.payload, seg.flags, seg.seq
        early = seqnum.diff(self.rcv_nxt, seq)
        if early > 0:
            if flags & SYN:
                flags &= ~SYN
                early -= 1
            payload = payload[early:]
            if early > len(seg.payload):
                flags &= ~FIN                    # the FIN itself is old
            seq = self.rcv_nxt
        room = self.rcv_wnd - seqnum.diff(seq, self.rcv_nxt)
        if len(payload) > room:
            payload = payload[:max(room, 0)]
            flags &= ~FIN
            self._ack_due = True                 # tell the sender where the window ends
        if (payload, flags, seq) == (seg.payload, seg.flags, seg.seq):
            return seg
        return replace(seg, payload=payload, flags=flags, seq=seq)

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
            self._ack_advance(seg)
            self._take_window(seg, force=True)       # RFC 1122 4.2.2.20 (f)
            self._established()
        if seqnum.gt(seg.ack, self.snd_max):
            self._ack_invalid(seg)                   # acks something not yet sent
            return False
        if seqnum.lt(seg.ack, seqnum.add(self.snd_una, -self.max_snd_wnd)):
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

    def _is_dupack(self, seg: TCPSegment) -> bool:
        """RFC 5681 2 DUPLICATE ACKNOWLEDGMENT, for a connection without SACK: data
        outstanding, no data or SYN/FIN, same ACK and same window. (With SACK, RFC 6675 2
        counts ACKs that SACK new data instead: `SackRecovery.on_ack`.)"""
        return (seg.ack == self.snd_una and seqnum.gt(self.snd_nxt, self.snd_una)
                and not seg.payload
                and not seg.flags & (SYN | FIN)
                and seg.window << self.neg.snd_scale == self.snd_wnd)

    def _ack_advance(self, seg: TCPSegment) -> None:
        """SND.UNA < SEG.ACK =< SND.NXT: release, sample the RTT, grow cwnd, restart the
        retransmission timer (RFC 9293 3.10.7.4; RFC 6298 5.2-5.3; RFC 5681 3)."""
        acked = seqnum.diff(seg.ack, self.snd_una)
        self.sendq.release(seg.ack)
        self.stats["bytes_acked"] += acked
        self._rtt_sample(seg)
        self.snd_una = seg.ack
        self.una_since = self.now
        if seqnum.lt(self.snd_nxt, self.snd_una):
            self.snd_nxt = self.snd_una
        if self.snd_up is not None and seqnum.ge(self.snd_una, self.snd_up):
            self.snd_up = None
        self.retries = 0
        if self.flight == 0:
            self._cancel(Timer.RETRANSMIT)
        else:
            self._arm_retransmit()
        if self.send_space:
            self._fx.notices.append(Notice.WRITABLE)

    def _rtt_sample(self, seg: TCPSegment) -> None:
        """RTT samples: from TSecr when timestamps are on (RFC 7323 4.1), else from one timed
        segment never retransmitted (Karn's algorithm, RFC 6298 3)."""
        ts = seg.option("TS")
        if self.neg.timestamps and ts and ts[2]:
            self.rtt.sample(seqnum.diff(self.ts_now, ts[2]) / 1000)
        elif self.timing and seqnum.gt(seg.ack, self.timing[0]):
            self.rtt.sample(self.now - self.timing[1])
        if self.timing and seqnum.gt(seg.ack, self.timing[0]):
            self.timing = None

    def _congestion_on_ack(self, acked: int, ack: int, recovering: bool) -> None:
        """New data acknowledged: the window grows outside loss recovery (RFC 5681 3.1); in
        NewReno's fast recovery a partial ACK resends the next segment (RFC 6582 3.2 step 3);
        in SACK recovery the next ACK-clocked sends are NextSeg()'s (`_recovery_output`)."""
        if isinstance(self.recovery, NewReno):
            if self.recovery.on_ack(acked, ack, self.flight):
                self._retransmit_first()
        elif not recovering:
            self.cc.grow(acked)

    def _newreno_dupack(self, seg: TCPSegment) -> None:
        if self.recovery.on_dupack(seg.ack, self.flight, self.snd_max):
            self._retransmit_first()               # RFC 5681 3.2 step 2: fast retransmit

    def _sack_option(self, seg: TCPSegment) -> list[tuple[int, int]]:
        sack = seg.option("sack")
        return sack[1] if sack else []

    def _sack_dupack(self) -> None:
        """RFC 6675 5, a duplicate ACK outside recovery: enter loss recovery (steps 4.1-4.4;
        the sends of (C) follow in `_output`), or else limited transmit (step 3). While the
        stack goes back over what an RTO left (SND.NXT < SND.MAX) the timeout's recovery
        goes on instead."""
        rec = self.recovery
        if self.snd_nxt != self.snd_max:
            return
        if rec.loss_detected(self.snd_una, self.mss):
            rec.enter(self.snd_una, self.snd_max, self.flight)
            first_sacked = rec.board.next_left(self.snd_una)
            limit = None if first_sacked is None else seqnum.diff(first_sacked, self.snd_una)
            rec.first_resent(seqnum.add(self.snd_una, self._retransmit_at(self.snd_una, limit)))
            return
        pipe = rec.limited_transmit_pipe(self.snd_una, self.snd_max)
        while self.cc.cwnd - pipe >= self.mss and (sent := self._send_one(self.cc.cwnd - pipe)):
            pipe += sent
            rec.limited += sent

    def _take_window(self, seg: TCPSegment, force: bool = False) -> None:
        """Send window update (RFC 9293 3.10.7.4): only from a segment newer than the one
        that last set it (SND.WL1 < SEG.SEQ, or SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK)."""
        newer = seqnum.lt(self.snd_wl1, seg.seq) or (
            self.snd_wl1 == seg.seq and seqnum.le(self.snd_wl2, seg.ack))
        if not (force or newer):
            return
        # RFC 7323 2.2: the window of a SYN or SYN-ACK is never scaled.
        self.snd_wnd = seg.window << (0 if seg.flags & SYN else self.neg.snd_scale)
        self.snd_wl1, self.snd_wl2 = seg.seq, seg.ack
        self.max_snd_wnd = max(self.max_snd_wnd, self.snd_wnd)

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

    # ---------------------------------------------------------------- URG, text, FIN

    def _urgent(self, seg: TCPSegment) -> None:
        """RFC 9293 3.10.7.4 sixth step: RCV.UP <- max(RCV.UP, SEG.UP), signal the user.
        The pointer names the octet after the urgent data (MUST-62), or the last urgent octet
        with tcp_stdurg (RFC 1122 4.2.2.4); RCV.UP is kept as "octet after" either way."""
        if not seg.flags & URG or self.state not in RECEIVING:
            return
        up = seqnum.add(seg.seq, seg.urg + (1 if self.cfg.stdurg else 0))
        if self.rcv_up is None or seqnum.gt(up, self.rcv_up):
            if seqnum.gt(up, self.rcv_nxt):
                self.rcv_up = up
                self.oob_read = False
                self._fx.notices.append(Notice.URGENT)

    def _text_and_fin(self, seg: TCPSegment) -> None:
        """Seventh and eighth steps of RFC 9293 3.10.7.4."""
        if seg.payload and self.state in RECEIVING:
            if self.orphan:
                # RFC 1122 4.2.2.13: data arriving after CLOSE is lost; say so with a RST.
                # The TCB goes, and the RST is the one a CLOSED port gives this segment
                # (RFC 9293 3.10.7.1), <SEQ=SEG.ACK><CTL=RST>, as Linux answers.
                self._reset_and_close(seg)
                return
            self._text(seg)
        if seg.flags & FIN:
            self.fin_off = self.rcv_off + seqnum.diff(seg.seq, self.rcv_nxt) + len(seg.payload)
        if self.fin_off is not None and self.fin_off == self.rcv_off:
            self._fin()

    def _text(self, seg: TCPSegment) -> None:
        """Queue in-window text; in order it goes to the user, out of order to reassembly.
        RFC 5681 4.2: ACK at once for out-of-order data and for data that fills a gap."""
        if not self.stats["data_segs_in"] or self.now - self.last_data_recv > self.rtt.rto:
            self._enter_quick_ack()
        self.stats["data_segs_in"] += 1
        self.stats["bytes_received"] += len(seg.payload)
        self.last_data_recv = self.now
        start = self.rcv_off + seqnum.diff(seg.seq, self.rcv_nxt)
        had_gap = bool(self.reasm.blocks)
        self.reasm.add(start, seg.payload)
        data = self.reasm.pop(self.rcv_off)
        if not data:
            self.stats["ooo_packets"] += 1
            self._ack_due = True
            return
        self._deliver(data)
        if had_gap:
            self._ack_due = True
        else:
            self._ack_soon(len(data))

    def _deliver(self, data: bytes) -> None:
        """Append in-order octets for the user and advance RCV.NXT, noting where the last
        urgent octet is (the mark). Unless SO_OOBINLINE, that octet is taken out of the stream
        and kept as the out-of-band octet."""
        mark = -1 if self.rcv_up is None else seqnum.diff(self.rcv_up, self.rcv_nxt) - 1
        if 0 <= mark < len(data):
            self.mark = len(self.recvq) + mark
            if not self.opts.oobinline:
                self.oob = data[mark:mark + 1]
                data = data[:mark] + data[mark + 1:]
                self.rcv_nxt = seqnum.add(self.rcv_nxt, 1)
                self.rcv_off += 1
        self.recvq += data
        self.rcv_nxt = seqnum.add(self.rcv_nxt, len(data))
        self.rcv_off += len(data)
        self._fx.notices.append(Notice.READABLE)

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

    def _ack_fin_soon(self) -> None:
        """The ACK of a FIN entering CLOSE-WAIT, as Linux sends it: once data has arrived the
        connection turns interactive and the ACK waits up to the delayed-ACK time for the
        user's reply or CLOSE to carry it (RFC 9293 3.8.6.3 lets an ACK wait); before any data
        Linux has no ACK delay yet (its ATO starts at zero), so the ACK goes at once."""
        if not self.stats["data_segs_in"]:
            self._ack_due = True
            return
        self.pingpong = True
        if Timer.DELACK not in self.timers:
            self._arm(Timer.DELACK, self.cfg.delayed_ack)

    def _enter_time_wait(self) -> None:
        """TIME-WAIT: all other timers off, 2 MSL on (RFC 9293 3.10.7.4)."""
        self.state = State.TIME_WAIT
        self.timers.clear()
        self._arm(Timer.TIME_WAIT, 2 * self.cfg.msl)

    def _on_time_wait(self) -> None:
        self._terminate(None)

    def _on_fin_wait_2(self) -> None:
        self._terminate(None)

    # ---------------------------------------------------------------- sending

    @property
    def unsent(self) -> int:
        """Queued octets not yet sent."""
        return max(0, seqnum.diff(self.sendq.end, self.snd_nxt))

    def _fin_to_send(self) -> bool:
        """A queued FIN goes once all data before it is out (or again after a go-back)."""
        return (self.fin_queued and self.unsent == 0
                and (self.fin_seq is None or self.snd_nxt == self.fin_seq))

    def _output(self) -> None:
        """Send what the windows and the Nagle/SWS rules allow (RFC 9293 3.7.4, 3.8.6.2.1;
        RFC 1122 4.2.3.4), restarting cwnd after idle (RFC 5681 4.1)."""
        if self.flight == 0 and self.unsent and self.cfg.slow_start_after_idle \
                and self.now - self.last_send >= self.rtt.rto:
            self.cc.on_idle()
        if isinstance(self.recovery, SackRecovery) and self.recovery.active:
            self._recovery_output()
        else:
            while self._send_one():
                pass
        if self.unsent and self.flight == 0 and Timer.PERSIST not in self.timers:
            self._arm(Timer.PERSIST, self.rtt.rto)   # window closed or SWS holds data back

    def _recovery_output(self) -> None:
        """RFC 6675 5 (C): while cwnd - pipe >= SMSS, send what NextSeg() names: a
        retransmission (C.2 is NextSeg's), or new data (C.3); pipe grows by each (C.4)."""
        rec = self.recovery
        pipe = rec.pipe(self.snd_una, self.snd_max)
        while self.cc.cwnd - pipe >= self.mss:
            new_data = self._new_data_size(self.cc.cwnd - pipe) > 0
            choice = rec.next_seg(self.snd_una, self.snd_max, new_data)
            if choice is not None:
                start, end = choice
                sent = self._retransmit_at(start, seqnum.diff(end, start))
            else:
                sent = self._send_one(self.cc.cwnd - pipe) if new_data else 0
            if not sent:
                return
            pipe += sent

    def _new_data_size(self, budget: int | None = None) -> int:
        """How much new data (from SND.NXT) may go in one segment now: within the peer's
        window, the congestion budget (default cwnd less what is outstanding; in SACK
        recovery and limited transmit, cwnd - pipe) and the Nagle/SWS rules; 0 if none."""
        unsent = self.unsent
        in_flight = seqnum.diff(self.snd_nxt, self.snd_una)
        if budget is None:
            budget = self.cc.cwnd - in_flight
        size = min(unsent, self.snd_wnd - in_flight, budget, self.mss)
        if unsent and size > 0 and self._sws_allows(size, unsent, in_flight):
            return size
        return 0

    def _send_one(self, budget: int | None = None) -> int:
        """Send the next segment of data and/or FIN if allowed; returns the sequence space it
        took, 0 if nothing went (a FIN alone, which needs no window, also ends a loop).
        Going back over data after an RTO, octets SACKed since are skipped (RFC 6675 5.1)."""
        if isinstance(self.recovery, SackRecovery) and seqnum.lt(self.snd_nxt, self.snd_max):
            self.snd_nxt = self.recovery.board.sacked_end(self.snd_nxt)
        size = self._new_data_size(budget)
        if size:
            if isinstance(self.recovery, SackRecovery) and seqnum.lt(self.snd_nxt, self.snd_max):
                sacked = self.recovery.board.next_left(self.snd_nxt)
                if sacked is not None:
                    size = min(size, seqnum.diff(sacked, self.snd_nxt))
            payload = self.sendq.take(self.snd_nxt, size)
            last = size == self.unsent
            fin = last and self.fin_queued
            self._transmit(ACK | (PSH if last else 0) | (FIN if fin else 0), payload)
            return size + fin
        if not self.unsent and self._fin_to_send():
            self._transmit(ACK | FIN, b"")        # FIN needs no window, like BSD
        return 0

    def _sws_allows(self, size: int, unsent: int, in_flight: int) -> bool:
        """RFC 1122 4.2.3.4 sender SWS avoidance with Nagle (RFC 9293 3.7.4): send a full
        segment; or all queued data, or at least half the largest window the peer offered,
        unless Nagle holds it. Nagle here is Minshall's refinement, as in Linux: a short
        segment waits only while an earlier short segment is unacknowledged, so at most one
        is in flight (the aim of RFC 1122 4.2.3.4) and the tail of a bulk write is not held
        back for a round trip behind full-sized segments."""
        if size >= self.mss:
            return True
        if self.opts.cork:
            return False
        if in_flight and not self.opts.nodelay and seqnum.gt(self.snd_sml, self.snd_una):
            return False
        return size == unsent or size >= self.max_snd_wnd // 2

    def _transmit(self, flags: int, payload: bytes, seq: int | None = None) -> None:
        """Send data/FIN at `seq` (default SND.NXT), with the bookkeeping of RFC 6298 5.1
        (start the timer if off) and Karn (time only never-retransmitted data)."""
        seq = self.snd_nxt if seq is None else seq
        end = seqnum.add(seq, len(payload) + (1 if flags & FIN else 0))
        retransmission = seqnum.lt(seq, self.snd_max)
        if self.flight == 0:
            self.una_since = self.now
        self._segment(flags, seq, payload)
        if flags & FIN:
            self.fin_seq = seqnum.add(seq, len(payload))
        if payload and not retransmission and len(payload) < self.mss:
            self.snd_sml = end
        if payload:
            self.stats["data_segs_out"] += 1
            self.stats["bytes_sent"] += len(payload)
            self.last_send = self.now
            if self.stats["data_segs_in"] and self.now - self.last_data_recv < self.cfg.delayed_ack:
                self.pingpong = True             # a prompt reply: ACKs can ride on replies
        if retransmission:
            self.stats["total_retrans"] += 1
            self.stats["bytes_retrans"] += len(payload)
            if self.timing and seqnum.ge(self.timing[0], seq):
                self.timing = None
        elif self.timing is None and payload:
            self.timing = (seq, self.now)
        if seqnum.gt(end, self.snd_nxt):
            self.snd_nxt = end
        if seqnum.gt(end, self.snd_max):
            self.snd_max = end
        if Timer.RETRANSMIT not in self.timers:
            self._arm_retransmit()
        self._cancel(Timer.PERSIST)

    def _retransmit_first(self) -> None:
        """Resend the first unacknowledged segment (fast retransmit, partial ACK, timeout)."""
        self._retransmit_at(self.snd_una)

    def _retransmit_at(self, seq: int, limit: int | None = None) -> int:
        """Resend up to one MSS (at most `limit` octets) from `seq`, with the FIN if it is
        next; returns the sequence space resent."""
        size = min(self.mss, max(0, seqnum.diff(self.sendq.end, seq)))
        if limit is not None:
            size = min(size, limit)
        payload = self.sendq.take(seq, size)
        end = seqnum.add(seq, size)
        fin = self.fin_seq is not None and end == self.fin_seq
        if not payload and not fin:
            return 0
        push = payload and end == self.sendq.end
        self._transmit(ACK | (FIN if fin else 0) | (PSH if push else 0), payload, seq)
        return size + fin

    def _on_retransmit(self) -> None:
        """The retransmission timer expired (RFC 6298 5.4-5.6; RFC 1122 4.2.3.5 R1/R2;
        RFC 5681 3.1 loss window; RFC 6582 3.2 step 4 and RFC 6675 5.1 for recovery)."""
        self.retries += 1
        self.stats["timeouts"] += 1
        self.stats["timeout_episodes"] += self.retries == 1
        self.rtt.expired()
        if seqnum.le(self.snd_una, self.iss):       # our SYN is not acknowledged yet
            limit = self.cfg.syn_retries if self.state is State.SYN_SENT else self.cfg.synack_retries
            if self.retries > limit:
                self._terminate(None if self.passive else (self.soft_error or errno.ETIMEDOUT))
                return
            self.timing = None
            self._send_syn()
            self.stats["total_retrans"] += 1
            self._arm_retransmit()
            return
        if self.snd_wnd == 0:
            # RFC 9293 3.8.6 (SHLD-17): data stranded beyond a window shrunk to zero is no
            # reason to time out; its retransmissions are zero-window probes, given up only
            # when unanswered, like the persist timer's (RFC 1122 4.2.2.17).
            self.probes += 1
            given_up = self._given_up(self.probes, self.last_ack_recv)
        else:
            given_up = self._given_up(self.retries, self.una_since)
        if given_up:
            self._abort_timeout(reset=False)
            return
        if self.retries == self.cfg.retries1:
            # R1 reached: pass negative advice to IP (RFC 1122 4.2.3.5) and forget the path
            # MTU learned so far, which is this stack's only routing state.
            self._fx.notices.append(Notice.NEGATIVE_ADVICE)
            self.pmtu = self.cfg.mtu
            self.cc.set_mss(self.mss)
        self.cc.on_timeout(self.flight)
        self.recovery.on_timeout(self.snd_max)
        self.snd_nxt = self.snd_una                # go back
        self._retransmit_first()
        self._arm_retransmit()

    def _given_up(self, attempts: int, since: float) -> bool:
        """R2 (RFC 1122 4.2.3.5) as a count of unanswered attempts, or TCP_USER_TIMEOUT
        (RFC 5482) as the time unanswered since `since`."""
        if self.opts.user_timeout:
            return self.now - since >= self.opts.user_timeout
        return attempts > self.cfg.retries2

    def _abort_timeout(self, reset: bool) -> None:
        """Give up: RFC 9293 3.8.3 / 3.10.8 "connection aborted due to user timeout": flush,
        tell the user, delete the TCB; a soft ICMP error seen meanwhile is the reason reported
        (RFC 1122 4.2.3.9). The RFC sends nothing; a dead keep-alive peer gets a RST (`reset`)
        in case it is merely silent, as Linux does."""
        if reset:
            self._segment(RST | ACK, self.snd_max)
        self._terminate(self.soft_error or errno.ETIMEDOUT)

    def _on_persist(self) -> None:
        """Zero-window probe (RFC 9293 3.8.6.1, RFC 1122 4.2.2.17): one octet of new data,
        at exponentially backed-off intervals, for as long as the peer answers. With a
        non-zero window this is the SWS override timeout (RFC 1122 4.2.3.4)."""
        if not self.unsent:
            return
        if self._given_up(self.probes, self.last_ack_recv):
            self._abort_timeout(reset=False)
            return
        if self.snd_wnd == 0:
            self.probes += 1
            self.rtt.expired()
            self._segment(ACK, self.snd_nxt, self.sendq.take(self.snd_nxt, 1))
            self.snd_max = seqnum.add(self.snd_nxt, 1) if seqnum.ge(self.snd_nxt, self.snd_max) \
                else self.snd_max
        else:
            size = min(self.unsent, self.snd_wnd - seqnum.diff(self.snd_nxt, self.snd_una),
                       self.mss)
            if size > 0:
                self._transmit(ACK | PSH, self.sendq.take(self.snd_nxt, size))
        if Timer.RETRANSMIT not in self.timers:
            self._arm(Timer.PERSIST, self.rtt.rto)

    # ---------------------------------------------------------------- keep-alive

    def _keepalive_settings(self) -> tuple[float, float, int]:
        o, c = self.opts, self.cfg
        return (o.keepidle or c.keepalive_time, o.keepintvl or c.keepalive_intvl,
                o.keepcnt or c.keepalive_probes)

    def _arm_keepalive(self) -> None:
        if self.opts.keepalive and self.state in SYNCHRONIZED and self.state is not State.TIME_WAIT:
            self._arm(Timer.KEEPALIVE, self._keepalive_settings()[0])
        else:
            self._cancel(Timer.KEEPALIVE)

    @_event
    def keepalive_changed(self) -> None:
        """SO_KEEPALIVE or its timing changed: re-arm (RFC 1122 4.2.3.6)."""
        self._arm_keepalive()

    def _on_keepalive(self) -> None:
        """RFC 1122 4.2.3.6: after the idle time, probe with <SEQ=SND.UNA-1><ACK=RCV.NXT> and
        no data; give up after KEEPCNT unanswered probes. Traffic since resets the clock."""
        idle, interval, count = self._keepalive_settings()
        if self.flight or self.unsent:
            self._arm(Timer.KEEPALIVE, idle)     # the retransmission timer watches this
            return
        due = self.last_recv + idle              # a deadline, not a remainder: no float drift
        if self.probes == 0 and self.now < due:
            self.timers[Timer.KEEPALIVE] = due
            return
        if self.probes >= count:
            self._abort_timeout(reset=True)
            return
        self.probes += 1
        self._segment(ACK, seqnum.add(self.snd_una, -1))
        self._arm(Timer.KEEPALIVE, interval)

    # ---------------------------------------------------------------- ICMP

    @_event
    def on_icmp(self, error: IcmpError) -> None:
        """RFC 1122 4.2.3.9: hard errors (protocol/port unreachable) abort; soft errors are
        remembered and reported if the connection later times out; fragmentation needed lowers
        the MSS (RFC 1191). The quoted sequence number must lie in [SND.UNA, SND.MAX) (RFC
        5927 4.1), or the message is a forgery and is ignored."""
        if self.state is State.SYN_SENT:
            valid = error.seq == self.iss
        else:
            valid = seqnum.ge(error.seq, self.snd_una) and seqnum.lt(error.seq, self.snd_max)
        if not valid:
            return
        if error.mtu is not None:
            self._path_mtu(error.mtu)
        elif error.hard:
            self._terminate(error.errno)
        else:
            self.soft_error = error.errno

    def _path_mtu(self, mtu: int) -> None:
        """Fragmentation needed: take the smaller path MTU (not below 576, RFC 1191 3 / RFC
        9293 3.7.2), scaling cwnd with the segment size (RFC 5681 3.1), and resend what is in
        flight at the new size unless all of it fits one new segment, in which case no
        segment was too big to pass (like Linux's tcp_simple_retransmit)."""
        mtu = max(576, mtu)
        if mtu >= self.pmtu:
            return
        self.pmtu = mtu
        self.cc.set_mss(self.mss)
        if self.flight > self.mss:
            self.snd_nxt = self.snd_una
            self._retransmit_first()

    _TIMER_ACTIONS: dict[Timer, Callable[["Connection"], None]] = {
        Timer.RETRANSMIT: _on_retransmit,
        Timer.PERSIST: _on_persist,
        Timer.DELACK: _on_delack,
        Timer.KEEPALIVE: _on_keepalive,
        Timer.TIME_WAIT: _on_time_wait,
        Timer.FIN_WAIT_2: _on_fin_wait_2,
    }
