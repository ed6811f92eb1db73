"""Timers, and how a connection learns that its peer or path is failing: the retransmission
timeout, zero-window probing, keep-alive and ICMP errors.

Theory of operation: `Timeouts` is one part of `Connection` (see connection.py). Timers are
deadlines in `Connection.timers`; the host wakes the connection at the earliest and
`Connection.on_timer` runs what is due. An RTO backs off (RFC 6298 5.5), collapses the window
(RFC 5681 3.1), ends fast recovery (RFC 6582, RFC 6675 5.1) and goes back to SND.UNA; R1 gives
negative advice and R2 or TCP_USER_TIMEOUT gives up (RFC 1122 4.2.3.5, RFC 5482). The persist
timer probes a zero window (RFC 9293 3.8.6.1), keep-alive probes an idle peer (RFC 1122
4.2.3.6), and ICMP errors abort or are remembered (RFC 1122 4.2.3.9, RFC 5927).
"""

from __future__ import annotations

import errno

from . import seqnum
from .events import SYNCHRONIZED, IcmpError, Notice, State, Timer, event
from .wire import ACK, PSH, RST

TICK = 0.001      # seconds: the shortest a timer waits (a jiffy at HZ=1000)


class Timeouts:
    """Timers, RTO, persist, keep-alive and ICMP errors (see the module comment)."""

    # ---------------------------------------------------------------- arming

    def _arm(self, timer: Timer, delay: float) -> None:
        """A timer runs `delay` from now, and at least one tick from now: like a kernel timer
        set for no time, which fires at the next jiffy. A timer that re-arms itself with no
        delay (keep-alive with tcp_keepalive_time 0 while data is in flight) would otherwise
        come due at the same instant for ever, and a virtual clock would never move on."""
        self.timers[timer] = self.now + max(delay, TICK)

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

    # --------------------------------------------------------- retransmission and persist timeouts

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
        if self.snd_wnd == 0 and self.cfg.zero_window_probe == "empty":
            self.probes += 1
            self.rtt.expired()
            self._segment(ACK, seqnum.add(self.snd_una, -1))   # an old octet's place: ACKed at once
        elif self.snd_wnd == 0:
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

    @event
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

    @event
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
