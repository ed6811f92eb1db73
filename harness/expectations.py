"""Expected outcomes per target: where an implementation deviates from a case on purpose.

A case states what the RFC requires. An `expectations/<target>.yaml` file maps a case id to
`outcome` (fail, skip, or pass for a kernel series), the `reason`, and optionally
`superseded_by` (the RFC or catalogue id the target follows instead). A failure listed there is an expected failure; a pass of a
listed case is reported as an unexpected pass, never hidden.

An entry with `follows: RFC NNNN` (and a reason, no outcome) says the target fails the case
because it does what that later RFC requires instead: its failure is reported as
follows-later-rfc, counted apart from deviations; a pass is still an unexpected pass.

`outcome: pass` belongs in a kernel series' file (`expectations/kernel@6.1.yaml`, read before
`kernel.yaml`): the general entry for that case does not hold for that series.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from harness import limits
from harness.errors import CaseError, Loc
from harness.result import FAIL, FOLLOWS, PASSING, XFAIL, XPASS, Result
from harness.source import load_yaml, read_text

OUTCOMES = ("fail", "skip", "pass")
VARIANT_MARK = "@"      # between a case id and the IP version of one of its runs


@dataclass(frozen=True)
class Expectation:
    outcome: str
    reason: str
    superseded_by: str = ""
    follows: str = ""       # the later RFC whose requirement the target meets instead


@lru_cache(maxsize=None)
def load_file(path: str) -> dict[str, Expectation]:
    """An expectations file's entries; any problem is a CaseError at its place."""
    root, data = load_yaml(read_text(path), path)
    if data is None:
        return {}
    if not isinstance(data, dict) or not isinstance(root, yaml.MappingNode):
        raise CaseError(Loc(path, 1), "an expectations file maps case ids to {outcome, reason}")
    entries = {key: value for key, value in data.items() if isinstance(key, str)}
    table = {}
    for key_node, _ in root.value:
        where = Loc(path, key_node.start_mark.line + 1, key_node.start_mark.column + 1)
        if not isinstance(key_node, yaml.ScalarNode) or key_node.value not in entries:
            raise CaseError(where, "a case id is a name (write it as text)")
        case_id, entry = key_node.value, entries[key_node.value]
        if isinstance(entry, dict) and entry.get("follows") and "outcome" not in entry:
            entry = {**entry, "outcome": "fail"}
        problem = _entry_error(entry)
        if problem:
            raise CaseError(where, f"{limits.brief(case_id, 80)}: {problem}")
        table[case_id] = Expectation(entry["outcome"], entry["reason"].strip(),
                                     str(entry.get("superseded_by", "")),
                                     str(entry.get("follows", "")))
    return table


def _entry_error(entry: object) -> str | None:
    """Why one entry is not {outcome, reason[, superseded_by]} (None when it is)."""
    if not isinstance(entry, dict) or entry.get("outcome") not in OUTCOMES \
            or not isinstance(entry.get("reason"), str) or not entry["reason"].strip():
        return f"needs outcome ({', '.join(OUTCOMES[:-1])} or {OUTCOMES[-1]}) or follows (a later RFC), and a reason"
    unknown = set(map(str, entry)) - {"outcome", "reason", "superseded_by", "follows"}
    if unknown:
        return f"unknown key(s) {limits.brief(str(sorted(unknown)), 80)} " \
               "(expected outcome, reason, superseded_by, follows)"
    return None


def files_for(case_path: str, target: str) -> list[str]:
    """The expectations files a case on `target` is looked up in, nearest first; for a
    kernel series (`kernel@6.1`, harness.kernels.spec) its own files, then the kernel's."""
    names = [target, target.split("@")[0]] if "@" in target else [target]
    return [str(candidate) for name in names for parent in Path(case_path).resolve().parents
            if (candidate := parent / "expectations" / f"{name}.yaml").exists()]


def lookup(case_path: str, case_id: str, target: str) -> Expectation | None:
    """The entry for a case in the nearest `expectations/<target>.yaml` above it that names it.

    Each RFC's directory may keep its own file (cases/rfc1122/expectations/kernel.yaml) beside
    the shared one (cases/expectations/kernel.yaml). A case run in several IP versions has
    ids `<id>@<version>`: an entry for that id applies to the one run, an entry for the bare
    id to all of them."""
    names = (case_id, case_id.split(VARIANT_MARK)[0]) if VARIANT_MARK in case_id else (case_id,)
    for name in names:
        for candidate in files_for(case_path, target):
            entry = load_file(candidate).get(name)
            if entry is not None:
                return entry
    return None


def apply(result: Result, expectations_of: str = "") -> Result:
    """Turn a raw verdict into the reported one, given the target's expectations (or those of
    `expectations_of`: the kernel's for the kernel through the target protocol). A case whose
    expectations cannot be read is already an error result (harness.suite.jobs_for) and stays
    one."""
    try:
        expectation = lookup(result.path, result.case_id, expectations_of or result.target)
    except CaseError:
        return result
    if expectation is None or expectation.outcome == "pass":
        return result
    result.expectation = expectation.reason
    if expectation.outcome == "fail":
        if result.raw_verdict == FAIL:
            result.verdict = FOLLOWS if expectation.follows else XFAIL
            result.follows = expectation.follows or result.follows
        elif result.raw_verdict in PASSING:
            result.verdict = XPASS
    return result


def is_skipped(case_path: str, case_id: str, target: str) -> Expectation | None:
    expectation = lookup(case_path, case_id, target)
    return expectation if expectation and expectation.outcome == "skip" else None

