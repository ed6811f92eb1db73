"""Mutants of the timers: retransmission timeout and backoff (RFC 6298, RFC 1122 4.2.3.1),
giving up (R1/R2, user timeout), zero-window probes, keep-alive, and ICMP errors."""

from __future__ import annotations

import errno

from stack import icmp, seqnum, socket as stack_socket
from stack.config import SocketOptions
from stack.connection import Connection
from stack.events import State, Timer
from stack.rtt import RttEstimator

from harness.mutate.patching import config, constant, event_method, guard, method, mutant

C = Connection


def _rto_power(base: int):
    def build(orig):
        return property(lambda self: min(self.base_rto * (base ** self.backoff), self.cfg.rto_max))
    return build


def _rto_without_variance(orig):
    def sample(self: RttEstimator, rtt: float) -> None:
        orig(self, rtt)
        self.base_rto = min(max(self.srtt, self.cfg.rto_min), self.cfg.rto_max)
    return sample


def _no_karn(orig):
    """Time every segment, a retransmission included, when nothing is being timed."""
    def transmit(self: Connection, flags: int, payload: bytes, seq: int | None = None) -> None:
        start = self.snd_nxt if seq is None else seq
        orig(self, flags, payload, seq)
        if payload and seqnum.lt(start, self.snd_max) and (
                self.timing is None or seqnum.ge(self.timing[0], start)):
            self.timing = (start, self.now)
    return transmit


def _resend_newest(orig):
    def first(self: Connection) -> None:
        newest = seqnum.add(self.snd_max, -min(self.mss, self.flight))
        self._retransmit_at(newest if seqnum.gt(newest, self.snd_una) else self.snd_una)
    return first


def _timeout_sends_nothing(orig):
    def expired(self: Connection) -> None:
        if seqnum.le(self.snd_una, self.iss):
            return orig(self)
        nxt = self.snd_nxt
        self._retransmit_first = lambda: None
        try:
            orig(self)
        finally:
            del self._retransmit_first
        self.snd_nxt = nxt                       # and no going back either
    return expired


def _syn_not_backed_off(orig):
    def expired(self: Connection) -> None:
        syn = seqnum.le(self.snd_una, self.iss)
        orig(self)
        if syn and Timer.RETRANSMIT in self.timers:
            self.rtt.backoff = 0
            self._arm_retransmit()
    return expired


def _user_timeout_ignored(orig):
    def expired(self: Connection) -> None:
        saved = self.opts.user_timeout
        self.opts.user_timeout = 0.0
        try:
            orig(self)
        finally:
            self.opts.user_timeout = saved
    return expired


def _persist_no_backoff(orig):
    def probe(self: Connection) -> None:
        backoff = self.rtt.backoff
        orig(self)
        self.rtt.backoff = backoff
        if Timer.PERSIST in self.timers:
            self._arm(Timer.PERSIST, self.rtt.rto)
    return probe


def _probe_at_once(orig):
    def output(self: Connection) -> None:
        armed = Timer.PERSIST in self.timers
        orig(self)
        if not armed and Timer.PERSIST in self.timers and self.snd_wnd == 0:
            self._arm(Timer.PERSIST, 0.01)
    return output


def _probes_give_up(orig):
    """Count the probes since the window closed, answered or not, and give up after 3."""
    def probe(self: Connection) -> None:
        sent = self.__dict__.get("mutant_probes", 0) + 1 if self.snd_wnd == 0 else 0
        self.__dict__["mutant_probes"] = sent
        if sent > 3:
            self._abort_timeout(reset=False)
            return
        orig(self)
    return probe


def _stranded_data_times_out(orig):
    def expired(self: Connection) -> None:
        if self.snd_wnd == 0 and self.retries >= 3 and seqnum.gt(self.snd_una, self.iss):
            self._abort_timeout(reset=False)
            return
        orig(self)
    return expired


def _keepalive_on(orig):
    def init(self: SocketOptions, *args, **kwargs) -> None:
        orig(self, *args, **kwargs)
        self.keepalive = True
    return init


def _keepalive_not_idle(orig):
    def fire(self: Connection) -> None:
        if self.probes == 0:
            self.last_recv = -1e9
        orig(self)
    return fire


def _keepalive_with_octet(orig):
    def fire(self: Connection) -> None:
        orig(self)
        for seg in self._fx.segments:
            if seg.seq == seqnum.add(self.snd_una, -1) and not seg.payload:
                seg.payload = b"\0"
    return fire


def _icmp_soft_aborts(orig):
    def on_icmp(self: Connection, error) -> None:
        orig(self, error)
        if self.soft_error is not None and self.state is not State.CLOSED:
            self._terminate(self.soft_error)
    return on_icmp


