"""TCP_INFO: a connection's state packed exactly like Linux's `struct tcp_info`.

Theory of operation: `FIELDS` lists the members of include/uapi/linux/tcp.h in order with
their struct codes; `pack` fills them from a `Connection` in Linux's units (microseconds for
rto/ato/rtt/rttvar, milliseconds for the last_* ages, segments for cwnd, Linux state numbers)
and returns as many bytes as the caller asked for, as getsockopt does. Members this stack has
no counterpart for (pacing, delivery rate, busy times...) are zero.
"""

from __future__ import annotations

import struct

from .connection import Connection
from .events import LINUX_STATE, State
from .sack import SackRecovery

TCPI_OPT_TIMESTAMPS, TCPI_OPT_SACK, TCPI_OPT_WSCALE = 1, 2, 4
CA_OPEN, CA_RECOVERY, CA_LOSS = 0, 3, 4

FIELDS = (
    "B state", "B ca_state", "B retransmits", "B probes", "B backoff", "B options",
    "B wscales", "B app_limited",
    "I rto", "I ato", "I snd_mss", "I rcv_mss", "I unacked", "I sacked", "I lost", "I retrans",
    "I fackets", "I last_data_sent", "I last_ack_sent", "I last_data_recv", "I last_ack_recv",
    "I pmtu", "I rcv_ssthresh", "I rtt", "I rttvar", "I snd_ssthresh", "I snd_cwnd",
    "I advmss", "I reordering", "I rcv_rtt", "I rcv_space", "I total_retrans",
    "Q pacing_rate", "Q max_pacing_rate", "Q bytes_acked", "Q bytes_received",
    "I segs_out", "I segs_in", "I notsent_bytes", "I min_rtt", "I data_segs_in",
    "I data_segs_out", "Q delivery_rate", "Q busy_time", "Q rwnd_limited", "Q sndbuf_limited",
    "I delivered", "I delivered_ce", "Q bytes_sent", "Q bytes_retrans", "I dsack_dups",
    "I reord_seen", "I rcv_ooopack", "I snd_wnd", "I rcv_wnd", "I rehash",
    "H total_rto", "H total_rto_recoveries", "I total_rto_time",
)
_STRUCT = struct.Struct("=" + "".join(f.split()[0] for f in FIELDS))
_NAMES = [f.split()[1] for f in FIELDS]
SIZE = _STRUCT.size


def _usec(seconds: float | None) -> int:
    return int(round((seconds or 0.0) * 1_000_000))


def _ms_since(now: float, then: float) -> int:
    return int((now - then) * 1000) & 0xFFFFFFFF


def values(conn: Connection, now: float) -> dict[str, int]:
    """The tcp_info members for `conn` at `now` (names without the tcpi_ prefix)."""
    neg, cc, rtt, st = conn.neg, conn.cc, conn.rtt, conn.stats
    mss = conn.mss
    options = ((TCPI_OPT_TIMESTAMPS if neg.timestamps else 0) | (TCPI_OPT_SACK if neg.sack else 0)
               | (TCPI_OPT_WSCALE if neg.window_scaling else 0))
    ca_state = CA_RECOVERY if conn.recovery.active else CA_LOSS if conn.retries else CA_OPEN
    sacked = conn.recovery.board.sacked_octets() if isinstance(conn.recovery, SackRecovery) else 0
    synchronized = conn.state not in (State.SYN_SENT, State.SYN_RECEIVED, State.CLOSED)
    return dict(
        state=LINUX_STATE[conn.state], ca_state=ca_state, retransmits=min(conn.retries, 255),
        probes=min(conn.probes, 255), backoff=min(rtt.backoff, 255), options=options,
        wscales=neg.snd_scale | (neg.rcv_scale << 4),
        rto=_usec(rtt.rto), ato=_usec(conn.cfg.delayed_ack), snd_mss=mss, rcv_mss=conn.rcv_mss,
        unacked=-(-conn.flight // mss) if synchronized else int(conn.flight > 0),
        sacked=-(-sacked // mss), retrans=int(bool(conn.retries)),
        last_data_sent=_ms_since(now, conn.last_send),
        last_data_recv=_ms_since(now, conn.last_data_recv),
        last_ack_recv=_ms_since(now, conn.last_ack_recv), pmtu=conn.pmtu,
        rcv_ssthresh=conn.rcv_capacity, rtt=_usec(rtt.srtt), rttvar=_usec(rtt.rttvar),
        snd_ssthresh=min(cc.ssthresh // mss, 0x7FFFFFFF), snd_cwnd=max(cc.cwnd // mss, 1),
        advmss=conn.rcv_mss, reordering=3, rcv_space=conn.rcv_capacity,
        total_retrans=st["total_retrans"], bytes_acked=st["bytes_acked"],
        bytes_received=st["bytes_received"], segs_out=st["segs_out"], segs_in=st["segs_in"],
        notsent_bytes=conn.unsent, data_segs_in=st["data_segs_in"],
        data_segs_out=st["data_segs_out"], bytes_sent=st["bytes_sent"],
        bytes_retrans=st["bytes_retrans"], rcv_ooopack=st["ooo_packets"],
        snd_wnd=conn.snd_wnd, rcv_wnd=conn.rcv_wnd, total_rto=min(st["timeouts"], 0xFFFF),
        total_rto_recoveries=min(st["timeout_episodes"], 0xFFFF),
    )


def pack(conn: Connection | None, now: float, size: int = SIZE, state: State = State.CLOSED) -> bytes:
    """`struct tcp_info` bytes, cut to `size`; without a connection only the state is set."""
    fields = values(conn, now) if conn is not None else {"state": LINUX_STATE[state]}
    return _STRUCT.pack(*(fields.get(name, 0) for name in _NAMES))[:size]
