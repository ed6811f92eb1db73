"""`rfcdrill mutate`: run the cases on the stack target once unmutated and once per mutant.

Theory of operation: the cases are loaded for the `stack` target (virtual time). Only the
cases tied to a mutant (citing one of its requirement ids, score.tied) run with it, unless
--all-cases. A baseline run of the same cases on the unmutated stack says which of them pass
to begin with. Every (mutant, case) pair is then one job of the ordinary runner, in its own
process, where `Job.prepare` installs the mutant before the target starts; all pairs share
one pool of --jobs processes. The report lists each surviving mutant with its requirements
and its tied cases, the time taken, and last `mutation score: KILLED/TOTAL`.
"""

from __future__ import annotations

import argparse
import functools
import re
import os
import sys
import time
from dataclasses import replace

from harness import limits
from harness.errors import CaseError
from harness.execute import Job, run_jobs
from harness.interrupt import StopSignals
from harness.mutate.patching import Mutant, install
from harness.mutate.registry import MUTANTS
from harness.mutate.score import BROKEN, Outcome, judge, summary_line, tied
from harness.result import ERROR, PASSING, Result
from harness.netns import require_privileges
from harness.suite import case_files, check_unique, jobs_for, skipped_result

TARGET = "stack"
# Exceptions that mean a mutant's own code is wrong (the crash a mutant means to cause is not
# one of these): such a run is reported, never counted as a kill.
_PROGRAMMING_ERRORS = re.compile(r"internal error: (TypeError|AttributeError|NameError|"
                                 r"UnboundLocalError|KeyError|IndexError|RecursionError)\b")
_SEP = " :: "        # joins mutant and case in a mutant job's case id


def add_parser(sub: argparse._SubParsersAction) -> None:
    cmd = sub.add_parser("mutate", help="mutation-test the cases: break the stack one requirement "
                                        "at a time and count the mutants the cases catch")
    cmd.add_argument("paths", nargs="*", default=["cases"], help="case files or directories (default: cases)")
    cmd.add_argument("--jobs", "-j", type=limits.count(limits.MAX_JOBS), default=os.cpu_count() or 1,
                     help="case processes at once (default: the CPU count)")
    cmd.add_argument("--mutant", "-m", action="append", metavar="NAME",
                     help="only this mutant (repeatable; default: all)")
    cmd.add_argument("--all-cases", action="store_true",
                     help="run every case with each mutant, not only the cases citing its "
                          "requirements (a kill still needs a tied case; other cases that "
                          "failed are listed)")
    cmd.add_argument("--min-score", type=_fraction, metavar="F",
                     help="exit 1 if killed/total is below F (0..1, e.g. 0.95)")
    cmd.add_argument("--list", action="store_true", help="list the mutants and exit")
    cmd.add_argument("--verbose", "-v", action="store_true", help="print every mutant, not only survivors")


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def main(args: argparse.Namespace) -> int:
    mutants = _selected(args.mutant)
    if args.list:
        for m in mutants:
            print(f"{m.name}  [{', '.join(m.requirements)}]  {m.description}")
        print(f"{len(mutants)} mutants")
        return 0
    require_privileges("rfcdrill " + " ".join(sys.argv[1:]))
    started = time.monotonic()
    cases, left_out = _case_jobs(args.paths)
    if not cases:
        print("rfcdrill: no cases for the stack target in " + " ".join(args.paths), file=sys.stderr)
        return 2
    citing = {case: job.requirements for case, job in cases.items()}
    plan = {m.name: (sorted(cases) if args.all_cases else tied(m, citing)) for m in mutants}
    with StopSignals() as stop:
        wanted = sorted({case for names in plan.values() for case in names})
        baseline = {r.case_id: r.raw_verdict for r in run_jobs(
            [cases[c] for c in wanted], args.jobs, stop=stop)}
        failing = sorted(c for c in wanted if baseline.get(c) not in PASSING)
        print(f"baseline: {len(wanted)} cases on the unmutated stack ({left_out} case files do "
              "not run on it: other targets only, load errors, skipped, not applicable), "
              f"{len(failing)} not passing (they kill no mutant)"
              f"{': ' + ', '.join(failing) if failing else ''}", flush=True)
        verdicts, seconds = _run_mutants(mutants, plan, cases, args.jobs, stop)
        if stop.stopping:
            print(f"rfcdrill: interrupted by {stop.name}", file=sys.stderr)
            return stop.exit_status
    outcomes = [judge(m, tied(m, citing), baseline, verdicts.get(m.name, {}),
                      seconds.get(m.name, 0.0)) for m in mutants]
    runs = sum(len(v) for v in verdicts.values())
    _report(outcomes, verdicts, baseline, args.verbose)
    elapsed = time.monotonic() - started
    print(f"{len(outcomes)} mutants, {runs} mutant case runs (+{len(wanted)} baseline) in "
          f"{elapsed:.1f} s with --jobs {args.jobs}"
          f"{'' if args.all_cases else '; each mutant ran only the cases citing its requirements'}")
    print(summary_line(outcomes))
    killed = sum(o.killed for o in outcomes)
    if args.min_score is not None and killed < args.min_score * len(outcomes):
        return 1
    return 0


