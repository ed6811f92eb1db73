"""The receiving side of a connection: the window it offers, which segments it accepts, when
it acknowledges, and how text and urgent data reach the user.

Theory of operation: `Receiver` is one part of `Connection` (see connection.py) and works on the
same TCB. The window offered follows receiver-side SWS avoidance (RFC 9293 3.8.6.2.2) and never
shrinks; a segment is acceptable by the four cases of RFC 9293 3.10.7.4 and PAWS (RFC 7323),
and what lies outside the window is trimmed. In-order text goes to `recvq`, out-of-order text
to reassembly (buffers.Reassembly), reported back in SACK blocks (RFC 2018). ACKs are delayed
(RFC 9293 3.8.6.3, RFC 1122 4.2.3.2) but at least every second full segment (RFC 5681 4.2), at
once for out-of-order data, and in quick-ACK mode as Linux. The urgent pointer and the
out-of-band octet follow RFC 9293 3.8.5 / RFC 6093.
"""

from __future__ import annotations

from dataclasses import replace

from . import seqnum
from .events import RECEIVING, Notice, Timer, event
from .wire import ACK, FIN, RST, SYN, URG, TCPSegment


class Receiver:
    """Receive window, acceptability, ACK policy, text and urgent data (see the module comment)."""

    # ---------------------------------------------------------------- windows

    @property
    def adv_mss(self) -> int:
        """The MSS we announce: at most MTU - 40 (RFC 9293 3.7.1, MUST-67), less the profile's
        headroom, lowered by TCP_MAXSEG."""
        mss = self.cfg.mtu - 40 - self.cfg.mss_headroom
        return min(mss, self.opts.maxseg) if self.opts.maxseg else mss

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
    def rcv_wnd(self) -> int:
        """RCV.WND: what remains of the window last advertised."""
        return max(0, seqnum.diff(self.rcv_adv, self.rcv_nxt))

    def _free_space(self) -> int:
        return max(0, self.rcv_capacity - len(self.recvq) - len(self.reasm))

    def _window_to_offer(self, current: int | None = None) -> int:
        """The window for the next segment, with receiver-side SWS avoidance (RFC 9293
        3.8.6.2.2 / RFC 1122 4.2.3.3): the right edge moves only by min(buffer/2, MSS) or more,
        and it never moves left (RFC 9293 3.8.6.2.2, SHLD-14). `current`: RCV.WND if known."""
        if current is None:
            current = self.rcv_wnd
        free = self._free_space()
        if free - current >= min(self.rcv_capacity // 2, self.rcv_mss):
            return free
        return current

    def _window_field(self) -> int:
        """The 16-bit window field, scaled (RFC 7323 2.3); updates RCV.ADV accordingly."""
        current = self.rcv_wnd
        window = self._window_to_offer(current)
        shift = self.neg.rcv_scale
        value = window >> shift
        if (value << shift) < current:
            value += 1                           # round up rather than shrink the window
        value = min(value, 0xFFFF)
        self.rcv_adv = seqnum.add(self.rcv_nxt, value << shift)
        return value

    def _syn_window(self) -> int:
        """The unscaled window of a SYN or SYN-ACK (RFC 7323 2.2), a whole number of
        segments like Linux's (e.g. 64240 = 44 * 1460)."""
        return min(self.rcv_capacity, 0xFFFF) // self.rcv_mss * self.rcv_mss

    # --------------------------------- acceptability (RFC 9293 3.10.7.4 first step, RFC 7323 PAWS)

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

    # ---------------------------------------------------------------- acknowledgments

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
        if not self.cfg.quick_ack:
            return
        wanted = min(max(self.rcv_wnd // (2 * self.rcv_mss), 2), 16)
        self.quick_acks = max(self.quick_acks, wanted)

    def _on_delack(self) -> None:
        """The delayed ACK went out alone: no reply carried it, so the connection is not
        interactive after all (Linux leaves pingpong mode here)."""
        self._ack_due = True
        self.pingpong = False

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

    # ------------------------------------ URG and text (RFC 9293 3.10.7.4 sixth and seventh steps)

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
        had_gap = bool(self.reasm.blocks)
        if not had_gap and seg.seq == self.rcv_nxt:
            self._deliver(seg.payload)                 # in order, nothing held: no reassembly
            self._ack_soon(len(seg.payload))
            return
        start = self.rcv_off + seqnum.diff(seg.seq, self.rcv_nxt)
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

    # ---------------------------------------------------------------- user calls

    @event
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

    @property
    def at_mark(self) -> bool:
        """SIOCATMARK: everything before the last urgent octet has been read."""
        return self.mark == 0

    @property
    def urgent_pending(self) -> bool:
        """The last urgent octet has arrived and is unread (Linux's POLLPRI)."""
        return self.oob is not None or (self.opts.oobinline and self.mark is not None)

    @event
    def set_quickack(self, on: bool) -> None:
        """TCP_QUICKACK (Linux): off marks the connection interactive, so that ACKs wait for
        a reply to ride on (RFC 1122 4.2.3.2's delay); on ends that and sends a pending ACK."""
        self.pingpong = not on
        if on and Timer.DELACK in self.timers:
            self._ack_due = True

    @event
    def read_urgent(self) -> bytes | None:
        """The out-of-band octet (Linux MSG_OOB), or None if there is none."""
        data, self.oob = self.oob, None
        self.oob_read = data is not None
        return data
