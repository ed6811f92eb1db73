"""One boot of a kernel under virtme-ng that runs cases with the same runner, and its results.

The guest sees the host's root read-only over 9p (so this project and its virtual environment
run unchanged) and one read-write folder, where harness.kernels.guest leaves `started`,
`guest.log`, `results.json` and `rc`. vng's own exit status (255 on every boot measured here)
and its console are not trusted: a boot without `started` within BOOT_LIMIT is a boot
failure, a run without results.json within its limit a guest time-out. The guest's
`fidelity.json` (harness.kernels.fidelity) says how well it keeps time: its results are
marked, and its timing failures made errors, when that is not well enough.

KVM is used only where it runs ordinary guests: /dev/kvm usable, the CPU has vmx or svm, and
the module behind it is not kvm_pvm (a page-table based KVM for PVM-enabled guest kernels,
which Debian's are not: qemu aborts with them). Elsewhere qemu emulates the CPU (TCG).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

from harness import expectations
from harness.errors import CaseError
from harness.execute import SLACK, Job, nominal_duration
from harness.kernels import cache, debian, fidelity, guest, spec
from harness.kernels.tools import vng_path
from harness.record import read_results
from harness.result import ERROR, INTERRUPTED, NOT_APPLICABLE, SKIPPED, Failure, Result

BOOT_LIMIT = 240.0         # seconds until the guest's script must have started
START_COST = 60.0          # the runner's start in the guest (Python imports over 9p: 13-19 s)
TCG_FACTOR = 3.0           # a case's wall time under emulation, against its timeline
MEMORY, CPUS = "2G", 2
ACCEL_KEY, BOOT_KEY, IMAGE_KEY = "vm accelerator", "vm boot (s)", "vm kernel"


def accelerator() -> str:
    """"kvm" when KVM can run an ordinary guest here, else "tcg"."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK) or Path("/sys/module/kvm_pvm").exists():
        return "tcg"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "tcg"
    return "kvm" if re.search(r"(?m)^flags\s*:.*\b(vmx|svm)\b", flags) else "tcg"


def kernel_for(target: str) -> cache.Kernel:
    """The kernel a `kernel@...` target boots, fetched into the cache if need be."""
    request = target.removeprefix(spec.PREFIX)
    if not spec.is_path(request):
        return debian.fetch(request)
    path = Path(request)
    if path.is_dir():
        images = sorted(path.glob("boot/vmlinuz-*"))
        if len(images) != 1:
            raise CaseError(None, f"{target}: a kernel tree holds one boot/vmlinuz-*, found "
                            f"{len(images)} in {path}")
        path = images[0]
    if not path.is_file():
        raise CaseError(None, f"{target}: {path} is not a kernel image or a tree with one")
    return cache.Kernel(str(path.resolve()))


def congestion_control() -> str:
    try:
        return Path("/proc/sys/net/ipv4/tcp_congestion_control").read_text().strip()
    except OSError:
        return "cubic"


def vng_command(kernel: cache.Kernel, out: Path, run_args: list[str], accel: str) -> list[str]:
    """The vng invocation that boots `kernel` and runs `rfcdrill run RUN_ARGS` inside. The
    arguments go in a file of the shared folder: vng passes the command on the kernel's
    command line, which x86 cuts at 2048 bytes (a suite's file names are far longer)."""
    (out / guest.ARGS).write_text(json.dumps({"congestion": congestion_control(),
                                              "run": run_args}))
    command_line = [sys.executable, "-m", "harness.kernels.guest", str(out)]
    command = [vng_path() or "vng", "--run", kernel.image, "--rwdir", str(out),
               "-m", MEMORY, "-p", str(CPUS), "--exec", shlex.join(command_line)]
    if accel == "tcg":
        command.insert(3, "--disable-kvm")
    return command


def run_args(jobs: list[Job], out: Path, parallel: int, scale: float, defines: dict[str, str],
             versions: list[str] | None) -> list[str]:
    """What the guest's runner is asked: these jobs' files, on its own kernel."""
    args = sorted({str(Path(j.path).resolve()) for j in jobs})
    args += ["--target", "kernel", "--json", str(out / "results.json"), "--jobs", str(parallel),
             "--tolerance-scale", repr(scale)]
    for name, value in defines.items():
        args += ["-D", f"{name}={value}"]
    for version in versions or ():
        args += ["--ip-version", version]
    return args


def run_limit(jobs: list[Job], parallel: int, scale: float, accel: str) -> float:
    """Seconds the whole guest run may take, after boot."""
    factor = TCG_FACTOR if accel == "tcg" else 1.0
    cases = sum(nominal_duration(j.script) * scale + SLACK for j in jobs if j.script is not None)
    return START_COST + cases * factor / max(1, parallel)


@dataclass
class Boot:
    """What one boot gave: results, or why there are none."""

    results: list[Result]
    problem: str = ""
    boot_s: float = 0.0
    run_s: float = 0.0
    timing: fidelity.Fidelity | None = None       # the guest's timing, measured at boot


