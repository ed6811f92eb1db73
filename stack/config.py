"""Host-wide TCP settings: Linux sysctl names in, one frozen `Config` out.

Theory of operation: a `Config` holds every knob the TCP core reads, with defaults that follow
Linux where Linux is RFC-conformant and the RFC where it is not (each such choice is noted
beside the field). `Config.from_sysctls` maps the `net.ipv4.tcp_*` names a case sets onto the
fields and returns the names it cannot honour, which the host lists as `unsupported_sysctls`.
The per-socket options (setsockopt) live in `SocketOptions`, which the socket layer owns and the
connection reads.
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
    # Delayed-ACK timer. RFC 9293 MUST-40 (RFC 1122 4.2.3.2) bounds it by 0.5 s; 40 ms is
    # Linux's TCP_ATO_MIN, the delay a Linux receiver shows once quick-ACK mode has ended.
    delayed_ack: float = 0.040
    rto_initial: float = 1.0             # RFC 6298 2.1
    # RFC 6298 2.4 says RTO SHOULD be rounded up to 1 s; like Linux (TCP_RTO_MIN) the floor
    # here is 200 ms, a choice the SHOULD leaves open now that clocks are fine-grained (RFC
    # 6298 4 lets G be small) and that spurious timeouts are recovered from (RFC 5682).
    rto_min: float = 0.2
    rto_max: float = 120.0               # RFC 6298 2.5 allows a maximum of at least 60 s
    clock_granularity: float = 0.001     # G of RFC 6298 2.2
    initial_window: int | None = None    # segments; None: RFC 5681 3.1 min(4*MSS, max(2*MSS, 4380))
    # RFC 9293 3.4.2 calls MSL = 2 min an engineering choice that may be changed; Linux's
    # TIME-WAIT is 60 s, i.e. MSL = 30 s, and that is the default here.
    msl: float = 30.0
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
