"""Run options: packetdrill's `--option=value` lines and a YAML case's `options:` mapping.

Both become one `Plan`: the address plan and the device behaviour a case runs with. The
defaults are packetdrill's, except that YAML cases see every segment as it is on the wire
(no TUN offloads, no merging of segments) because a conformance case is about segments.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import shutil
from dataclasses import dataclass, field, replace
from typing import Callable

from harness import limits
from harness.errors import CaseError, Loc
from harness.ip import VERSIONS, is_address
from harness.netns import (REMOTE_IP, REMOTE_IP6, TARGET_IP, TARGET_IP6, TARGET_NETMASK,
                           TARGET_PREFIX6)


@dataclass(frozen=True)
class Plan:
    local_ip: str = TARGET_IP          # the target's address
    remote_ip: str = REMOTE_IP         # the runner's (remote peer's) address
    netmask: str = TARGET_NETMASK
    bind_port: int = 8080
    connect_port: int = 8080
    mtu: int = 1500
    ip_version: str = "ipv4"           # the address plan of this run
    ip_versions: tuple[str, ...] = ("ipv4",)   # the plans the case or script runs in
    prefix_len: int = TARGET_PREFIX6   # IPv6 only: the local address's prefix
    offload: bool = False              # packetdrill's TUN offloads: TSO super-packets
    gso_mss: int = 0                   # packetdrill's --mss: injected TCP packets marked GSO
                                       # with this segment size (offload only)
    strict_segments: bool = True       # False: consecutive outbound segments may be merged
    fail_on_unexpected: bool = True    # False: packetdrill's rule, only `>` lines look
    ts_tick_usecs: int = 0             # >0: outbound TS val is checked, one tick per so many us
    non_fatal: frozenset[str] = frozenset()   # packetdrill's --non_fatal: packet, syscall
    loose_psh: bool = False            # PSH not compared where a segment ends inside a write
    remote_relative: bool = False      # packetdrill's numbering of the runner's own sequence
                                       # space: relative to its ISN except on SYNs (peer.py)
    init_scripts: tuple[str, ...] = ()
    ignored: tuple[str, ...] = field(default=())   # accepted options with no effect here
    given: frozenset[str] = field(default=frozenset(), compare=False)   # fields options set

    def variant(self, version: str) -> "Plan":
        """This plan in one of its IP versions. Addresses not given by an option are the
        version's defaults (packetdrill's runners' plans); IPv6 gets a 1520-byte MTU unless
        one is given, as those runners do, so that the MSS is 1460 in every version."""
        changes: dict[str, object] = {"ip_version": version}
        six = version == "ipv6"
        if "local_ip" not in self.given:
            changes["local_ip"] = TARGET_IP6 if six else TARGET_IP
        if "remote_ip" not in self.given:
            changes["remote_ip"] = REMOTE_IP6 if six else REMOTE_IP
        if "mtu" not in self.given:
            changes["mtu"] = 1520 if six else 1500
        return replace(self, **changes)

    def check_addresses(self) -> str | None:
        """Why this plan's addresses do not fit its IP version (None when they do)."""
        for name in ("local_ip", "remote_ip"):
            if not is_address(getattr(self, name), self.ip_version):
                family = "an IPv6" if self.ip_version == "ipv6" else "an IPv4"
                return f"--{name}={getattr(self, name)} is not {family} address ({self.ip_version})"
        return None


PKT_DEFAULTS = Plan(offload=True, strict_segments=False, fail_on_unexpected=False,
                    remote_relative=True)


def _ip(value: str) -> str:
    return str(ipaddress.ip_address(value.split("/")[0]))


def _netmask(value: str) -> str:
    return str(ipaddress.IPv4Address(value))


def _port(value: str) -> int:
    port = limits.parse_integer(value)
    if not 0 < port < 65536:
        raise ValueError("a port is 1..65535")
    return port


def _mtu(value: str) -> int:
    """A link MTU: at least IPv4's minimum (RFC 791 3.1: 68), at most a 16-bit length."""
    mtu = limits.parse_integer(value)
    if not 68 <= mtu <= 65535:
        raise ValueError("an MTU is 68..65535")
    return mtu


def _mss(value: str) -> int:
    """packetdrill's --mss: a positive segment size within an IP packet."""
    mss = limits.parse_integer(value)
    if not 1 <= mss <= 65535:
        raise ValueError("an MSS is 1..65535")
    return mss


def _tick(value: str) -> int:
    usecs = limits.parse_integer(value)
    if not 0 <= usecs <= limits.MAX_TIME * 1e6:
        raise ValueError(f"a tick is 0..{limits.MAX_TIME * 1e6:.0f} microseconds")
    return usecs