def boot_and_run(kernel: cache.Kernel, target: str, jobs: list[Job], args: list[str],
                 out: Path, limit: float, accel: str, stopping: Callable[[], bool],
                 say: Callable[[str], None]) -> Boot:
    """Boot, wait for the guest's results, and stop the VM whatever happens."""
    command = vng_command(kernel, out, args, accel)
    t0 = time.monotonic()
    # vng starts virtme-run from PATH: the folder it was installed in comes first.
    path = f"{Path(vng_path() or 'vng').parent}:{os.environ.get('PATH', '')}"
    with open(out / "vng.log", "wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PATH": path},
                                stdin=subprocess.DEVNULL, start_new_session=True)
    started = out / "started"
    boot_s, done_lines, problem = 0.0, 0, ""
    timing: fidelity.Fidelity | None = None
    try:
        while True:
            time.sleep(0.5)
            now = time.monotonic() - t0
            if stopping():
                problem = "interrupted"
                break
            if not boot_s and started.exists():
                boot_s = now
                say(f"{target}: booted in {boot_s:.1f} s ({accel}), measuring its timing")
            if boot_s and timing is None and (timing := fidelity.load(out)) is not None:
                # An untrusted guest widens its tolerances, and its cases' limits with them.
                limit *= timing.scale / timing.asked_scale
                env = timing.environment()
                say(f"{target}: {timing.accelerator} in the guest, injection lateness "
                    f"p50/p99/max {env[fidelity.LATENESS_KEY]} ms: {env[fidelity.TRUST_KEY]}; "
                    f"running {len(jobs)} cases")
            finished = (out / "rc").exists()
            if finished or proc.poll() is not None:
                if not finished and not (out / "rc").exists():
                    problem = _why(out, boot_s)
                break
            if not boot_s and now > BOOT_LIMIT:
                problem = (f"the guest did not come up within {BOOT_LIMIT:.0f} s "
                           f"({accel}); {_tail(out / 'vng.log')}")
                break
            if boot_s and now - boot_s > limit:
                problem = f"the guest's run took over {limit:.0f} s ({accel}); {_tail(out / 'guest.log')}"
                break
            lines = _progress_lines(out / "guest.log")
            if lines >= done_lines + 20:
                done_lines = lines
                say(f"{target}: {lines} of {len(jobs)} results in {now - boot_s:.0f} s")
    finally:
        _stop(proc)
    run_s = time.monotonic() - t0 - boot_s
    timing = timing or fidelity.load(out)
    if problem:
        return Boot([], problem, boot_s, run_s, timing)
    try:
        _, results = read_results(out / "results.json")
    except CaseError as exc:
        return Boot([], f"the guest wrote no results ({exc}); {_tail(out / 'guest.log')}",
                    boot_s, run_s, timing)
    return Boot(results, "", boot_s, run_s, timing)


def _progress_lines(log: Path) -> int:
    try:
        return len(re.findall(r"(?m)^\[\s*\d+/\d+\]", log.read_text(errors="replace")))
    except OSError:
        return 0


def _why(out: Path, boot_s: float) -> str:
    if not boot_s:
        return f"the guest did not boot: {_tail(out / 'vng.log')}"
    return f"the guest stopped before its run ended: {_tail(out / 'guest.log')}"


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return f"no {path.name}"
    return f"last lines of {path}: " + " / ".join(text[-lines:]) if text else f"{path} is empty"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End vng and its qemu (their own process group, started here)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass


def results_for(target: str, jobs: list[Job], kernel: cache.Kernel, boot: Boot,
                accel: str) -> Iterator[Result]:
    """The guest's results as the target's, with the VM's facts in their environment and
    the expectations of the guest kernel's series; every job an error when the boot failed."""
    if boot.problem:
        verdict = INTERRUPTED if boot.problem == "interrupted" else ERROR
        for job in jobs:
            yield Result(job.case_id, job.path, target, verdict, requirements=job.requirements,
                         failure=Failure(f"{target}: {boot.problem}"), raw_verdict=verdict,
                         environment={ACCEL_KEY: accel, IMAGE_KEY: kernel.describe()})
        return
    wanted = {j.case_id for j in jobs}
    timing = boot.timing or fidelity.judge("unknown", [], 1.0, "the guest wrote no "
                                             f"{fidelity.FILE}")
    facts = {ACCEL_KEY: accel, BOOT_KEY: f"{boot.boot_s:.1f}", IMAGE_KEY: kernel.describe(),
             **timing.environment()}
    for result in boot.results:
        if result.case_id not in wanted:
            continue
        release = result.environment.get("kernel", kernel.release)
        environment = {"kernel": release, **result.environment, **facts}
        if result.verdict in (NOT_APPLICABLE, SKIPPED):     # decided before the run, with why
            yield replace(result, target=target, environment=environment)
            continue
        result = replace(result, target=target, verdict=result.raw_verdict or result.verdict,
                         expectation="", environment=environment)
        yield fidelity.mark(expectations.apply(result, spec.expectations_name(release)), timing)


def run_target(target: str, kernel: cache.Kernel, jobs: list[Job], parallel: int, scale: float,
               defines: dict[str, str], versions: list[str] | None,
               stopping: Callable[[], bool], say: Callable[[str], None]) -> Iterator[Result]:
    """Boot `kernel` once and yield a result for each of `target`'s jobs."""
    accel = accelerator()
    root = cache.cache_root() / "runs"
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=re.sub(r"[^A-Za-z0-9.]", "_", target) + "-") as tmp:
        out = Path(tmp)
        args = run_args(jobs, out, parallel, scale, defines, versions)
        limit = run_limit(jobs, parallel, scale, accel)
        say(f"{target}: booting {kernel.describe()} under {accel} (virtme-ng)")
        boot = boot_and_run(kernel, target, jobs, args, out, limit, accel, stopping, say)
        if boot.problem and boot.problem != "interrupted":
            kept = Path(tempfile.mkdtemp(dir=root, prefix="failed-"))
            shutil.copytree(out, kept, dirs_exist_ok=True)
            say(f"{target}: {boot.problem} (logs kept in {kept})")
        else:
            say(f"{target}: {len(boot.results)} results, boot {boot.boot_s:.1f} s, "
                f"run {boot.run_s:.1f} s")
        yield from results_for(target, jobs, kernel, boot, accel)
