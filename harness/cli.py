"""The `rfcdrill` command: run cases, check them, render reports, benchmark.

A thin door onto the same runner the pytest plugin uses (harness.suite, harness.execute).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path
from typing import Iterator

from harness import expectations, limits, shard
from harness.errors import CaseError, NeedsRoot
from harness.execute import Job, run_jobs, with_floor
from harness.interrupt import StopSignals
from harness.netns import require_privileges
from harness.record import read_results, run_metadata, write_results
from harness.report import junit
from harness.report.merge import merge, parse_renames
from harness.report.write import write_report
from harness.result import (CHOICE, ERROR, FAIL, FOLLOWS, INTERRUPTED, NOT_APPLICABLE, PASS,
                            SKIPPED, VERDICTS, XFAIL, XPASS, Result)
from harness.ip import VERSIONS
from harness.kernels import vm
from harness.kernels.spec import is_vm_target
from harness.suite import available_targets, case_ids, check_unique, jobs_for, skipped_result
from harness.targets import NATIVE, known_names, resolve

_LABEL = {PASS: "PASS", FAIL: "FAIL", XFAIL: "XFAIL", XPASS: "XPASS", ERROR: "ERROR",
          SKIPPED: "SKIP", INTERRUPTED: "INTR", FOLLOWS: "LATER", CHOICE: "CHOICE",
          NOT_APPLICABLE: "N/A"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rfcdrill", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run cases against targets")
    run.add_argument("paths", nargs="+", help="case files (.yaml, .pkt) or directories")
    run.add_argument("--target", action="append", metavar="NAME",
                     help=f"target to run against (repeatable): {', '.join(known_names())}, a name "
                          "registered in rfcdrill-targets.toml, or exec:COMMAND for any adapter "
                          "of the target protocol, kernel@VERSION (a Debian kernel, e.g. 6.1) or "
                          "kernel@PATH (a kernel image) booted in a VM (default: every available one of "
                          "kernel, stack, stack-linux, stack-alt, lwip, gvisor)")
    run.add_argument("--jobs", "-j", type=limits.count(limits.MAX_JOBS), default=1,
                     help="cases run in parallel")
    run.add_argument("--tolerance-scale", type=limits.tolerance_scale, default=1.0,
                     help="multiply every timing tolerance (for slow machines)")
    run.add_argument("--tolerance-floor-ms", type=limits.tolerance_scale, default=None, metavar="MS",
                     help="no timing tolerance below MS milliseconds, however short the gap (a VM "
                          "guest whose timing is untrusted runs its cases so)")
    run.add_argument("-k", dest="keyword", help="only cases whose id contains this text")
    run.add_argument("--json", help="write results.json here")
    run.add_argument("--junit", help="write JUnit XML here")
    run.add_argument("--report", help="write the full report (HTML, Markdown, JSON, JUnit, pcaps) here")
    run.add_argument("--pcap", choices=("failures", "all"), default="failures",
                     help="which cases get a pcap in the report")
    run.add_argument("--quiet", "-q", action="store_true", help="print only failures and the summary")
    run.add_argument("--repeat", type=limits.count(limits.MAX_REPEAT), default=1, metavar="N",
                     help="run the cases N times; a verdict that changes between runs is FLAKY")
    run.add_argument("-D", "--define", action="append", default=[], metavar="NAME=VALUE",
                     help="define a symbol for the scripts (packetdrill's -D)")
    run.add_argument("--ip-version", action="append", choices=VERSIONS, dest="ip_versions",
                     help="only the runs in this IP version (repeatable; default: every version "
                          "a case runs in; a .pkt runs in the versions packetdrill's runners use). "
                          "A YAML case that names no version runs in the ones given here")
    run.add_argument("--shard", type=shard.parse, metavar="K/N",
                     help="run only part K of N of the cases (split by case id, the same on "
                          "every machine; join the parts with `rfcdrill report merge`)")

    check = sub.add_parser("check", help="validate case files without running them")
    check.add_argument("paths", nargs="+")
    check.add_argument("-D", "--define", action="append", default=[], metavar="NAME=VALUE")

    report = sub.add_parser("report", help="render a report again from results.json, or join "
                            "several (`report merge A.json B.json ... --report DIR`)")
    report.add_argument("results", nargs="+", metavar="results.json",
                        help="one results.json; or `merge` and two or more (shards, kernels, "
                             "machines), each target a column")
    report.add_argument("--out", "--report", dest="out", required=True, help="the report folder")
    report.add_argument("--pcap", choices=("failures", "all"), default="failures")
    report.add_argument("--rename", action="append", default=[], metavar="FILE:TARGET=NEW",
                        help="with merge: call TARGET of the input FILE NEW (runs of one "
                             "target name on several machines; repeatable)")

    convert = sub.add_parser("convert", help="convert a .pkt script to a YAML case or back")
    convert.add_argument("source", help="a .pkt or .yaml file")
    convert.add_argument("-o", "--output", required=True, help="the file to write")
    convert.add_argument("--requirement", action="append", default=[],
                         help="requirement id for a .pkt without a '// requirements:' line")
    convert.add_argument("-D", "--define", action="append", default=[], metavar="NAME=VALUE")
    convert.add_argument("--loose", action="store_true",
                         help="to .pkt: write option lists packetdrill cannot say (<{mss? "
                              "<=1460}>) as <...>, unchecked, with a warning for each line")

    bench = sub.add_parser("bench", help="measure fixed cost, timing fidelity and parallel speed")
    bench.add_argument("--cases", default=None, help="case directory for the suite timings")
    bench.add_argument("--pkt", default=None, help="folder of .pkt scripts to time (default tests/pkt)")
    bench.add_argument("--quick", action="store_true", help="fewer repetitions")
    bench.add_argument("--stack", action="store_true",
                       help="the userspace stack's figures instead (throughput, memory, suite)")
    bench.add_argument("--codec", action="store_true",
                       help="the harness's cost to decode and build one segment instead (no root needed)")

    from harness.mutate.command import add_parser as add_mutate
    add_mutate(sub)

    interop = sub.add_parser("interop", help="the userspace stack against kernel TCP over TUN")
    interop.add_argument("--quick", action="store_true", help="smaller transfers, fewer connections")

    agree = sub.add_parser("agree", help="run a packetdrill corpus as its runner does, beside "
                           "packetdrill itself, and compare the verdicts")
    from harness.agree import add_arguments
    add_arguments(agree)

    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            return cmd_run(args)
        if args.command == "check":
            return cmd_check(args.paths, _defines(args.define))
        if args.command == "report":
            return cmd_report(args.results, args.out, args.pcap == "all", args.rename)
        if args.command == "convert":
            from harness.convert import convert as convert_file
            warnings: list[str] | None = [] if args.loose else None
            convert_file(args.source, args.output, args.requirement, _defines(args.define),
                         warnings)
            for warning in warnings or []:
                print(f"warning: {warning}", file=sys.stderr)
            print(f"wrote {args.output}")
            return 0
        if args.command == "mutate":
            from harness.mutate.command import main as mutate_main
            return mutate_main(args)
        if args.command == "agree":
            from harness.agree import main as agree_main
            require_privileges("rfcdrill " + " ".join(sys.argv[1:]))
            return agree_main(args)
        if args.command == "interop":
            from harness.interop import main as interop_main
            return interop_main(args)
        from harness.bench import main as bench_main
        return bench_main(args)
    except NeedsRoot as exc:
        print(exc, file=sys.stderr)
        return 2
    except CaseError as exc:
        print(f"rfcdrill: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rfcdrill: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:            # output piped into `head` and the like
        sys.stderr.close()
        return 1


def _defines(items: list[str]) -> dict[str, str]:
    defines = {}
    for item in items:
        problem = limits.define_error(item)
        if problem:
            raise CaseError(None, f"-D {limits.brief(item, 60)}: {problem}")
        name, _, value = item.partition("=")
        defines[name] = value
    return defines


def cmd_report(paths: list[str], out: str, pcap_all: bool, renames: list[str]) -> int:
    """Render one results.json again, or join several (`merge A.json B.json ...`)."""
    if paths[0] == "merge":
        meta, results = merge(paths[1:], parse_renames(paths[1:], renames))
    elif renames:
        raise CaseError(None, "--rename renames the targets of merged inputs: "
                        "rfcdrill report merge A.json B.json --rename B.json:TARGET=NEW ...")
    elif len(paths) == 1:
        meta, results = read_results(paths[0])
    else:
        raise CaseError(None, f"report renders one results.json, given {len(paths)}; to join "
                        "several: rfcdrill report merge " + " ".join(paths) + f" --report {out}")
    write_report(out, meta, results, pcap_all)
    print(f"report written to {out}/index.html ({len(results)} results)")
    return 0


def cmd_check(paths: list[str], defines: dict[str, str]) -> int:
    """Load every case file under `paths` and what running it would read (its expectations
    files, the programs its options name); print every error, each once."""
    files = case_ids(paths)
    if not files:
        print("rfcdrill: no case files found in " + " ".join(paths), file=sys.stderr)
        return 2
    bad: set[str] = set()
    for job in _jobs(files, list(NATIVE), defines):
        if job.error is not None:
            bad.add(job.path)
            print(job.error, file=sys.stderr, flush=True)
    print(f"{len(files)} case files checked, {len(bad)} with errors")
    return 1 if bad else 0


def _jobs(files: dict[str, str | None], targets: list[str], defines: dict[str, str],
          versions: list[str] | None = None) -> list[Job]:
    jobs: list[Job] = []
    seen_errors: set[tuple[str, str]] = set()     # one error job per file and error
    for path, case_id in files.items():
        for job in jobs_for(path, targets, defines, versions, case_id):
            if job.error is not None:
                if (path, str(job.error)) in seen_errors:
                    continue
                seen_errors.add((path, str(job.error)))
            jobs.append(job)
    check_unique(jobs)
    return jobs


def cmd_run(args: argparse.Namespace) -> int:
    require_privileges("rfcdrill " + " ".join(sys.argv[1:]))
    targets = args.target or available_targets()
    unavailable = [spec for spec in map(resolve, targets) if spec.unavailable]
    for spec in unavailable:
        print(f"rfcdrill: the {spec.name} target is unavailable: {spec.unavailable}", file=sys.stderr)
    # Kernels to boot are found (and fetched) first: an unknown version ends the run now.
    args.kernels = {t: vm.kernel_for(t) for t in targets
                    if is_vm_target(t) and not resolve(t).unavailable}
    started = dt.datetime.now(dt.timezone.utc)
    jobs = [j for j in _jobs(case_ids(args.paths), targets, _defines(args.define), args.ip_versions)
            if not args.keyword or args.keyword in j.case_id]
    if not jobs:
        among = f" that run in {', '.join(args.ip_versions)}" if args.ip_versions else ""
        print(f"rfcdrill: no cases{among} found in " + " ".join(args.paths), file=sys.stderr)
        return 2
    if args.shard:
        cases = len({j.case_id for j in jobs})
        jobs = shard.select(jobs, *args.shard)
        print(f"shard {args.shard[0]}/{args.shard[1]}: {len({j.case_id for j in jobs})} of "
              f"{cases} cases", flush=True)
    skipped: list[Result] = []
    runnable: list[Job] = []
    for job in jobs:
        result = skipped_result(job) if job.script is not None else None
        if result is not None:
            skipped.append(result)
        else:
            runnable.append(job)
    with StopSignals() as stop:      # a signal from here on ends the run with its report
        runs = _rounds(args, skipped, runnable, len(jobs), stop)
        results = runs[-1]
        meta = run_metadata(started, targets, results)
        if args.shard:
            meta["shard"] = f"{args.shard[0]}/{args.shard[1]}"
        if stop.stopping:
            meta["interrupted"] = stop.name
        if args.json:
            write_results(args.json, meta, results)
        if args.junit:
            junit.write(args.junit, results)
        if args.report:
            write_report(args.report, meta, results, args.pcap == "all")
            print(f"report: {Path(args.report) / 'index.html'}")
    if stop.stopping:
        done = sum(r.verdict != INTERRUPTED for r in results)
        print(f"rfcdrill: interrupted by {stop.name}: {done} of {len(results)} verdicts "
              "finished; the rest are marked interrupted", file=sys.stderr)
        return stop.exit_status
    unstable = _unstable(runs)
    for line in unstable:
        print(line)
    bad = any(r.verdict in (FAIL, ERROR, XPASS) for run in runs for r in run)
    return 1 if bad or unstable or unavailable else 0


def _rounds(args: argparse.Namespace, skipped: list[Result], runnable: list[Job], total: int,
            stop: StopSignals) -> list[list[Result]]:
    """The run, --repeat times (fewer if a signal stops it); the results of each round."""
    runs: list[list[Result]] = []
    for round_ in range(args.repeat):
        if args.repeat > 1:
            print(f"-- run {round_ + 1} of {args.repeat}", flush=True)
        t0 = time.monotonic()
        results: list[Result] = []
        for result in skipped:           # decided before the run: skipped, not applicable
            results.append(result)
            _progress(result, len(results), total, args.quiet)
        local = [with_floor(j, args.tolerance_floor_ms) for j in runnable if not is_vm_target(j.target)]
        for result in run_jobs(local, args.jobs, args.tolerance_scale, stop):
            results.append(expectations.apply(result, resolve(result.target).expectations_name))
            _progress(results[-1], len(results), total, args.quiet)
        for result in _in_vms(args, [j for j in runnable if is_vm_target(j.target)], stop):
            results.append(result)
            _progress(result, len(results), total, args.quiet)
        _summary(results, time.monotonic() - t0)
        runs.append(results)
        if stop.stopping:
            break
    return runs


def _in_vms(args: argparse.Namespace, jobs: list[Job], stop: StopSignals) -> Iterator[Result]:
    """The results of the jobs for other kernels: one boot per kernel, one after another
    (two emulated guests on a small machine would each run late)."""
    for target, kernel in args.kernels.items():
        mine = [j for j in jobs if j.target == target]
        if mine and not stop.stopping:
            yield from vm.run_target(target, kernel, mine, args.jobs, args.tolerance_scale,
                                     _defines(args.define), args.ip_versions,
                                     lambda: stop.stopping, lambda text: print(text, flush=True))


def _unstable(runs: list[list[Result]]) -> list[str]:
    """Cases whose verdict was not the same in every run (--repeat)."""
    seen: dict[tuple[str, str], list[str]] = {}
    for run in runs:
        for r in run:
            seen.setdefault((r.case_id, r.target), []).append(r.verdict)
    return [f"FLAKY {case}[{target}]: " + ", ".join(verdicts)
            for (case, target), verdicts in sorted(seen.items()) if len(set(verdicts)) > 1]


def _progress(result: Result, done: int, total: int, quiet: bool) -> None:
    label = _LABEL[result.verdict]
    if quiet and result.verdict in (PASS, XFAIL, SKIPPED, FOLLOWS, CHOICE, NOT_APPLICABLE):
        return
    print(f"[{done:>{len(str(total))}}/{total}] {label:<6} {result.target:<6} "
          f"{result.case_id} ({result.duration:.2f} s)", flush=True)
    for taken in result.branches:
        print("    " + taken.describe(), flush=True)
    if result.verdict == FOLLOWS and not result.branches:
        print(f"    follows {result.follows} ({result.expectation})", flush=True)
    for warning in result.warnings:
        print("    " + warning, flush=True)
    if result.verdict in (FAIL, ERROR, INTERRUPTED) and result.failure:
        print("    " + result.failure.render(result.path).replace("\n", "\n    "), flush=True)
    elif result.verdict == XPASS:
        print(f"    expected to fail on {result.target} ({result.expectation}), but passed")
    elif result.verdict == NOT_APPLICABLE:
        print(f"    {result.expectation}")


def _summary(results: list[Result], elapsed: float) -> None:
    counts = {v: sum(r.verdict == v for r in results) for v in VERDICTS}
    parts = [f"{counts[v]} {v}" for v in VERDICTS if counts[v]]
    print(f"\n{len(results)} results in {elapsed:.1f} s: " + ", ".join(parts), flush=True)


if __name__ == "__main__":
    sys.exit(main())
