"""Linux's `struct tcp_info` (include/uapi/linux/tcp.h), decoded into a dict of tcpi_* fields.

The harness reads the layout from its own transcription of the kernel header below, not from
the stack's packing code (the judge shares no code with the judged); a test decodes what the
stack packs with it, so a difference between the two transcriptions shows up there.
"""

from __future__ import annotations

import struct

# The members of struct tcp_info in declaration order (Linux 6.18), one C type per line with
# the tcpi_ prefix left off. Two bytes are bit-fields: `wscales` holds tcpi_snd_wscale:4
# (low bits) and tcpi_rcv_wscale:4; `rate_flags` holds tcpi_delivery_rate_app_limited:1 and
# tcpi_fastopen_client_fail:2 (the first is read, as packetdrill names it). The last word,
# `ecn_bits`, holds Accurate ECN's tcpi_ecn_mode:2, tcpi_accecn_opt_seen:2,
# tcpi_accecn_fail_mode:4 and tcpi_options2:24, low bits first.
_DECLARATION = """
u8  state ca_state retransmits probes backoff options wscales rate_flags
u32 rto ato snd_mss rcv_mss unacked sacked lost retrans fackets
u32 last_data_sent last_ack_sent last_data_recv last_ack_recv
u32 pmtu rcv_ssthresh rtt rttvar snd_ssthresh snd_cwnd advmss reordering rcv_rtt rcv_space
u32 total_retrans
u64 pacing_rate max_pacing_rate bytes_acked bytes_received
u32 segs_out segs_in notsent_bytes min_rtt data_segs_in data_segs_out
u64 delivery_rate busy_time rwnd_limited sndbuf_limited
u32 delivered delivered_ce
u64 bytes_sent bytes_retrans
u32 dsack_dups reord_seen rcv_ooopack snd_wnd rcv_wnd rehash
u16 total_rto total_rto_recoveries
u32 total_rto_time
u32 received_ce delivered_e1_bytes delivered_e0_bytes delivered_ce_bytes
u32 received_e1_bytes received_e0_bytes received_ce_bytes ecn_bits
"""
# (name, shift, width) of the bit-fields in `ecn_bits`.
_ECN_BITS = (("ecn_mode", 0, 2), ("accecn_opt_seen", 2, 2), ("accecn_fail_mode", 4, 4),
             ("options2", 8, 24))
_CODES = {"u8": "B", "u16": "H", "u32": "I", "u64": "Q"}
_MEMBERS = [(_CODES[line.split()[0]], name)
            for line in _DECLARATION.strip().splitlines() for name in line.split()[1:]]
_STRUCT = struct.Struct("=" + "".join(code for code, _ in _MEMBERS))
_NAMES = ["tcpi_" + name for _, name in _MEMBERS]
TCP_INFO_LEN = _STRUCT.size


def decode_tcp_info(raw: bytes) -> dict[str, int]:
    """Decode as many fields as `raw` holds (an older kernel returns a shorter struct)."""
    raw = raw[:TCP_INFO_LEN].ljust(TCP_INFO_LEN, b"\0")
    info = dict(zip(_NAMES, _STRUCT.unpack(raw)))
    wscales = info.pop("tcpi_wscales")
    info["tcpi_delivery_rate_app_limited"] = info.pop("tcpi_rate_flags") & 1   # a bit field
    info["tcpi_snd_wscale"], info["tcpi_rcv_wscale"] = wscales & 0xF, wscales >> 4
    ecn_bits = info.pop("tcpi_ecn_bits")
    for name, shift, width in _ECN_BITS:
        info["tcpi_" + name] = ecn_bits >> shift & ((1 << width) - 1)
    return info


# SO_MEMINFO's array of u32 (include/uapi/linux/sock_diag.h, SK_MEMINFO_*), in index order;
# packetdrill gives a Python block each as SK_MEMINFO_<NAME>.
SO_MEMINFO = 55
_MEMINFO_NAMES = ("RMEM_ALLOC", "RCVBUF", "WMEM_ALLOC", "SNDBUF", "FWD_ALLOC", "WMEM_QUEUED",
                  "OPTMEM", "BACKLOG", "DROPS")
MEMINFO_LEN = 4 * len(_MEMINFO_NAMES)


def decode_meminfo(raw: bytes) -> dict[str, int]:
    """SK_MEMINFO_* from SO_MEMINFO's value; members a shorter array lacks are left out."""
    count = min(len(raw) // 4, len(_MEMINFO_NAMES))
    return {"SK_MEMINFO_" + name: value
            for name, value in zip(_MEMINFO_NAMES, struct.unpack(f"={count}I", raw[:count * 4]))}
