"""Host-wide TCP settings: Linux sysctl names in, one frozen `Config` out.

Theory of operation: a `Config` holds every knob the TCP core reads. Its defaults follow the
RFCs; where an RFC leaves a choice open they take Linux's (each such choice is noted beside the
field). `PROFILES` names sets of other choices: "linux" reproduces Linux's where it departs from
the RFCs' recommendations, "alt" takes, wherever the RFCs leave a choice, one unlike Linux's, so
that a case which accepts only Linux's choice fails on it. `Config.from_sysctls` maps the
`net.ipv4.tcp_*` names a case sets onto the fields and returns the names it cannot honour,
which the host lists as `unsupported_sysctls`. The per-socket options (setsockopt) live in
`SocketOptions`, which the socket layer owns and the connection reads.

The choices, per profile (targets `stack`, `stack-linux`, `stack-alt`):

| field             | rfc (`stack`) | linux        | alt          | RFC text that leaves the choice          |
|-------------------|---------------|--------------|--------------|------------------------------------------|
| rto_min           | 1 s           | 200 ms       | 1 s          | RFC 6298 2.4 ("SHOULD be rounded up to 1 second") |
| msl               | 120 s         | 30 s         | 120 s        | RFC 9293 3.4.2 (2 minutes, "an engineering choice") |
| initial_window    | RFC 5681 3.1  | 10 (RFC 6928) | 2 segments  | RFC 5681 3.1 (an upper bound: 2, 3 or 4 SMSS by SMSS) |
| delayed_ack       | 40 ms         | 40 ms        | 200 ms       | RFC 1122 4.2.3.2, RFC 9293 MUST-40 (< 0.5 s) |
| quick_ack         | on            | on           | off          | RFC 5681 4.2 (an ACK may always come early) |
| rfc5961           | on            | on           | off          | RFC 9293 3.10.7.4 (RFC 793 3.9 without RFC 5961) |
| rst_window        | 0             | 0            | 4096         | RFC 9293 3.10.7.1/3.10.7.4 (no meaning for a RST's window) |
| full_ack_option   | 1             | 1            | 2            | RFC 6582 3.2 step 3, options (1) and (2) |
| zero_window_probe | octet         | empty        | octet        | RFC 9293 3.8.6.1, RFC 1122 4.2.2.17 (probing, no form) |
| isn_tick          | 4 us          | 64 ns        | 4 us         | RFC 9293 3.4.1 ("roughly 4 microseconds"), RFC 6528 |
| mss_headroom      | 0 (MSS 1460)  | 0 (1460)     | 60 (1400)    | RFC 9293 3.7.1 (MSS "less than or equal to" MMS_R - 20) |

Linux's choices and Linux's departures are both in "linux"; "alt" differs from Linux in every
row (for the ISN clock, MSL, RTO floor and probe form it keeps the RFCs' own value, which is
not Linux's). The comment beside each field quotes the RFC text.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class Config:
    mtu: int = 1500
    timestamps: bool = True              # RFC 7323; net.ipv4.tcp_timestamps
    sack: bool = True                    # RFC 2018; net.ipv4.tcp_sack
    window_scaling: bool = True          # RFC 7323; net.ipv4.tcp_window_scaling
    # RFC 9293 MUST-23 / RFC 1122 4.2.3.5: a SYN is retransmitted for at least 3 minutes.
    # Linux's 6 retries give up after 127 s; 7 retries (1+2+...+128 s = 255 s) conform.
    syn_retries: int = 7
    synack_retries: int = 7
    retries1: int = 3                    # R1, RFC 1122 4.2.3.5 (Linux tcp_retries1)
    retries2: int = 15                   # R2, RFC 1122 4.2.3.5 (Linux tcp_retries2)
    rmem: tuple[int, int, int] = (4096, 131072, 6291456)   # min, default SO_RCVBUF, max
    wmem: tuple[int, int, int] = (4096, 16384, 4194304)    # min, default SO_SNDBUF, max
    congestion_control: str = "reno"     # any name is accepted; RFC 5681 is what runs
    fin_timeout: float = 60.0            # orphaned FIN-WAIT-2 lifetime (Linux tcp_fin_timeout)
    keepalive_time: float = 7200.0       # RFC 1122 4.2.3.6: no less than two hours
    keepalive_intvl: float = 75.0
    keepalive_probes: int = 9
    rfc1337: bool = False                # True: a RST does not end TIME-WAIT (RFC 1337)
    stdurg: bool = False                 # True: urgent pointer names the last urgent octet
    slow_start_after_idle: bool = True   # RFC 5681 4.1
    # Delayed-ACK timer. RFC 1122 4.2.3.2 (RFC 9293 MUST-40): "the delay MUST be less than
    # 0.5 seconds"; 40 ms is Linux's TCP_ATO_MIN, its delay once quick-ACK mode has ended.
    delayed_ack: float = 0.040
    # Linux's quick-ACK mode: the first data segments of a connection are acknowledged at once.
    # RFC 1122 4.2.3.2 bounds how late an ACK may be ("MUST be less than 0.5 seconds"), not
    # how early; RFC 5681 4.2's "SHOULD be used" delayed ACK is what False does from the start.
    quick_ack: bool = True
    rto_initial: float = 1.0             # RFC 6298 2.1
    # RFC 6298 2.4: "if it is less than 1 second, then the RTO SHOULD be rounded up to 1
    # second". Linux's TCP_RTO_MIN of 200 ms departs from that SHOULD.
    rto_min: float = 1.0
    rto_max: float = 120.0               # RFC 6298 2.5 allows a maximum of at least 60 s
    clock_granularity: float = 0.001     # G of RFC 6298 2.2
    # Segments; None: RFC 5681 3.1's bound itself (3 segments at SMSS 1096..2190). The rules
    # are an upper bound ("IW ... MUST be set using the following guidelines as an upper
    # bound"), so any smaller IW is allowed; Linux's 10 (RFC 6928, experimental) exceeds it.
    initial_window: int | None = None
    # RFC 9293 3.4.2: "For this specification the MSL is taken to be 2 minutes. This is an
    # engineering choice, and may be changed". Linux's TIME-WAIT of 60 s is an MSL of 30 s.
    msl: float = 120.0
    # RFC 5961's checks on RST (3.2), SYN (4.2) and old ACKs (5.2) in synchronized states, or
    # (False) RFC 793 3.9's processing: RFC 9293 3.10.7.4, "For implementations that do not
    # follow RFC 5961, the original behavior described in RFC 793 follows".
    rfc5961: bool = True
    # The window field of a RST without ACK. RFC 9293's reset is <SEQ=SEG.ACK><CTL=RST>
    # (3.10.7.1), which names no window, and RST processing (3.10.7.4) reads only SEG.SEQ.
    rst_window: int = 0
    # RFC 6582 3.2 step 3 on a full ACK, "Set cwnd to either (1) min (ssthresh, max(FlightSize,
    # SMSS) + SMSS) or (2) ssthresh": 1 or 2.
    full_ack_option: int = 1
    # A zero-window probe. RFC 9293 3.8.6.1: "transmit at least one octet of new data (if
    # available), or retransmit": "octet"; RFC 1122 4.2.2.17 requires probing (MUST), not a
    # form, and "empty" is Linux's segment without data at SND.UNA - 1, which draws an ACK.
    zero_window_probe: str = "octet"
    # RFC 9293 3.4.1: the ISN clock "typically increments at least once every roughly 4
    # microseconds"; Linux's (secure_tcp_seq) ticks every 64 ns.
    isn_tick: float = 4e-6
    # Octets the MSS we announce stays below the largest we could receive. RFC 9293 3.7.1:
    # "the MSS value to be sent in an MSS Option must be less than or equal to: MMS_R - 20"
    # (MUST-67), the link's MTU less 40 here: a bound, so any smaller value is allowed (a host
    # behind a tunnel announces less); Linux announces the bound itself.
    mss_headroom: int = 0
    invalid_ratelimit: float = 0.5       # spacing of ACKs for out-of-window pure ACKs/SYNs
    challenge_ack_limit: int = 1000      # RFC 5961 7: challenge ACKs per second per host

    @classmethod
    def from_sysctls(cls, sysctl: dict[str, object] | None, **overrides: object
                     ) -> tuple["Config", list[str]]:
        """The config for these sysctls and keyword overrides, and the sysctls not honoured."""
        values: dict[str, object] = {}
        unsupported: list[str] = []
        for name, raw in (sysctl or {}).items():
            short = name.removeprefix("net.ipv4.")
            try:
                if short == "tcp_ecn" and _int(raw) == 0:
                    continue          # ECN off is what this stack does anyway
                convert = _SYSCTLS.get(short)
                if convert is None:
                    unsupported.append(name)
                    continue
                target, value = convert(raw)
            except (ValueError, IndexError):   # what writing it to /proc/sys gives on Linux
                raise ValueError(f"sysctl {name} = {str(raw)[:40]}: Invalid argument") from None
            values[target] = value
        known = {f.name for f in fields(cls)}
        bad = set(overrides) - known
        if bad:
            raise TypeError(f"unknown Host settings: {sorted(bad)}")
        return replace(cls(), **values, **overrides), unsupported


PROFILES: dict[str, dict[str, object]] = {
    # The RFCs' choices: the defaults above.
    "rfc": {},
    # Linux 6.x where it departs from the defaults: TCP_RTO_MIN 200 ms, TCP_TIMEWAIT_LEN 60 s
    # (MSL 30 s), TCP_INIT_CWND 10 (RFC 6928), zero-length window probes (tcp_xmit_probe_skb),
    # an ISN clock of 64 ns ticks (secure_tcp_seq).
    "linux": {"rto_min": 0.2, "msl": 30.0, "initial_window": 10, "zero_window_probe": "empty",
              "isn_tick": 64e-9},
    # Wherever the RFCs leave a choice, one unlike Linux's: delayed ACKs of 200 ms with no
    # quick-ACK mode (RFC 1122 4.2.3.2 allows up to 0.5 s), an initial window of 2 segments
    # (RFC 5681 3.1's rule for SMSS > 2190, "MUST NOT be more than 2 segments", is the smallest
    # of its three bounds, so 2 segments is allowed at every SMSS; it is also RFC 3390's
    # min(4*SMSS, max(2*SMSS, 4380)) taken at its lower end), RFC 793 reset and SYN processing
    # (RFC 9293 3.10.7.4: RFC 5961 is optional), resets that carry a window (RFC 9293 gives it
    # no meaning), NewReno's second full-ACK option (RFC 6582 3.2), an MSS 60 octets below the
    # MTU less 40 (1400 on a 1500-octet link; RFC 9293 3.7.1 bounds it from above only). The
    # RTO floor (1 s), MSL (2 minutes), one-octet probes and 4 us ISN clock are the defaults,
    # none of them Linux's.
    "alt": {"delayed_ack": 0.2, "quick_ack": False, "initial_window": 2, "rfc5961": False,
            "rst_window": 4096, "full_ack_option": 2, "mss_headroom": 60},
}


def _int(raw: object) -> int:
    return int(str(raw).split()[0])


def _u8(number: int) -> int:
    """A sysctl Linux keeps in one octet (proc_dou8vec_minmax): 0..255, else EINVAL."""
    if not 0 <= number <= 255:
        raise ValueError(number)
    return number


def _triple(raw: object) -> tuple[int, int, int]:
    parts = [int(p) for p in str(raw).split()]
    if len(parts) != 3:
        raise ValueError(f"expected three numbers, got {raw!r}")
    return parts[0], parts[1], parts[2]


def _as(target: str, convert=_int):
    return lambda raw: (target, convert(raw))


# net.ipv4.<name> -> converter giving (Config field, value). tcp_ecn is understood only as 0
# (above): this stack neither requests nor accepts ECN, so other values are unsupported.
_SYSCTLS = {
    "tcp_timestamps": _as("timestamps", lambda r: _int(r) != 0),
    "tcp_sack": _as("sack", lambda r: _int(r) != 0),
    "tcp_window_scaling": _as("window_scaling", lambda r: _int(r) != 0),
    "tcp_syn_retries": _as("syn_retries"),
    "tcp_synack_retries": _as("synack_retries"),
    "tcp_retries1": _as("retries1"),
    "tcp_retries2": _as("retries2"),
    "tcp_rmem": _as("rmem", _triple),
    "tcp_wmem": _as("wmem", _triple),
    "tcp_congestion_control": _as("congestion_control", lambda r: str(r).strip()),
    "tcp_fin_timeout": _as("fin_timeout", lambda r: float(_int(r))),
    "tcp_keepalive_time": _as("keepalive_time", lambda r: float(_int(r))),
    "tcp_keepalive_intvl": _as("keepalive_intvl", lambda r: float(_int(r))),
    "tcp_keepalive_probes": _as("keepalive_probes", lambda r: _u8(_int(r))),
    "tcp_rfc1337": _as("rfc1337", lambda r: _int(r) != 0),
    "tcp_stdurg": _as("stdurg", lambda r: _int(r) != 0),
    "tcp_slow_start_after_idle": _as("slow_start_after_idle", lambda r: _int(r) != 0),
}
SYSCTL_NAMES = tuple("net.ipv4." + name for name in _SYSCTLS)   # the names a Config honours


@dataclass
class SocketOptions:
    """Per-socket settings (setsockopt); None means "use the host default"."""

    nodelay: bool = False                # TCP_NODELAY: Nagle off (RFC 9293 3.7.4)
    keepalive: bool = False              # SO_KEEPALIVE: off by default (RFC 1122 4.2.3.6)
    keepidle: float | None = None
    keepintvl: float | None = None
    keepcnt: int | None = None
    user_timeout: float = 0.0            # TCP_USER_TIMEOUT in seconds; 0: R2 decides
    maxseg: int = 0                      # TCP_MAXSEG; 0: from the MTU
    rcvbuf: int = 0                      # SO_RCVBUF as getsockopt reports it; 0: tcp_rmem[1]
    sndbuf: int = 0                      # SO_SNDBUF as getsockopt reports it; 0: tcp_wmem[1]
    tos: int = 0                         # IP_TOS, sent on every packet (RFC 2873)
    ttl: int = 64                        # IP_TTL (RFC 1122 4.2.2.19: configurable); Linux's default
    cork: bool = False                   # TCP_CORK: hold partial segments until uncorked
    recverr: bool = False                # IP_RECVERR: report soft ICMP errors at once
    linger: tuple[bool, int] = (False, 0)
    reuseaddr: bool = False
    oobinline: bool = False
