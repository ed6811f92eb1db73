"""What runs inside a guest: `python -m harness.kernels.guest OUT`, with `OUT/args.json`
holding RUN-ARGS and the host's TCP congestion control CC.

It writes `OUT/started` (the guest's uptime: the boot time), loads tun, makes CC the
guest's default (a case's namespace inherits it, so the guest's
kernel runs the cases as the host's does), measures how late it injects segments and judges
its timing (`OUT/fidelity.json`, harness.kernels.fidelity: an untrusted guest runs with
widened tolerances), runs `rfcdrill run RUN-ARGS` with its output in
`OUT/guest.log`, and writes its exit status to `OUT/rc`. virtme-ng's own exit status and
console are not reliable (harness.kernels.vm), so every result comes back through OUT.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harness import bench
from harness.kernels import fidelity


ARGS = "args.json"


def main(argv: list[str]) -> int:
    out = Path(argv[0])
    given = json.loads((out / ARGS).read_text())
    congestion, rest = given["congestion"], given["run"]
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
    asked = float(rest[rest.index("--tolerance-scale") + 1]) if "--tolerance-scale" in rest else 1.0
    timing = measure(asked)
    fidelity.save(out, timing)
    print(f"guest: {timing.accelerator}, {timing.environment()[fidelity.LATENESS_KEY]} ms late; "
          f"{timing.environment()[fidelity.TRUST_KEY]}", flush=True)
    from harness.cli import main as rfcdrill
    try:
        status = rfcdrill(["run", *rest, "--tolerance-floor-ms", repr(fidelity.BASE_MS * timing.scale)])
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 2
    (out / "rc").write_text(str(status))
    return status


def measure(asked_scale: float) -> fidelity.Fidelity:
    """The guest's timing fidelity (harness.bench's injection lateness), judged."""
    accel = fidelity.guest_accelerator()
    try:
        late = [p["ms"] for p in bench.measure(fidelity.SEGMENTS)["late"]]
    except Exception as exc:            # the run goes on, with its timing untrusted and why
        return fidelity.judge(accel, [], asked_scale, f"{type(exc).__name__}: {exc}")
    return fidelity.judge(accel, late, asked_scale)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
