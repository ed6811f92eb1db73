"""From paths on the command line to jobs: find case files, load them, pick targets.

Shared by the CLI and the pytest plugin, so both select and report cases the same way.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Iterable

from harness import expectations, limits
from harness.errors import CaseError, Loc
from harness.execute import Job
from harness.expectations import VARIANT_MARK
from harness.loader import CASE_SUFFIXES, load, wire_version_of
from harness.model import Script
from harness.netns import have_privileges
from harness.capabilities import missing
from harness.result import NOT_APPLICABLE, SKIPPED, Failure, Result
from harness.targets import available, resolve


def case_files(paths: Iterable[str]) -> list[str]:
    """Case files under `paths` (files as given; directories searched, expectations skipped)."""
    return list(case_ids(paths))


def case_ids(paths: Iterable[str]) -> dict[str, str | None]:
    """Case files under `paths`, each with the id a `.pkt` found in a directory gets: its
    path below that directory without `.pkt` (`fastopen/server/opt34/simple1`), so two
    scripts of one name in different folders stay two cases, as packetdrill's runners
    report them. None for the rest (a YAML case names its id; a file given by itself is
    known by its stem). An entry with a case's name that is not a regular file (a FIFO, a
    socket) is kept, so that loading it reports it instead of skipping it in silence."""
    found: dict[str, str | None] = {}
    for path in paths:
        p = Path(path)
        if not p.is_dir():
            found[str(p)] = None
            continue
        for f in sorted(p.rglob("*")):
            if f.suffix in CASE_SUFFIXES and "expectations" not in f.parts and not f.is_dir():
                found[str(f)] = str(f.relative_to(p).with_suffix("")) if f.suffix == ".pkt" else None
    return found


def available_targets() -> list[str]:
    """The targets of a run that names none, if this process can run cases. Every case, on any target, runs in private network and
    mount namespaces (its shell commands are sandboxed there), which needs CAP_SYS_ADMIN."""
    return available() if have_privileges() else []


def jobs_for(path: str, targets: list[str], defines: dict[str, str] | None = None,
             versions: Iterable[str] | None = None, case_id: str | None = None) -> list[Job]:
    """One job per target and IP version for a case file (`versions`: only these; `case_id`:
    a `.pkt`'s id when it names none); a load error becomes an error job per target."""
    try:
        script = load(path, defines, case_id=case_id)
    except CaseError as exc:
        return [Job(path, target, error=exc, case_id=case_id or Path(path).stem)
                for target in targets]
    except Exception as exc:          # a bug in rfcdrill: this file fails alone, and says so
        error = CaseError(Loc(path, 1), f"internal error while loading: {type(exc).__name__}: "
                          f"{limits.brief(str(exc))} (a bug in rfcdrill; please report it)")
        return [Job(path, target, error=error, case_id=case_id or Path(path).stem)
                for target in targets]
    # A case limited to `targets: [kernel]` runs on kernel-exec too (it reads the kernel's
    # expectations: it is the kernel, through the target protocol).
    wanted = [t for t in targets if script.targets is None or t in script.targets
              or resolve(t).expectations_name in script.targets]
    jobs = []
    for variant, error in variants(script, versions):
        for target in wanted:
            problem = error or _expectations_error(path, resolve(target).expectations_name)
            jobs.append(Job(path, target, None if problem else variant, error=problem,
                            case_id=variant.id, requirements=script.requirements))
    return jobs


def _expectations_error(path: str, target: str) -> CaseError | None:
    """The error of an expectations file the case's verdict on `target` depends on."""
    try:
        for name in expectations.files_for(path, target):
            expectations.load_file(name)
    except CaseError as exc:
        # Located in the expectations file, not the case: the whole text names the place.
        return CaseError(None, f"{exc} (the expectations for {target} of this case)")
    return None


def variants(script: Script, only: Iterable[str] | None = None) -> list[tuple[Script, CaseError | None]]:
    """The script once per IP version it runs in (`only`: of these), ids marked `@version`
    when there are several or the version is not the case's own; a version whose plan cannot
    work (an IPv4 --local_ip in IPv6) carries an error. A YAML case that names no version,
    no address and uses no field of one IP version is TCP without IP specifics: asked for other versions, it
    runs in those."""
    declared = script.plan.ip_versions
    neutral = (not script.path.endswith(".pkt") and wire_version_of(script.events) is None
               and not {"ip_versions", "local_ip", "remote_ip"} & script.plan.given)
    if only is not None and neutral:
        versions = list(dict.fromkeys(only))
    else:
        versions = [v for v in declared if only is None or v in only]
    out = []
    for version in versions:
        plan = script.plan.variant(version)
        plain = len(declared) == 1 and version == declared[0]
        case_id = script.id if plain else script.id + VARIANT_MARK + version
        problem = plan.check_addresses()
        error = CaseError(Loc(script.path, 1), problem) if problem else None
        out.append((replace(script, id=case_id, plan=plan), error))
    return out


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
    """A Result for a job that is not run, else None: its target is unavailable here (skipped,
    with the reason), the case needs what the target lacks (not-applicable, with what is
    missing: harness.capabilities), or the target's expectations say to skip it."""
    spec = resolve(job.target)
    verdict = SKIPPED
    if spec.unavailable:
        reason = f"the {job.target} target is unavailable: {spec.unavailable}"
    elif job.script is not None and (lacking := missing(job.script, spec.capabilities)):
        verdict, reason = NOT_APPLICABLE, f"needs {'; '.join(lacking)}"
    else:
        expectation = expectations.is_skipped(job.path, job.case_id, spec.expectations_name)
        if expectation is None:
            return None
        reason = expectation.reason
    return Result(job.case_id, job.path, job.target, verdict, title=job.script.title if job.script else "",
                  requirements=job.requirements, failure=Failure(reason),
                  expectation=reason, raw_verdict=verdict)
