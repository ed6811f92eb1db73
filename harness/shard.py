"""`rfcdrill run --shard K/N`: the part of a suite one of N machines (or CI jobs) runs.

The split is by case id, so every run of one case (its targets, its IP versions when they
share the id) lands in the same shard, and depends only on the set of case ids and their
timelines, never on the order the paths were given or the machine: every machine given the
same case files computes the same N parts. The parts are balanced by each case's timeline
(execute.nominal_duration: a case that waits out a 100 s timer weighs 100 s), largest first,
each to the lightest part so far (ties: the lower part, then the case id), so N jobs end at
about the same time instead of one drawing all the slow cases.
"""

from __future__ import annotations

import argparse
import re

from harness.execute import Job, nominal_duration

MAX_SHARDS = 1000
_SPEC = re.compile(r"^(\d+)/(\d+)$")


def parse(text: str) -> tuple[int, int]:
    """`K/N` with 1 <= K <= N <= MAX_SHARDS (argparse type: a bad value is one clear line)."""
    found = _SPEC.match(text.strip())
    if not found:
        raise argparse.ArgumentTypeError(f"{text!r} is not K/N (this job's part K of N, e.g. 2/4)")
    k, n = int(found.group(1)), int(found.group(2))
    if not 1 <= n <= MAX_SHARDS:
        raise argparse.ArgumentTypeError(f"{text!r}: N must be 1 to {MAX_SHARDS}, not {n}")
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"{text!r}: K must be 1 to N ({n}), not {k}")
    return k, n


def weights(jobs: list[Job]) -> dict[str, float]:
    """Each case id's weight: the longest timeline among its jobs (0 for a case that does not
    load: it costs no time)."""
    out: dict[str, float] = {}
    for job in jobs:
        length = nominal_duration(job.script) if job.script is not None else 0.0
        out[job.case_id] = max(out.get(job.case_id, 0.0), length)
    return out


def assign(jobs: list[Job], parts: int) -> dict[str, int]:
    """Each case id's part, 1..parts."""
    loads = [0.0] * parts
    where: dict[str, int] = {}
    for case_id, weight in sorted(weights(jobs).items(), key=lambda item: (-item[1], item[0])):
        lightest = min(range(parts), key=lambda i: (loads[i], i))
        loads[lightest] += weight
        where[case_id] = lightest + 1
    return where


def select(jobs: list[Job], k: int, n: int) -> list[Job]:
    """The jobs of part `k` of `n`, in their given order."""
    where = assign(jobs, n)
    return [job for job in jobs if where[job.case_id] == k]
