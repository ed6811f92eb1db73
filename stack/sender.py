"""The sending side of a connection: what may be sent and when, retransmission, and what an
ACK of our data does.

Theory of operation: `Sender` is one part of `Connection` (see connection.py) and works on the
same TCB. `_output` sends new data and FIN under the peer's window, the congestion window and
the Nagle/SWS rules (RFC 9293 3.7.4, RFC 1122 4.2.3.4); in SACK loss recovery it sends what
RFC 6675's NextSeg() names while cwnd - pipe allows. Every data segment goes through
`_transmit` (timer per RFC 6298 5.1, Karn's rule for RTT samples). An acceptable ACK releases
data, samples the RTT, grows or repairs the window through `congestion.Reno` with NewReno
(RFC 6582) or `sack.SackRecovery` (RFC 6675), and updates the send window (RFC 9293 3.10.7.4).
"""

from __future__ import annotations

from . import seqnum
from .congestion import NewReno
from .events import SYNCHRONIZED, Notice, Timer, event
from .sack import SackRecovery
from .wire import ACK, FIN, PSH, RST, SYN, URG, TCPSegment


class Sender:
    """Send sizes, output, retransmission, ACKs of our data (see the module comment)."""

    # ---------------------------------------------------------------- sizes

    @property
    def mss(self) -> int:
        """Eff.snd.MSS (RFC 9293 3.7.1 / RFC 1122 4.2.2.6): the peer's MSS, the path MTU and
        TCP_MAXSEG, less the fixed options each segment carries (RFC 6691)."""
        mss = min(self.neg.peer_mss, self.pmtu - 40)
        if self.opts.maxseg:
            mss = min(mss, self.opts.maxseg)
        return max(mss - (12 if self.neg.timestamps else 0), 64)

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
    def flight(self) -> int:
        """FlightSize (RFC 5681 2): octets sent and not yet acknowledged."""
        return max(0, seqnum.diff(self.snd_max, self.snd_una))

    @property
    def unsent(self) -> int:
        """Queued octets not yet sent."""
        return max(0, seqnum.diff(self.sendq.end, self.snd_nxt))

    # ---------------------------------------------------------------- user calls

    @event
    def send(self, data: bytes, urgent: bool = False) -> int:
        """SEND (RFC 9293 3.10.2): queue as much as the send buffer takes; returns the count.
        With `urgent`, SND.UP moves to the octet after the data (MUST-62)."""
        take = bytes(data[:self.send_space])
        self.sendq.append(take)
        if urgent and take:
            self.snd_up = self.sendq.end
        return len(take)

    @event
    def push(self) -> None:
        """Nothing but the send rules again (after TCP_CORK is cleared)."""

    # ---------------------------------------------------------------- sending

    def _fin_to_send(self) -> bool:
        """A queued FIN goes once all data before it is out (or again after a go-back)."""
        return (self.fin_queued and self.unsent == 0
                and (self.fin_seq is None or self.snd_nxt == self.fin_seq))

    def _output(self) -> None:
        """Send what the windows and the Nagle/SWS rules allow (RFC 9293 3.7.4, 3.8.6.2.1;
        RFC 1122 4.2.3.4), restarting cwnd after idle (RFC 5681 4.1)."""
        if self.snd_nxt == self.sendq.end and not self.fin_queued and not self.recovery.active:
            return                                   # nothing queued, nothing to repair
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
        going_back = self.snd_nxt != self.snd_max and isinstance(self.recovery, SackRecovery)
        if going_back:
            self.snd_nxt = self.recovery.board.sacked_end(self.snd_nxt)
        size = self._new_data_size(budget)
        if size:
            if going_back and seqnum.lt(self.snd_nxt, self.snd_max):
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
        self.timers.pop(Timer.PERSIST, None)

    def _mark_urgent(self, seg: TCPSegment) -> None:
        """RFC 9293 3.8.5 / MUST-62: while SND.UP is ahead, segments carry URG and a pointer to
        the octet after the urgent data (tcp_stdurg: to the last urgent octet, RFC 1122 4.2.2.4);
        a pointer too far for 16 bits is sent as 0xFFFF (RFC 6093 4)."""
        if self.snd_up is None or seg.flags & (SYN | RST) or not seqnum.lt(seg.seq, self.snd_up):
            return
        pointer = seqnum.diff(self.snd_up, seg.seq) - (1 if self.cfg.stdurg else 0)
        seg.flags |= URG
        seg.urg = min(pointer, 0xFFFF)

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

    # ---------------------------------------------------------------- acknowledgments of our data

    def _ack_advance(self, seg: TCPSegment, syn_counted: bool = True) -> None:
        """SND.UNA < SEG.ACK =< SND.NXT: release, sample the RTT, grow cwnd, restart the
        retransmission timer (RFC 9293 3.10.7.4; RFC 6298 5.2-5.3; RFC 5681 3).
        `syn_counted`: whether tcpi_bytes_acked counts the SYN; Linux counts an active
        open's and not a passive open's, and TCP_INFO here reads as Linux's does."""
        acked = seqnum.diff(seg.ack, self.snd_una)
        self.sendq.release(seg.ack)
        self.stats["bytes_acked"] += acked if syn_counted else acked - 1
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

    def _is_dupack(self, seg: TCPSegment) -> bool:
        """RFC 5681 2 DUPLICATE ACKNOWLEDGMENT, for a connection without SACK: data
        outstanding, no data or SYN/FIN, same ACK and same window. (With SACK, RFC 6675 2
        counts ACKs that SACK new data instead: `SackRecovery.on_ack`.)"""
        return (seg.ack == self.snd_una and seqnum.gt(self.snd_nxt, self.snd_una)
                and not seg.payload
                and not seg.flags & (SYN | FIN)
                and seg.window << self.neg.snd_scale == self.snd_wnd)

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
        rec = self.recovery
        if rec.on_dupack(seg.ack, self.flight, self.snd_max):
            self._retransmit_first()               # RFC 5681 3.2 step 2: fast retransmit
        elif self.snd_nxt == self.snd_max:          # limited transmit sends only new data
            budget = rec.limited_transmit_budget(self.flight)
            if budget:
                rec.limited += self._send_one(budget)

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
