"""Linux's `struct tcp_info` (include/uapi/linux/tcp.h), decoded into a dict of tcpi_* fields.

Both targets return TCP_INFO in this layout (the stack packs the same struct), so `assert`
lines and `%{ }%` blocks read the same names on either.
"""

from __future__ import annotations

import struct

_FIELDS = (
    ("B", "tcpi_state"), ("B", "tcpi_ca_state"), ("B", "tcpi_retransmits"), ("B", "tcpi_probes"),
    ("B", "tcpi_backoff"), ("B", "tcpi_options"), ("B", "_wscale"), ("B", "_flags"),
    ("I", "tcpi_rto"), ("I", "tcpi_ato"), ("I", "tcpi_snd_mss"), ("I", "tcpi_rcv_mss"),
    ("I", "tcpi_unacked"), ("I", "tcpi_sacked"), ("I", "tcpi_lost"), ("I", "tcpi_retrans"),
    ("I", "tcpi_fackets"), ("I", "tcpi_last_data_sent"), ("I", "tcpi_last_ack_sent"),
    ("I", "tcpi_last_data_recv"), ("I", "tcpi_last_ack_recv"), ("I", "tcpi_pmtu"),
    ("I", "tcpi_rcv_ssthresh"), ("I", "tcpi_rtt"), ("I", "tcpi_rttvar"),
    ("I", "tcpi_snd_ssthresh"), ("I", "tcpi_snd_cwnd"), ("I", "tcpi_advmss"),
    ("I", "tcpi_reordering"), ("I", "tcpi_rcv_rtt"), ("I", "tcpi_rcv_space"),
    ("I", "tcpi_total_retrans"), ("Q", "tcpi_pacing_rate"), ("Q", "tcpi_max_pacing_rate"),
    ("Q", "tcpi_bytes_acked"), ("Q", "tcpi_bytes_received"), ("I", "tcpi_segs_out"),
    ("I", "tcpi_segs_in"), ("I", "tcpi_notsent_bytes"), ("I", "tcpi_min_rtt"),
    ("I", "tcpi_data_segs_in"), ("I", "tcpi_data_segs_out"), ("Q", "tcpi_delivery_rate"),
    ("Q", "tcpi_busy_time"), ("Q", "tcpi_rwnd_limited"), ("Q", "tcpi_sndbuf_limited"),
    ("I", "tcpi_delivered"), ("I", "tcpi_delivered_ce"), ("Q", "tcpi_bytes_sent"),
    ("Q", "tcpi_bytes_retrans"), ("I", "tcpi_dsack_dups"), ("I", "tcpi_reord_seen"),
    ("I", "tcpi_rcv_ooopack"), ("I", "tcpi_snd_wnd"),
)
_STRUCT = struct.Struct("=" + "".join(code for code, _ in _FIELDS))
TCP_INFO_LEN = _STRUCT.size
FIELD_NAMES = frozenset(name for _, name in _FIELDS if not name.startswith("_")) | {
    "tcpi_snd_wscale", "tcpi_rcv_wscale"}


def decode_tcp_info(raw: bytes) -> dict[str, int]:
    """Decode as many fields as `raw` holds (older kernels return a shorter struct)."""
    raw = raw[:TCP_INFO_LEN].ljust(TCP_INFO_LEN, b"\0")
    info = dict(zip((name for _, name in _FIELDS), _STRUCT.unpack(raw)))
    wscale = info.pop("_wscale")
    info.pop("_flags")
    info["tcpi_snd_wscale"], info["tcpi_rcv_wscale"] = wscale & 0xF, wscale >> 4
    return info


def encode_tcp_info(info: dict[str, int]) -> bytes:
    """The inverse of `decode_tcp_info`, for targets that build TCP_INFO themselves."""
    values = dict(info)
    values["_wscale"] = (values.get("tcpi_snd_wscale", 0) & 0xF) | (values.get("tcpi_rcv_wscale", 0) << 4)
    values["_flags"] = 0
    return _STRUCT.pack(*(values.get(name, 0) for _, name in _FIELDS))
