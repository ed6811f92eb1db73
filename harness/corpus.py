"""The runners of the field's packetdrill corpora: which scripts they run, in which IP
versions, with which command line, from which folder.

- google/packetdrill's `run_all.py` (for its gtests/net/tcp): every `*.pkt` below the folder;
  a script whose name ends in `v6.pkt` runs in IPv6 only, one ending in `v4.pkt` in IPv4 and
  IPv4-mapped IPv6, any other in all three; packetdrill gets `--send_omit_free`, the
  version's addresses and defines, and the script's file name, in the script's folder, in
  a fresh namespace whose loopback is up (its in_netns.sh).
- the kernel's `ksft_runner.sh` (tools/testing/selftests/net/packetdrill): every `*.pkt` of
  the folder, with the argument lists the runner itself defines (read from the corpus's own
  copy), in the script's folder, under `unshare -n` (loopback down). Two generations of it:
  up to about 6.15 it defines the arrays `ipv4_args` and `ipv6_args` and runs every script
  in both; later ones define `declare -A ip_args=([ipv4]="..." ...)` and run a script in
  the one version its `--ip_version=` line names, or else in IPv4, IPv6 and IPv4-mapped
  IPv6 (in that order).
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from harness.errors import CaseError, Loc

RUNNERS = ("run_all", "ksft")

_V4 = ["--ip_version=ipv4", "--local_ip=192.168.0.1", "--gateway_ip=192.168.0.1",
       "--netmask_ip=255.255.0.0", "--remote_ip=192.0.2.1"]
# run_all.py's arguments per variant, in the order it runs them.
RUN_ALL_ARGS: dict[str, list[str]] = {
    "ipv4": _V4 + ["-D", "TFO_COOKIE=3021b9d889017eeb", "-D", "CODE=host_unreachable",
                   "-D", "CMSG_LEVEL_IP=SOL_IP", "-D", "CMSG_TYPE_RECVERR=IP_RECVERR"],
    "ipv4-mapped-v6": ["--ip_version=ipv4-mapped-ipv6"] + _V4[1:]
    + ["-D", "TFO_COOKIE=3021b9d889017eeb", "-D", "CODE=host_unreachable",
       "-D", "CMSG_LEVEL_IP=SOL_IPV6", "-D", "CMSG_TYPE_RECVERR=IPV6_RECVERR"],
    "ipv6": ["--ip_version=ipv6", "--mtu=1520", "--local_ip=fd3d:0a0b:17d6::1",
             "--gateway_ip=fd3d:0a0b:17d6:8888::1", "--remote_ip=fd3d:fa7b:d17d::1",
             "-D", "TFO_COOKIE=c1d1e9742a47a9bc", "-D", "CMSG_LEVEL_IP=SOL_IPV6",
             "-D", "CMSG_TYPE_RECVERR=IPV6_RECVERR"],
}
RUN_ALL_DEFAULT = ["--send_omit_free"]
# Variant names as each runner prints them, and the IP version each one is.
VARIANT_VERSION = {"ipv4": "ipv4", "ipv4-mapped-v6": "ipv4-mapped-ipv6", "ipv6": "ipv6",
                   "ipv4-mapped-ipv6": "ipv4-mapped-ipv6"}


@dataclass(frozen=True)
class Run:
    """One script in one of the versions its runner gives it."""

    script: str                  # absolute path
    name: str                    # its path below the corpus, without `.pkt`
    variant: str                 # the runner's name for the version
    argv: tuple[str, ...]        # packetdrill's arguments, the script's file name last
    loopback_up: bool            # the runner's namespace has its loopback up

    @property
    def id(self) -> str:
        return f"{self.name}@{self.variant}"

    @property
    def folder(self) -> str:
        return os.path.dirname(self.script)


def detect(corpus: str) -> str:
    """The runner a corpus folder is run by: ksft when it has ksft_runner.sh."""
    return "ksft" if (Path(corpus) / "ksft_runner.sh").is_file() else "run_all"


def runs(corpus: str, runner: str) -> list[Run]:
    root = Path(corpus).resolve()
    if runner == "ksft":
        return _ksft_runs(root)
    out = []
    for script in sorted(str(p) for p in root.rglob("*.pkt") if p.is_file()):
        name = str(Path(script).relative_to(root).with_suffix(""))
        for variant, args in RUN_ALL_ARGS.items():
            if (script.endswith("v6.pkt") and variant != "ipv6") or \
                    (script.endswith("v4.pkt") and variant == "ipv6"):
                continue
            argv = (*RUN_ALL_DEFAULT, *args, os.path.basename(script))
            out.append(Run(script, name, variant, argv, loopback_up=True))
    return out


_KSFT_ARRAYS = re.compile(r"^\s*readonly\s+(ipv4|ipv6)_args=\((.*?)\)", re.S | re.M)
_KSFT_TABLE = re.compile(r"^\s*declare\s+-A\s+ip_args=\((.*?)^\s*\)", re.S | re.M)
_KSFT_ENTRY = re.compile(r'\[([\w-]+)\]="([^"]*)"')
# The versions the associative-array runner gives a script without an --ip_version= line.
KSFT_ALL_VERSIONS = ("ipv4", "ipv6", "ipv4-mapped-ipv6")


def ksft_arguments(runner_path: Path) -> dict[str, list[str]]:
    """The argument list per IP version a ksft_runner.sh passes to packetdrill, as the shell
    expands it unquoted (`${ipv4_args[@]}`, `${ip_args[$ip_version]}`): split into words."""
    text = runner_path.read_text()
    table = _KSFT_TABLE.search(text)
    if table:
        found = {m.group(1): m.group(2).split() for m in _KSFT_ENTRY.finditer(table.group(1))}
    else:
        found = {m.group(1): " ".join(shlex.split(m.group(2))).split()
                 for m in _KSFT_ARRAYS.finditer(text)}
    if not {"ipv4", "ipv6"} <= set(found):
        raise CaseError(Loc(str(runner_path), 1), "expected the argument lists ksft_runner.sh "
                        "passes to packetdrill: declare -A ip_args=([ipv4]=\"...\" [ipv6]=\"...\") "
                        "or readonly ipv4_args=(...) and ipv6_args=(...)")
    return found


def ksft_versions(script: Path, args: dict[str, list[str]]) -> tuple[str, ...]:
    """The versions ksft_runner.sh runs a script in: with the per-version table, the one its
    `--ip_version=` line names (the runner refuses several, which gives none here), else
    all three; with the two arrays, IPv4 and IPv6."""
    if "ipv4-mapped-ipv6" not in args:
        return ("ipv4", "ipv6")
    named = [line.split("=", 1)[1].strip() for line in script.read_text(errors="replace").splitlines()
             if line.startswith("--ip_version=")]
    if not named:
        return KSFT_ALL_VERSIONS
    return (named[0],) if len(named) == 1 and named[0] in ("ipv4", "ipv6") else ()


def _ksft_runs(root: Path) -> list[Run]:
    args = ksft_arguments(root / "ksft_runner.sh")
    out = []
    for script in sorted(p for p in root.glob("*.pkt") if p.is_file()):
        for variant in ksft_versions(script, args):
            out.append(Run(str(script), script.stem, variant,
                           (*args[variant], script.name), loopback_up=False))
    return out
