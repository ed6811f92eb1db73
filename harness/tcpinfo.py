"""Linux's `struct tcp_info` (include/uapi/linux/tcp.h), decoded into a dict of tcpi_* fields.

The layout is the one the stack packs (stack/tcpinfo.py holds it, member by member), so
`assert` lines and `%{ }%` blocks read the same names on the kernel and on the stack.
"""

from __future__ import annotations

import struct

from stack.tcpinfo import FIELDS

_STRUCT = struct.Struct("=" + "".join(f.split()[0] for f in FIELDS))
_NAMES = ["tcpi_" + f.split()[1] for f in FIELDS]
TCP_INFO_LEN = _STRUCT.size


def decode_tcp_info(raw: bytes) -> dict[str, int]:
    """Decode as many fields as `raw` holds (an older kernel returns a shorter struct)."""
    raw = raw[:TCP_INFO_LEN].ljust(TCP_INFO_LEN, b"\0")
    info = dict(zip(_NAMES, _STRUCT.unpack(raw)))
    wscales = info.pop("tcpi_wscales")
    info["tcpi_delivery_rate_app_limited"] = info.pop("tcpi_app_limited") & 1   # a bit field
    info["tcpi_snd_wscale"], info["tcpi_rcv_wscale"] = wscales & 0xF, wscales >> 4
    return info
