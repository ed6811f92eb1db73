"""What runs inside a guest: `python -m harness.kernels.guest OUT CC -- RUN-ARGS...`.

It writes `OUT/started` (the guest's uptime: the boot time), loads tun, makes the host's TCP
congestion control CC the guest's default (a case's namespace inherits it, so the guest's
kernel runs the cases as the host's does), runs `rfcdrill run RUN-ARGS` with its output in
`OUT/guest.log`, and writes its exit status to `OUT/rc`. virtme-ng's own exit status and
console are not reliable (harness.kernels.vm), so every result comes back through OUT.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    out, congestion, rest = Path(argv[0]), argv[1], argv[3:]
    (out / "started").write_text(Path("/proc/uptime").read_text().split()[0])
    log = os.open(out / "guest.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    for module in ("tun", f"tcp_{congestion}"):
        subprocess.run(["modprobe", module], check=False)
    try:
        Path("/proc/sys/net/ipv4/tcp_congestion_control").write_text(congestion)
    except OSError as exc:
        print(f"guest: cannot use congestion control {congestion}: {exc}", flush=True)
    from harness.cli import main as rfcdrill
    try:
        status = rfcdrill(["run", *rest])
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 2
    (out / "rc").write_text(str(status))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