def _icmp_hard_soft(orig):
    def on_icmp(self: Connection, error) -> None:
        if error.hard:
            error = type(error)(error.errno, False, error.seq, error.mtu)
        orig(self, error)
    return on_icmp


def _icmp_soft_forgotten(orig):
    def on_icmp(self: Connection, error) -> None:
        orig(self, error)
        self.soft_error = None
    return on_icmp


def _source_quench_aborts(orig):
    def classify(msg):
        if msg.type == 4:            # Source Quench (RFC 792), deprecated by RFC 6633
            return errno.ECONNRESET, True, None
        return orig(msg)
    return classify


MUTANTS = [
    # retransmission timeout
    mutant("rto-not-backed-off", ["rfc9293:MUST-19", "rfc1122:4.2.3.1-c"],
           "the RTO is not doubled when the retransmission timer expires",
           guard(RttEstimator, "expired", lambda self: True)),
    mutant("rto-backoff-tripled", ["rfc9293:MUST-18", "rfc1122:4.2.3.1-c"],
           "each expiry multiplies the RTO by 3 instead of 2 (RFC 6298 5.5)",
           method(RttEstimator, "rto", _rto_power(3))),
    mutant("rto-initial-200ms", ["rfc1122:4.2.3.1-e", "rfc1122:4.2.3.1-d"],
           "the initial RTO is 200 ms instead of 1 s (RFC 6298 2.1)", config(rto_initial=0.2)),
    mutant("rto-without-variance", ["rfc1122:4.2.3.1-b", "rfc9293:MUST-18"],
           "RTO = SRTT, without the 4*RTTVAR term (RFC 6298 2.3)",
           method(RttEstimator, "sample", _rto_without_variance)),
    mutant("rtt-samples-ignored", ["rfc1122:4.2.3.1-b", "rfc9293:MUST-18"],
           "RTT samples are thrown away: RTO stays at its initial value",
           guard(RttEstimator, "sample", lambda self, rtt: True)),
    mutant("no-karn", ["rfc1122:4.2.3.1-a", "rfc9293:MUST-18"],
           "retransmitted segments are timed for RTT samples (no Karn's algorithm)",
           method(C, "_transmit", _no_karn)),
    mutant("rto-resends-newest-segment", ["rfc793:transition:ANY:retransmission-timeout"],
           "a timeout resends the last segment sent instead of the first unacknowledged one",
           method(C, "_retransmit_first", _resend_newest)),
    mutant("rto-resends-nothing", ["rfc793:transition:ANY:retransmission-timeout"],
           "a timeout backs off the timer but resends no data",
           method(C, "_on_retransmit", _timeout_sends_nothing)),
    mutant("syn-rto-not-backed-off", ["rfc1122:4.2.3.1-d", "rfc1122:4.2.3.1-c"],
           "SYN retransmissions keep the initial RTO instead of backing off",
           method(C, "_on_retransmit", _syn_not_backed_off)),
    # giving up (RFC 1122 4.2.3.5, RFC 5482)
    mutant("r2-never-reached", ["rfc1122:4.2.3.5-b", "rfc9293:MUST-20"],
           "retransmission never gives up, whatever R2 says",
           constant(C, "_given_up", False)),
    mutant("r2-too-small", ["rfc9293:SHLD-11", "rfc1122:4.2.3.5-e"],
           "R2 is 2 retransmissions (well under 100 s)",
           config(sysctl="net.ipv4.tcp_retries2", retries2=2)),
    mutant("user-timeout-ignored", ["rfc9293:MUST-21", "rfc1122:4.2.3.5-c",
                                    "rfc793:transition:ANY:user-timeout"],
           "the user timeout the application sets (TCP_USER_TIMEOUT) is ignored",
           method(C, "_on_retransmit", _user_timeout_ignored),
           method(C, "_arm_retransmit", lambda orig: lambda self: self.timers.__setitem__(
               Timer.RETRANSMIT, self.now + self.rtt.rto))),
    mutant("syn-retries-unbounded", ["rfc9293:MUST-22", "rfc1122:4.2.3.5-f"],
           "SYN and SYN-ACK retransmission never gives up", config(syn_retries=1000,
                                                                  synack_retries=1000)),
    # zero-window probing (RFC 9293 3.8.6.1, RFC 1122 4.2.2.17)
    mutant("zero-window-not-probed", ["rfc9293:MUST-35", "rfc9293:MUST-36", "rfc1122:4.2.2.17-b"],
           "a zero window is never probed",
           guard(C, "_on_persist", lambda self: self.snd_wnd == 0)),
    mutant("zero-window-probe-not-backed-off", ["rfc9293:SHLD-30", "rfc1122:4.2.2.17-d"],
           "zero-window probes come at a constant interval",
           method(C, "_on_persist", _persist_no_backoff)),
    mutant("zero-window-probe-at-once", ["rfc9293:SHLD-29", "rfc1122:4.2.2.17-c"],
           "the first zero-window probe goes 10 ms after the window closed, not one RTO",
           method(C, "_output", _probe_at_once)),
    mutant("zero-window-probes-give-up", ["rfc9293:MUST-37", "rfc1122:4.2.2.17-e", "rfc1122:4.2.2.17-f"],
           "the connection is aborted after 3 zero-window probes even though they are answered",
           method(C, "_on_persist", _probes_give_up)),
    mutant("stranded-data-times-out", ["rfc9293:SHLD-17"],
           "data beyond a window shrunk to zero times the connection out after 3 retransmissions",
           method(C, "_on_retransmit", _stranded_data_times_out)),
    # keep-alive (RFC 1122 4.2.3.6)
    mutant("keepalive-on-by-default", ["rfc9293:MUST-25", "rfc1122:4.2.3.6-c"],
           "keep-alives are on unless the application turns them off",
           method(SocketOptions, "__init__", _keepalive_on)),
    mutant("keepalive-cannot-be-enabled", ["rfc9293:MUST-24", "rfc1122:4.2.3.6-b"],
           "SO_KEEPALIVE has no effect: no keep-alive is ever sent",
           method(C, "_arm_keepalive", lambda orig: lambda self: self._cancel(Timer.KEEPALIVE))),
    mutant("keepalive-default-one-hour", ["rfc9293:MUST-28", "rfc1122:4.2.3.6-f"],
           "the default keep-alive idle time is one hour",
           config(sysctl="net.ipv4.tcp_keepalive_time", keepalive_time=3600.0)),
    mutant("keepalive-idle-not-configurable", ["rfc9293:MUST-27", "rfc1122:4.2.3.6-e"],
           "TCP_KEEPIDLE and TCP_KEEPINTVL are ignored",
           method(C, "_keepalive_settings", lambda orig: lambda self: (
               self.cfg.keepalive_time, self.cfg.keepalive_intvl,
               self.opts.keepcnt or self.cfg.keepalive_probes))),
    mutant("keepalive-one-probe-kills", ["rfc9293:MUST-29", "rfc1122:4.2.3.6-g"],
           "one unanswered keep-alive probe aborts the connection",
           guard(C, "_on_keepalive", lambda self: self.probes >= 1 and not (self.flight or self.unsent),
                 lambda self: self._abort_timeout(reset=True))),
    mutant("keepalive-ignores-traffic", ["rfc9293:MUST-26", "rfc1122:4.2.3.6-d"],
           "keep-alive probes go at the idle time after the handshake even if segments arrived since",
           method(C, "_on_keepalive", _keepalive_not_idle)),
    mutant("keepalive-probe-carries-octet", ["rfc9293:SHLD-12"],
           "keep-alive probes carry one octet of data",
           method(C, "_on_keepalive", _keepalive_with_octet)),
    # ICMP (RFC 1122 4.2.3.9)
    mutant("icmp-ignored", ["rfc9293:MUST-54", "rfc1122:4.2.3.9-a"],
           "ICMP errors are never passed to the connection",
           event_method("on_icmp", lambda orig: lambda self, error: None)),
    mutant("soft-icmp-aborts", ["rfc9293:MUST-56", "rfc1122:4.2.3.9-c", "rfc1122:4.2.3.9-f",
                                "rfc1122:4.2.3.9-g"],
           "a soft ICMP error (unreachable 0/1/5, time exceeded, parameter problem) aborts",
           event_method("on_icmp", _icmp_soft_aborts)),
    mutant("hard-icmp-not-aborting", ["rfc9293:SHLD-26", "rfc1122:4.2.3.9-d"],
           "protocol and port unreachable are treated as soft errors",
           event_method("on_icmp", _icmp_hard_soft)),
    mutant("soft-icmp-not-reported", ["rfc9293:MUST-47", "rfc9293:SHLD-25", "rfc1122:4.2.3.9-b",
                                      "rfc1122:4.2.4.1-a"],
           "soft ICMP errors are forgotten, never reported to the application",
           event_method("on_icmp", _icmp_soft_forgotten)),
    mutant("soft-errors-always-reported", ["rfc9293:SHLD-20", "rfc1122:4.2.4.1-b"],
           "soft ICMP errors are reported at once even with IP_RECVERR off (no way to turn it off)",
           method(stack_socket.Socket, "_soft_error_pending", lambda orig: lambda self:
                  self.conn is not None and bool(self.conn.soft_error))),
    mutant("source-quench-aborts", ["rfc9293:MUST-55"],
           "an ICMP Source Quench aborts the connection",
           method(icmp, "classify", _source_quench_aborts)),
]