def _init_scripts(value: str) -> tuple[str, ...]:
    """packetdrill's --init_scripts: commands run before the script, each naming a program
    that must exist (a path from the current directory, as they are run, or on PATH)."""
    scripts = tuple(p for p in value.split(",") if p)
    for script in scripts:
        words = shlex.split(script)
        program = words[0] if words else ""
        if not (os.path.isfile(program) or shutil.which(program)):
            raise ValueError(f"{limits.brief(program, 80)!r} is not a file here nor a program on PATH")
    return scripts


def option_value_text(value: object) -> str:
    """An option's value as a `.pkt` writes it: lists comma-separated, flags lower case."""
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value).lower() if isinstance(value, bool) else str(value)


def _versions(value: str) -> tuple[str, ...]:
    """One IP version, or several separated by commas (an rfcdrill extension): the case
    runs once in each."""
    versions = tuple(v.strip() for v in value.split(",") if v.strip())
    bad = [v for v in versions if v not in VERSIONS]
    if bad or not versions:
        raise ValueError(f"expected {', '.join(VERSIONS)} (or several, comma-separated)")
    return tuple(dict.fromkeys(versions))


def _prefix(value: str) -> int:
    length = limits.parse_integer(value.split("/")[1]) if "/" in value else TARGET_PREFIX6
    if not 0 < length <= 128:
        raise ValueError("a prefix length is 1..128")
    return length


def _non_fatal(value: str) -> frozenset[str]:
    """packetdrill's `--non_fatal=packet,syscall`: which mismatches are only warnings."""
    kinds = frozenset(v for v in value.replace(",", " ").split())
    if not kinds <= {"packet", "syscall"}:
        raise ValueError("expected packet, syscall or both (comma-separated)")
    return kinds


def _flag(value: str) -> bool:
    if value in ("", "1", "true", "yes", "True"):
        return True
    if value in ("0", "false", "no", "False"):
        return False
    raise ValueError("expected a flag (no value, true or false)")


_SETTERS: dict[str, tuple[str, Callable[[str], object]]] = {
    "local_ip": ("local_ip", _ip), "remote_ip": ("remote_ip", _ip),
    "netmask_ip": ("netmask", _netmask), "bind_port": ("bind_port", _port),
    "connect_port": ("connect_port", _port), "mtu": ("mtu", _mtu), "mss": ("gso_mss", _mss),
    "ip_version": ("ip_versions", _versions), "offload": ("offload", _flag),
    "strict_segments": ("strict_segments", _flag),
    "fail_on_unexpected": ("fail_on_unexpected", _flag), "tcp_ts_tick_usecs": ("ts_tick_usecs", _tick),
    "non_fatal": ("non_fatal", _non_fatal),
    "loose_psh": ("loose_psh", _flag),
    "init_scripts": ("init_scripts", _init_scripts),
    "remote_relative": ("remote_relative", _flag),
}
# Options packetdrill has that change nothing on this runner (or are read elsewhere:
# the tolerances go into the Script's Tolerance).
_ACCEPTED = {"tolerance_usecs", "tolerance_percent", "gateway_ip", "speed",
             "tcp_ts_ecr_scaled", "dry_run", "is_anyip",
             "send_omit_free", "debug", "verbose", "code_command", "code_format",
             "code_sockopt", "so_filename", "so_flags", "define", "psp_udp_port"}
KNOWN = frozenset(_SETTERS) | _ACCEPTED


def plan_from(options: dict[str, object], base: Plan, where: Callable[[str], Loc | None]) -> Plan:
    """Apply options to a base plan; an unknown option or bad value is a CaseError."""
    changes: dict[str, object] = {}
    ignored = []
    for name, raw in options.items():
        if name not in KNOWN:
            raise CaseError(where(name), f"unknown option --{limits.brief(str(name), 60)} "
                            f"(known: {', '.join(sorted(KNOWN))})")
        if name in _ACCEPTED:
            if name not in ("tolerance_usecs", "tolerance_percent"):
                ignored.append(name)
            continue
        attr, parse = _SETTERS[name]
        text = option_value_text(raw)
        try:
            changes[attr] = parse(text)
            if name == "local_ip":
                changes["prefix_len"] = _prefix(text)
        except ValueError as exc:
            raise CaseError(where(name), f"--{name}={limits.brief(str(raw), 60)}: {exc}") from None
    plan = replace(base, **changes, ignored=tuple(ignored), given=frozenset(changes))
    return plan.variant(plan.ip_versions[0])
