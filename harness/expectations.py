"""Expected outcomes per target: where an implementation deviates from a case on purpose.

A case states what the RFC requires. An `expectations/<target>.yaml` file maps a case id to
`outcome` (fail or skip), the `reason`, and optionally `superseded_by` (the RFC or catalogue
id the target follows instead). A failure listed there is an expected failure; a pass of a
listed case is reported as an unexpected pass, never hidden.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from harness.errors import CaseError, Loc
from harness.result import FAIL, PASS, XFAIL, XPASS, Result

OUTCOMES = ("fail", "skip")
VARIANT_MARK = "@"      # between a case id and the IP version of one of its runs


@dataclass(frozen=True)
class Expectation:
    outcome: str
    reason: str
    superseded_by: str = ""


@lru_cache(maxsize=None)
def load_file(path: str) -> dict[str, Expectation]:
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise CaseError(Loc(path, mark.line + 1 if mark else 1), f"YAML syntax: {exc}") from None
    if not isinstance(data, dict):
        raise CaseError(Loc(path, 1), "an expectations file maps case ids to {outcome, reason}")
    table = {}
    for case_id, entry in data.items():
        if not isinstance(entry, dict) or entry.get("outcome") not in OUTCOMES or not entry.get("reason"):
            raise CaseError(Loc(path, 1), f"{case_id}: needs outcome ({' or '.join(OUTCOMES)}) "
                            "and a reason")
        unknown = set(entry) - {"outcome", "reason", "superseded_by"}
        if unknown:
            raise CaseError(Loc(path, 1), f"{case_id}: unknown key(s) {sorted(unknown)} "
                            "(expected outcome, reason, superseded_by)")
        table[case_id] = Expectation(entry["outcome"], entry["reason"].strip(),
                                     str(entry.get("superseded_by", "")))
    return table


def lookup(case_path: str, case_id: str, target: str) -> Expectation | None:
    """The entry for a case in the nearest `expectations/<target>.yaml` above it that names it.

    Each RFC's directory may keep its own file (cases/rfc1122/expectations/kernel.yaml) beside
    the shared one (cases/expectations/kernel.yaml). A case run in several IP versions has
    ids `<id>@<version>`: an entry for that id applies to the one run, an entry for the bare
    id to all of them."""
    names = (case_id, case_id.split(VARIANT_MARK)[0]) if VARIANT_MARK in case_id else (case_id,)
    for name in names:
        for parent in Path(case_path).resolve().parents:
            candidate = parent / "expectations" / f"{target}.yaml"
            if candidate.is_file():
                entry = load_file(str(candidate)).get(name)
                if entry is not None:
                    return entry
    return None


def apply(result: Result, expectations_of: str = "") -> Result:
    """Turn a raw verdict into the reported one, given the target's expectations (or those of
    `expectations_of`: the kernel's for the kernel through the target protocol)."""
    expectation = lookup(result.path, result.case_id, expectations_of or result.target)
    if expectation is None:
        return result
    result.expectation = expectation.reason
    if expectation.outcome == "fail":
        if result.raw_verdict == FAIL:
            result.verdict = XFAIL
        elif result.raw_verdict == PASS:
            result.verdict = XPASS
    return result


def is_skipped(case_path: str, case_id: str, target: str) -> Expectation | None:
    expectation = lookup(case_path, case_id, target)
    return expectation if expectation and expectation.outcome == "skip" else None

