"""From paths on the command line to jobs: find case files, load them, pick targets.

Shared by the CLI and the pytest plugin, so both select and report cases the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from harness import expectations
from harness.errors import CaseError, Loc
from harness.execute import Job
from harness.loader import CASE_SUFFIXES, load
from harness.netns import have_privileges
from harness.result import SKIPPED, Failure, Result
from harness.targets import TARGETS


def case_files(paths: Iterable[str]) -> list[str]:
    """Case files under `paths` (files as given; directories searched, expectations skipped)."""
    found: list[str] = []
    for path in paths:
        p = Path(path)
        if p.is_dir():
            found.extend(str(f) for f in sorted(p.rglob("*"))
                         if f.suffix in CASE_SUFFIXES and "expectations" not in f.parts
                         and f.is_file())
        else:
            found.append(str(p))
    return found


def available_targets() -> list[str]:
    """Targets this process can run. Every case, on any target, runs in private network and
    mount namespaces (its shell commands are sandboxed there), which needs CAP_SYS_ADMIN."""
    return list(TARGETS) if have_privileges() else []


def jobs_for(path: str, targets: list[str], defines: dict[str, str] | None = None) -> list[Job]:
    """One job per target for a case file; a load error becomes an error job per target."""
    try:
        script = load(path, defines)
    except CaseError as exc:
        return [Job(path, target, error=exc, case_id=Path(path).stem) for target in targets]
    wanted = [t for t in targets if script.targets is None or t in script.targets]
    return [Job(path, t, script, case_id=script.id, requirements=script.requirements)
            for t in wanted]


def check_unique(jobs: list[Job]) -> None:
    """A case id used by two files makes the second an error (ids key expectations and reports)."""
    seen: dict[tuple[str, str], str] = {}
    for job in jobs:
        key = (job.case_id, job.target)
        if job.script is not None and key in seen and seen[key] != job.path:
            job.error = CaseError(Loc(job.path, 1), f"case id {job.case_id!r} is also used by {seen[key]}")
            job.script = None
        else:
            seen.setdefault(key, job.path)


def skipped_result(job: Job) -> Result | None:
    """A Result for a job its target's expectations say to skip, else None."""
    expectation = expectations.is_skipped(job.path, job.case_id, job.target)
    if expectation is None:
        return None
    return Result(job.case_id, job.path, job.target, SKIPPED, title=job.script.title if job.script else "",
                  requirements=job.requirements, failure=Failure(expectation.reason),
                  expectation=expectation.reason, raw_verdict=SKIPPED)