def _selected(names: list[str] | None) -> list[Mutant]:
    if not names:
        return list(MUTANTS.values())
    unknown = [n for n in names if n not in MUTANTS]
    if unknown:
        raise CaseError(None, f"unknown mutant {', '.join(unknown)}; `rfcdrill mutate --list` lists them")
    return [MUTANTS[n] for n in names]


def _case_jobs(paths: list[str]) -> tuple[dict[str, Job], int]:
    """The runnable stack jobs by case id, and how many case files give none (cases for other
    targets only, load errors, skipped, not applicable)."""
    files = case_files(paths)
    jobs = [job for path in files for job in jobs_for(path, [TARGET])]
    check_unique(jobs)
    runnable = {job.case_id: job for job in jobs
                if job.script is not None and skipped_result(job) is None}
    return runnable, len(set(files) - {job.path for job in runnable.values()})


def _run_mutants(mutants: list[Mutant], plan: dict[str, list[str]], cases: dict[str, Job],
                 parallel: int, stop: StopSignals) -> tuple[dict[str, dict[str, str]], dict[str, float]]:
    """Raw verdicts per mutant and case, and the case seconds each mutant took."""
    jobs = [replace(cases[case], case_id=m.name + _SEP + case,
                    prepare=functools.partial(install, m))
            for m in mutants for case in plan[m.name]]
    verdicts: dict[str, dict[str, str]] = {}
    seconds: dict[str, float] = {}
    for result in run_jobs(jobs, parallel, stop=stop):
        name, _, case = result.case_id.partition(_SEP)
        verdicts.setdefault(name, {})[case] = _verdict(result)
        seconds[name] = seconds.get(name, 0.0) + result.duration
    return verdicts, seconds


def _verdict(result: Result) -> str:
    failure = result.failure.message if result.failure else ""
    broken = result.raw_verdict == ERROR and _PROGRAMMING_ERRORS.match(failure)
    if broken:
        print(f"mutant {result.case_id.partition(_SEP)[0]} is broken: {failure}", file=sys.stderr)
    return BROKEN if broken else result.raw_verdict


def _report(outcomes: list[Outcome], verdicts: dict[str, dict[str, str]],
            baseline: dict[str, str], verbose: bool) -> None:
    for o in outcomes:
        m = o.mutant
        if o.killed and not verbose:
            continue
        if o.killed:
            print(f"killed   {m.name} by {', '.join(o.killed_by)} ({o.seconds:.2f} s)")
            continue
        print(f"SURVIVED {m.name} [{', '.join(m.requirements)}] ({o.seconds:.2f} s)\n"
              f"    {m.description}")
        if not o.cases:
            print("    no case that runs on the stack cites these requirements")
        for case in o.cases:
            print(f"    {case}: {baseline.get(case)} unmutated, {verdicts.get(m.name, {}).get(case)} mutated")
        noticed = [c for c, v in verdicts.get(m.name, {}).items() if c not in o.cases
                   and baseline.get(c) in PASSING and v not in (*PASSING, BROKEN)]
        if noticed:
            print(f"    failed without being tied to it: {', '.join(sorted(noticed))}")
