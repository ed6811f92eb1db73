"""`rfcdrill-packetdrill`: rfcdrill under packetdrill's command line, for packetdrill's runners.

Linked or copied as `packetdrill` first on PATH, it lets the kernel's ksft_runner.sh and
packetdrill's run_all.py run rfcdrill unchanged: it takes packetdrill's options
(harness.pdargs; the command line wins over a script's own option lines), runs each script
on the kernel target (in a private namespace of its own, as every rfcdrill run is, even
when the runner already made one), runs shell commands in the current folder as packetdrill
does, and exits as packetdrill does: 0 when every script passed, 1 otherwise (a failing
script, a script that does not parse, a bad command line).

With RFCDRILL_RESULTS=DIR in the environment, each run also leaves rfcdrill's record,
`DIR/<script>@<ip version>.json`, which `rfcdrill report` renders.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

from harness import pdargs
from harness.errors import CaseError
from harness.execute import run_one
from harness.loader import load
from harness.netns import have_privileges
from harness.record import run_metadata, write_results
from harness.result import PASS, Result

USAGE = ("Usage: packetdrill [--ip_version=ipv4|ipv4-mapped-ipv6|ipv6] [--local_ip=IP] "
         "[--remote_ip=IP] [--gateway_ip=IP] [--netmask_ip=MASK] [--mtu=N] "
         "[--tolerance_usecs=N] [--tolerance_percent=N] [--strict_segments] "
         "[--non_fatal=packet,syscall] [--tcp_ts_tick_usecs=N] [--init_scripts=A,B] "
         "[-D NAME=VALUE] [-v] <script.pkt> ...\n(rfcdrill's drop-in for packetdrill)")


def main(argv: list[str] | None = None) -> int:
    try:
        inv = pdargs.parse(sys.argv[1:] if argv is None else argv)
    except pdargs.UsageError as exc:
        print(f"packetdrill: {exc}\n{USAGE}", file=sys.stderr)
        return 1
    remote = sorted(pdargs.REMOTE_MODE & set(inv.options))
    if remote:
        print(f"packetdrill: --{remote[0]}: rfcdrill plays both ends on one machine; packetdrill's "
              "remote mode (wire client and server) is not supported", file=sys.stderr)
        return 1
    if not inv.scripts:
        print(f"error: missing script path\n{USAGE}", file=sys.stderr)
        return 1
    if not have_privileges():
        print("packetdrill (rfcdrill): needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) for its "
              "private namespace and TUN device", file=sys.stderr)
        return 1
    for path in inv.scripts:
        if not run_script(path, inv):
            return 1
    return 0


def run_script(path: str, inv: pdargs.Invocation) -> bool:
    """Run one script as packetdrill would; print its failure as packetdrill prints errors."""
    started = dt.datetime.now(dt.timezone.utc)
    try:
        script = load(path, inv.defines, inv.options, case_id=Path(path).stem)
    except CaseError as exc:
        print(exc, file=sys.stderr)
        return False
    script.workdir = os.getcwd()
    if "dry_run" in inv.options:
        return True
    result = run_one(script, "kernel")
    if inv.verbose:
        for step in result.timeline:
            print(f"{step.time:.6f} {path}:{step.line}: {step.kind}: {step.text}  {step.note}")
    for warning in result.warnings:
        print(warning, file=sys.stderr)
    if result.verdict != PASS and result.failure is not None:
        print(result.failure.render(path), file=sys.stderr)
    _keep(result, started, script.plan.ip_version)
    return result.verdict == PASS


def _keep(result: Result, started: dt.datetime, version: str) -> None:
    folder = os.environ.get("RFCDRILL_RESULTS")
    if not folder:
        return
    os.makedirs(folder, exist_ok=True)
    write_results(os.path.join(folder, f"{result.case_id}@{version}.json"),
                  run_metadata(started, [result.target], [result]), [result])


if __name__ == "__main__":
    sys.exit(main())
