"""`rfcdrill bench`: the harness's speed figures, measured and printed.

- fixed cost per case: fork, namespace, TUN device, sysctls, parsing and the verdict's trip
  back, for a case of one system call (goal: median at most 20 ms);
- timing fidelity: how late injected segments leave, and how far the runner's timestamps
  of outbound segments are from the kernel's own, both measured against kernel timestamps
  taken by an AF_PACKET socket on the TUN device (goal: p99 at most 0.5 ms);
- parallel runs: the case suite serially and with --jobs 2, wall times and whether the
  verdicts agree.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import struct
import time
from pathlib import Path

from harness.execute import Job, nominal_duration, run_jobs
from harness.grammar import parse_script
from harness.model import Script
from harness.netns import enter_private_netns, require_privileges
from harness.runner import Runner
from harness.suite import case_files, jobs_for
from harness.targets.kernel import PACKET_OUTGOING, KernelTarget, open_sniffer

OUTLIERS = 3     # the worst packets of each timing figure, printed with what they were


def _script(text: str, name: str) -> Script:
    return Script(id=name, path=f"<bench:{name}>", events=parse_script(text, name))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def fixed_cost(repeat: int) -> dict[str, float]:
    """Per-case wall time in a serial run of one-call cases (what a suite pays per case)."""
    text = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"
    times = []
    start = time.perf_counter()
    scripts = (_script(text, f"fixed-{i}") for i in range(repeat))
    jobs = (Job(s.path, "kernel", s, case_id=s.id) for s in scripts)
    for result in run_jobs(jobs):
        now = time.perf_counter()
        times.append(now - start)
        start = now
        if result.verdict != "pass":
            raise SystemExit(f"bench: the one-call case did not pass: {result.failure}")
    return {"median_ms": statistics.median(times) * 1e3, "p90_ms": percentile(times, 90) * 1e3,
            "max_ms": max(times) * 1e3}


def _fidelity_child(segments: int, gap: float, out: int) -> None:
    lines = []
    for i in range(segments):
        lines.append(f"{'0' if i == 0 else f'+{gap}'} < S 0:0(0) win 1000")
        lines.append("+0 > R. 0:0(0) ack 1 win 0")
    script = _script("\n".join(lines), "fidelity")
    target = KernelTarget()
    steps = []
    enter_private_netns()     # as execute.py does for every case, before setup
    target.setup(script)
    sniffer = open_sniffer(False)          # a second, independent tap on the device
    target.restart_clock()                                   # the case starts now
    offset = target._realtime_offset                         # realtime -> case clock
    Runner(script, target, on_step=steps.append).run()
    kernel: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    while True:
        read = time.time() - offset          # an unstamped packet is stamped after this
        try:
            _, anc, _, addr = sniffer.recvmsg(2048, 64)
        except BlockingIOError:
            break
        sec, nsec = struct.unpack("qq", anc[0][2][:16])
        kernel[addr[2] == PACKET_OUTGOING].append((sec + nsec / 1e9 - offset, read))
    ours_in = [s.due for s in steps if s.kind == "inject"]
    ours_out = [s.time for s in steps if s.kind == "outbound"]
    os.write(out, json.dumps({"late": _paired(kernel[False], ours_in, subtract=True),
                              "stamp": _paired(kernel[True], ours_out, subtract=False),
                              "stamp_delay_ms": target.stamp_delay * 1e3}).encode())
    os._exit(0)


def _paired(kernel: list[tuple[float, float]], ours: list[float], subtract: bool) -> list[dict]:
    """Each packet's error (kernel stamp - our time, or its absolute value) in ms, with the
    packet's index, our time, and whether the kernel's stamp is only the time it was read
    (a packet that arrived before the kernel turned stamping on: see await_timestamps)."""
    paired = []
    for index, ((stamp, read), mine) in enumerate(zip(kernel, ours)):
        error = (stamp - mine) * 1e3
        paired.append({"index": index, "at": mine, "ms": error if subtract else abs(error),
                       "unstamped": stamp >= read})
    return paired


def measure(segments: int, gap: float = 0.005) -> dict:
    """Each injected and outbound segment's timing error against the kernel's stamps
    (`late`, `stamp`: lists of _paired's records), measured in a forked child."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        try:
            _fidelity_child(segments, gap, wfd)
        finally:
            os._exit(1)
    os.close(wfd)
    chunks = []
    while chunk := os.read(rfd, 1 << 20):
        chunks.append(chunk)
    os.waitpid(pid, 0)
    if not chunks:
        raise RuntimeError("the measuring process wrote nothing (it failed before its first segment)")
    return json.loads(b"".join(chunks))


def fidelity(segments: int, gap: float = 0.005) -> dict[str, object]:
    data = measure(segments, gap)
    figures: dict[str, object] = {"segments": len(data["late"]),
                                  "stamp_delay_ms": data["stamp_delay_ms"]}
    for name in ("late", "stamp"):
        values = [p["ms"] for p in data[name]]
        figures[name] = {"p50": percentile(values, 50), "p99": percentile(values, 99),
                         "max": max(values),
                         "outliers": sorted(data[name], key=lambda p: -p["ms"])[:OUTLIERS]}
    return figures


def _outliers(packets: list[dict], what: str) -> str:
    """The worst packets of a figure, each with what it was."""
    return "; ".join(f"#{p['index']} ({what} at {p['at']:.3f} s) {p['ms']:.3f} ms"
                     + (" UNSTAMPED: the kernel stamped it only when it was read" if p["unstamped"]
                        else "") for p in packets)


def pkt_timing(folder: str) -> dict[str, float]:
    """Wall time for a folder of .pkt scripts, each in the IP versions packetdrill's runner
    gives it, serially and with two jobs, beside an estimate of packetdrill's own: each run's
    timeline plus the ~0.15 s packetdrill spends per run here."""
    files = [f for f in case_files([folder]) if f.endswith(".pkt")]
    jobs = [j for f in files for j in jobs_for(f, ["kernel"]) if j.script is not None]
    figures = {"scripts": float(len(files)), "runs": float(len(jobs)),
               "packetdrill_estimate_s": sum(nominal_duration(j.script) + 0.15 for j in jobs)}
    for n in (1, 2):
        start = time.perf_counter()
        for _ in run_jobs(jobs, n):
            pass
        figures[f"wall_s_jobs{n}"] = time.perf_counter() - start
    return figures


def parallel(cases: str) -> dict[str, object]:
    """The case suite (without its slow/ cases, which wait out minute-long timers) serially
    and with two jobs; `.pkt` scripts are timed the same way."""
    files = [f for f in case_files([cases]) if "slow" not in Path(f).parts]
    jobs = [j for f in files for j in jobs_for(f, ["kernel"]) if j.script is not None]
    figures: dict[str, object] = {"cases": len(jobs)}
    verdicts = {}
    for n in (1, 2):
        start = time.perf_counter()
        verdicts[n] = {(r.case_id, r.target): r.raw_verdict for r in run_jobs(jobs, n)}
        figures[f"wall_s_jobs{n}"] = time.perf_counter() - start
    differ = sorted(k[0] for k in verdicts[1] if verdicts[1][k] != verdicts[2].get(k))
    figures["verdicts_differ"] = differ
    return figures


def main(args: argparse.Namespace) -> int:
    if getattr(args, "codec", False):
        from harness.codecbench import main as codec_bench
        codec_bench(args.quick)
        return 0
    require_privileges("rfcdrill bench")
    if getattr(args, "stack", False):
        from harness.stackbench import main as stack_bench
        stack_bench(args.quick, args.cases)
        return 0
    repeat = 20 if args.quick else 100
    cost = fixed_cost(repeat)
    print(f"fixed cost per case ({repeat} one-call cases): median {cost['median_ms']:.1f} ms, "
          f"p90 {cost['p90_ms']:.1f} ms, max {cost['max_ms']:.1f} ms   [goal: median <= 20 ms]")
    fid = fidelity(100 if args.quick else 400)
    late, stamp = fid["late"], fid["stamp"]
    print(f"kernel packet timestamps on after {fid['stamp_delay_ms']:.3f} ms of waiting")
    print(f"injected segments, lateness vs kernel rx timestamp ({fid['segments']} segments): "
          f"p50 {late['p50']:.3f} ms, p99 {late['p99']:.3f} ms, max {late['max']:.3f} ms   "
          f"[goal: p99 <= 0.5 ms]\n  worst: {_outliers(late['outliers'], 'injected')}")
    print(f"outbound segments, |runner stamp - kernel tx timestamp| (the runner takes the "
          f"kernel's own stamp; a second tap checks it): p50 {stamp['p50']:.3f} ms, "
          f"p99 {stamp['p99']:.3f} ms, max {stamp['max']:.3f} ms   [goal: p99 <= 0.5 ms]\n"
          f"  worst: {_outliers(stamp['outliers'], 'sent')}")
    root = Path(__file__).resolve().parent.parent
    pkt = pkt_timing(args.pkt or str(root / "tests" / "pkt"))
    print(f".pkt scripts ({pkt['scripts']:.0f} in {args.pkt or 'tests/pkt'}, {pkt['runs']:.0f} runs "
          f"in their IP versions): serial "
          f"{pkt['wall_s_jobs1']:.2f} s, --jobs 2 {pkt['wall_s_jobs2']:.2f} s; packetdrill, "
          f"estimated as timelines + 0.15 s per script: {pkt['packetdrill_estimate_s']:.2f} s   "
          f"[goal: at most half of packetdrill's]")
    cases = args.cases or str(root / "cases")
    if Path(cases).is_dir():
        par = parallel(cases)
        print(f"case suite ({par['cases']} kernel cases in {cases}, slow/ left out): serial "
              f"{par['wall_s_jobs1']:.1f} s, --jobs 2 {par['wall_s_jobs2']:.1f} s; verdicts "
              + ("identical" if not par["verdicts_differ"] else
                 "DIFFER for: " + ", ".join(par["verdicts_differ"])))
    return 0
