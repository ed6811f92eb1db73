"""Run options: packetdrill's `--option=value` lines and a YAML case's `options:` mapping.

Both become one `Plan`: the address plan and the device behaviour a case runs with. The
defaults are packetdrill's, except that YAML cases see every segment as it is on the wire
(no TUN offloads, no merging of segments) because a conformance case is about segments.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from typing import Callable

from harness.errors import CaseError, Loc
from harness.netns import REMOTE_IP, TARGET_IP, TARGET_NETMASK


@dataclass(frozen=True)
class Plan:
    local_ip: str = TARGET_IP          # the target's address
    remote_ip: str = REMOTE_IP         # the runner's (remote peer's) address
    netmask: str = TARGET_NETMASK
    bind_port: int = 8080
    connect_port: int = 8080
    mtu: int = 1500
    ip_version: str = "ipv4"
    offload: bool = False              # packetdrill's TUN offloads: TSO super-packets
    strict_segments: bool = True       # False: consecutive outbound segments may be merged
    loose_psh: bool = False            # PSH not compared where a segment ends inside a write
    init_scripts: tuple[str, ...] = ()
    ignored: tuple[str, ...] = field(default=())   # accepted options with no effect here


PKT_DEFAULTS = Plan(offload=True, strict_segments=False)


def _ip(value: str) -> str:
    return str(ipaddress.IPv4Address(value.split("/")[0]))


def _port(value: str) -> int:
    port = int(value)
    if not 0 < port < 65536:
        raise ValueError("a port is 1..65535")
    return port


def _version(value: str) -> str:
    if value not in ("ipv4", "ipv6", "ipv4-mapped-ipv6"):
        raise ValueError("expected ipv4, ipv6 or ipv4-mapped-ipv6")
    if value != "ipv4":
        raise ValueError(f"--ip_version={value} is not supported yet: this runner speaks IPv4 only")
    return value


def _flag(value: str) -> bool:
    if value in ("", "1", "true", "yes", "True"):
        return True
    if value in ("0", "false", "no", "False"):
        return False
    raise ValueError("expected a flag (no value, true or false)")


_SETTERS: dict[str, tuple[str, Callable[[str], object]]] = {
    "local_ip": ("local_ip", _ip), "remote_ip": ("remote_ip", _ip),
    "netmask_ip": ("netmask", _ip), "bind_port": ("bind_port", _port),
    "connect_port": ("connect_port", _port), "mtu": ("mtu", int),
    "ip_version": ("ip_version", _version), "offload": ("offload", _flag),
    "strict_segments": ("strict_segments", _flag), "loose_psh": ("loose_psh", _flag),
    "init_scripts": ("init_scripts", lambda v: tuple(p for p in v.split(",") if p)),
}
# Options packetdrill has that change nothing on this runner (or are read elsewhere:
# the tolerances go into the Script's Tolerance).
_ACCEPTED = {"tolerance_usecs", "tolerance_percent", "gateway_ip", "speed", "mss",
             "tcp_ts_ecr_scaled", "tcp_ts_tick_usecs", "non_fatal", "dry_run", "is_anyip",
             "send_omit_free", "debug", "verbose", "code_command", "code_format",
             "code_sockopt", "so_filename", "so_flags", "define"}
KNOWN = frozenset(_SETTERS) | _ACCEPTED


def plan_from(options: dict[str, object], base: Plan, where: Callable[[str], Loc | None]) -> Plan:
    """Apply options to a base plan; an unknown option or bad value is a CaseError."""
    changes: dict[str, object] = {}
    ignored = []
    for name, raw in options.items():
        if name not in KNOWN:
            raise CaseError(where(name), f"unknown option --{name} (known: {', '.join(sorted(KNOWN))})")
        if name in _ACCEPTED:
            if name not in ("tolerance_usecs", "tolerance_percent"):
                ignored.append(name)
            continue
        attr, parse = _SETTERS[name]
        try:
            changes[attr] = parse(str(raw) if not isinstance(raw, bool) else str(raw).lower())
        except ValueError as exc:
            raise CaseError(where(name), f"--{name}={raw}: {exc}") from None
    return replace(base, **changes, ignored=tuple(ignored))
