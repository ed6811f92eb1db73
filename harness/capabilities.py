"""What a case needs of a target, and what a target has: a case needing what its target lacks
is `not-applicable` there, with the missing capability named (never a failure).

Theory of operation: the needs are read off the script, never guessed from a failure:
- its IP version, and IP options in the segments it injects (`ipopt`);
- the TCP options the target must itself send, i.e. those an expected (`>`) segment lists
  (a SYN the case injects may offer SACK to a stack without it: the case relies on SACK
  only where it expects the stack to send sackOK or SACK blocks);
- the calls and socket options it makes, in the target protocol's names (harness/targets/
  PROTOCOL.md: `recv`, `readv`... are the protocol's `read`);
- the connection variables its `assert` lines, TCP_INFO getsockopts and Python blocks read;
- the sysctls it sets (its `sysctl:` map, and `sysctl -w` or `> /proc/sys/...` in its shell
  commands); any other shell command needs the target's stack to live in the case's
  network namespace (`ip route`, `ip addr` configure that namespace's stack only).
A target declares the same vocabulary (the protocol's hello; the kernel and stack targets
declare everything, so their verdicts depend on their behaviour alone).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

from harness.connection import TCPI_STATE
from harness.constants import CONSTANTS, TCP_STATES
from harness.ip import VERSIONS
from harness.model import AssertEvent, Expr, PacketEvent, PythonEvent, Script, ShellEvent, SyscallEvent
from harness.netns import sysctl_text

# A script call and the protocol op that performs it (PROTOCOL.md section 4).
CALL_OPS = {"recv": "read", "recvfrom": "read", "readv": "read", "recvmsg": "read",
            "send": "write", "sendto": "write", "writev": "write", "sendmsg": "write"}
# Script option names and the protocol's tcp_options names.
TCP_OPTIONS = {"sackOK": "sack", "sack": "sack", "TS": "timestamps", "wscale": "wscale",
               "mss": "mss"}
_NOT_OPTIONS = ("SO_J1939_", "SO_VM_", "IP_DEFAULT_", "IP_RECVRETOPTS")
OPTION_PREFIXES = {"SOL_SOCKET": "SO_", "IPPROTO_TCP": "TCP_", "SOL_TCP": "TCP_", "IPPROTO_IP": "IP_",
                   "SOL_IP": "IP_", "IPPROTO_IPV6": "IPV6_", "SOL_IPV6": "IPV6_"}
_SYSCTL_WRITE = re.compile(r"sysctl\s+(?:-\w+\s+)*(net\.[\w.]+)=(\S*)|(?:echo\s+(\S+)\s*)?>\s*/proc/sys/(net/[\w/]+)")
# A stack without one of these TCP options behaves as with the sysctl that turns it off.
OPTION_SYSCTLS = {"sack": "net.ipv4.tcp_sack", "timestamps": "net.ipv4.tcp_timestamps",
                  "wscale": "net.ipv4.tcp_window_scaling"}
_TCPI = re.compile(r"\btcpi_\w+")


@dataclass(frozen=True)
class Capabilities:
    """What a target can do; None means "everything of this kind"."""

    ip_versions: frozenset[str] = frozenset(VERSIONS)
    tcp_options: frozenset[str] | None = None
    ip_options: bool = True
    calls: frozenset[str] | None = None
    sockopts: frozenset[str] | None = None
    state: frozenset[str] | None = None
    sysctls: tuple[str, ...] | None = None        # names, `*` patterns allowed
    fixed_sysctls: dict[str, str] = field(default_factory=dict)   # what it always behaves as
    namespace: bool = True      # its stack is the case namespace's: shell commands reach it

    def has_sysctl(self, name: str, value: str | None = None) -> bool:
        """Whether the target can apply `name`, or already behaves as `name` = `value` says."""
        if self.sysctls is None or name in self.sysctls or any(fnmatch.fnmatchcase(name, p) for p in self.sysctls):
            return True
        fixed = dict(self.fixed_sysctls)
        for option, sysctl in OPTION_SYSCTLS.items():
            if self.tcp_options is not None and option not in self.tcp_options:
                fixed.setdefault(sysctl, "0")
        return value is not None and fixed.get(name) == value


EVERYTHING = Capabilities()


@dataclass
class Needs:
    """What one case needs, each as the text the report names when it is missing."""

    ip_version: str = "ipv4"
    ip_options: bool = False
    tcp_options: set[str] = field(default_factory=set)
    calls: set[str] = field(default_factory=set)
    sockopts: set[str] = field(default_factory=set)
    tcpi: set[str] = field(default_factory=set)
    sysctls: dict[str, str | None] = field(default_factory=dict)   # value None: not known
    shell: list[str] = field(default_factory=list)   # commands other than sysctl writes


def needs(script: Script) -> Needs:
    need = Needs(ip_version=script.plan.ip_version,
                 sysctls={k: sysctl_text(v) for k, v in script.sysctl.items()})
    shells = [e for e in script.events if isinstance(e, ShellEvent)]
    shells += [c for c in (script.init_command, script.cleanup_command) if c is not None]
    for event in script.events:
        if isinstance(event, PacketEvent):
            _packet_needs(event, need)
        elif isinstance(event, SyscallEvent):
            _call_needs(event, need)
        elif isinstance(event, AssertEvent):
            need.tcpi.update("tcpi_state" if name == "state" else name for name, _, _ in event.checks)
        elif isinstance(event, PythonEvent):
            need.tcpi.update(_TCPI.findall(event.code))
    for shell in shells:
        written = {(name or path.replace("/", ".")): (value or echoed or None)
                   for name, value, echoed, path in _SYSCTL_WRITE.findall(shell.command)}
        need.sysctls.update(written)
        if not written:
            need.shell.append(shell.command)
    if script.plan.init_scripts:
        need.shell.extend(script.plan.init_scripts)
    return need


def _packet_needs(event: PacketEvent, need: Needs) -> None:
    if event.direction == "<" and event.ip.get("ipopt"):
        need.ip_options = True
    if event.direction == ">":
        for option in event.options or []:
            if option[0] in TCP_OPTIONS:
                need.tcp_options.add(TCP_OPTIONS[option[0]])
        if event.ip.get("ipopt"):
            need.ip_options = True


def _call_needs(event: SyscallEvent, need: Needs) -> None:
    need.calls.add(CALL_OPS.get(event.name, event.name))
    if event.name not in ("setsockopt", "getsockopt") or len(event.args) < 3:
        return
    level, name = event.args[1], event.args[2]
    if _is_name(name, "TCP_INFO"):
        expected = event.args[3] if len(event.args) > 3 else None
        if expected is not None and expected.kind == "struct":
            need.tcpi.update(key for key, _ in expected.value if key)
        return
    need.sockopts.add(f"{_text(level)}.{_option_text(_text(level), name)}")


def _is_name(expr: Expr, name: str) -> bool:
    return expr.kind == "name" and expr.value == name


def _text(expr: Expr) -> str:
    return str(expr.value) if expr.kind == "name" else str(expr)


def _option_text(level: str, name: Expr) -> str:
    """An option's name; one written as a number (`IPPROTO_IP, 11`) gets its level's name."""
    if name.kind == "int" and level in OPTION_PREFIXES:
        return option_name(level, name.value) or str(name.value)
    return _text(name)


def option_name(level: str, value: int) -> str | None:
    """The Linux name of socket option `value` at `level` (`SOL_SOCKET`, `IPPROTO_TCP`...).
    Python's socket module shares the prefixes with names of other protocol families
    (SO_J1939_PROMISC is SO_REUSEADDR's number) and TCP states share TCP_, so those are
    never answered."""
    prefix = OPTION_PREFIXES[level]
    return next((n for n, v in CONSTANTS.items() if v == value and n.startswith(prefix)
                 and not n.startswith(_NOT_OPTIONS) and n.removeprefix("TCP_") not in TCP_STATES),
                None)


def missing(script: Script, has: Capabilities) -> list[str]:
    """What `script` needs that `has` lacks, one phrase each (empty: the case applies)."""
    need = needs(script)
    out: list[str] = []
    if need.ip_version not in has.ip_versions:
        out.append(f"{need.ip_version} (the target runs {', '.join(sorted(has.ip_versions))})")
    if need.ip_options and not has.ip_options:
        out.append("IP options")
    if has.tcp_options is not None:
        out += [f"TCP option {o}" for o in sorted(need.tcp_options - has.tcp_options)]
    if has.calls is not None:
        out += [f"call {c}" for c in sorted(need.calls - has.calls)]
    if has.sockopts is not None:
        out += [f"socket option {o}" for o in sorted(need.sockopts - has.sockopts)]
    if has.state is not None:
        out += [f"{f} (state {', '.join(TCPI_STATE[f])})" if f in TCPI_STATE else f
                for f in sorted(need.tcpi) if not set(TCPI_STATE.get(f, (f,))) <= has.state]
        if need.tcpi and "state" not in (has.calls or {"state"}):
            out.append("call state")
    out += [f"sysctl {s}" for s, v in sorted(need.sysctls.items()) if not has.has_sysctl(s, v)]
    if need.shell and not has.namespace:
        out.append(f"shell commands on the case's network namespace ({need.shell[0]!r})")
    return out
