"""A connection's state in RFC 9293's names (the portable part every target reports), and
Linux's TCP_INFO fields read through it (what a script's `tcpi_*` assertions name).

Every target's `connection(fd)` answers a dict keyed as PROTOCOL.md section 5 names the
variables: `state` (RFC 9293 3.3.2), `SND.UNA`, `SND.NXT`, `SND.WND`, `RCV.NXT`, `RCV.WND`
(3.3.1), `cwnd`, `ssthresh` (RFC 5681, octets), `RTO` (RFC 6298, microseconds), `SMSS`,
`RMSS` (octets); a variable the target cannot give is left out, never made up. A target may
add extras under their own names: Linux's `tcpi_*` fields (the kernel and the stack give
their whole TCP_INFO, as packetdrill's scripts assert any of its fields), `SK_MEMINFO_*`.
"""

from __future__ import annotations

from typing import Any

from harness.constants import TCP_STATES

# RFC 9293 3.3.2 state names and Linux's (TCP_INFO's tcpi_state, `assert N state X`).
RFC_STATES = {"LISTEN": "LISTEN", "SYN-SENT": "SYN_SENT", "SYN-RECEIVED": "SYN_RECV",
              "ESTABLISHED": "ESTABLISHED", "FIN-WAIT-1": "FIN_WAIT1", "FIN-WAIT-2": "FIN_WAIT2",
              "CLOSE-WAIT": "CLOSE_WAIT", "CLOSING": "CLOSING", "LAST-ACK": "LAST_ACK",
              "TIME-WAIT": "TIME_WAIT", "CLOSED": "CLOSE"}
_LINUX_TO_RFC = {TCP_STATES[linux]: rfc for rfc, linux in RFC_STATES.items()}
# tcpi_* fields and the RFC 9293 state variables they are read from (PROTOCOL.md section 5):
# one name, the same value; two, the first in units of the second.
TCPI_STATE = {"tcpi_state": ("state",), "tcpi_snd_cwnd": ("cwnd", "SMSS"),
              "tcpi_snd_ssthresh": ("ssthresh", "SMSS"), "tcpi_rto": ("RTO",),
              "tcpi_snd_mss": ("SMSS",), "tcpi_rcv_mss": ("RMSS",)}
INFINITE_SSTHRESH = 0x7FFFFFFF     # Linux's TCP_INFINITE_SSTHRESH: no ssthresh set yet
# tcpi_* fields that hold an RFC variable as it is (TCP_INFO has no SND.UNA, SND.NXT, RCV.NXT).
_SAME = {"RTO": "tcpi_rto", "SMSS": "tcpi_snd_mss", "RMSS": "tcpi_rcv_mss",
         "SND.WND": "tcpi_snd_wnd", "RCV.WND": "tcpi_rcv_wnd"}


def rfc_view(info: dict[str, int]) -> dict[str, Any]:
    """The RFC-named variables Linux's TCP_INFO holds, with every tcpi_* field kept."""
    state: dict[str, Any] = {name: info[field] for name, field in _SAME.items() if field in info}
    if info.get("tcpi_state") in _LINUX_TO_RFC:
        state["state"] = _LINUX_TO_RFC[info["tcpi_state"]]
    mss = info.get("tcpi_snd_mss")
    if mss is not None and "tcpi_snd_cwnd" in info:
        state["cwnd"] = info["tcpi_snd_cwnd"] * mss
    if mss is not None and info.get("tcpi_snd_ssthresh", INFINITE_SSTHRESH) < INFINITE_SSTHRESH:
        state["ssthresh"] = info["tcpi_snd_ssthresh"] * mss
    return {**state, **info}


def tcp_info_view(state: dict[str, Any]) -> dict[str, int]:
    """TCP_INFO's fields as a target's connection state gives them: its tcpi_* extras as
    they are, the others read from the RFC variables where they mean the same (TCPI_STATE)."""
    info: dict[str, int] = {k: v for k, v in state.items() if k.startswith("tcpi_")}
    for field, keys in TCPI_STATE.items():
        if field in info or not all(k in state for k in keys):
            continue
        if field == "tcpi_state":
            info[field] = TCP_STATES[RFC_STATES.get(state["state"], "CLOSE")]
        elif len(keys) == 2:
            info[field] = state[keys[0]] // max(state[keys[1]], 1)
        else:
            info[field] = state[keys[0]]
    return info
