"""Every mutant, by name, and the checks that keep the list sound: unique names, requirement
ids that exist in the catalogue, patch targets that exist in the stack."""

from __future__ import annotations

from harness.catalog import catalogue
from harness.mutate import acks, arrival, closing, congestion, timers, wire
from harness.mutate.patching import Mutant, original

MUTANTS: dict[str, Mutant] = {}
for _module in (arrival, closing, timers, congestion, acks, wire):
    for _mutant in _module.MUTANTS:
        if _mutant.name in MUTANTS:
            raise ValueError(f"two mutants are named {_mutant.name!r}")
        MUTANTS[_mutant.name] = _mutant


def problems() -> list[str]:
    """What is wrong with the registry against the requirement catalogue."""
    known = catalogue()
    found = []
    for m in MUTANTS.values():
        if not m.requirements or not m.description or not m.patches:
            found.append(f"{m.name}: needs requirement ids, a description and a patch")
        for rid in m.requirements:
            entry = known.get(rid)
            if entry is None:
                found.append(f"{m.name}: {rid} is not in the catalogue")
            elif entry.level == "MAY":
                found.append(f"{m.name}: {rid} is a MAY; breaking it breaks nothing")
        for patch in m.patches:
            try:
                original(patch.owner, patch.attr)
            except AttributeError as exc:
                found.append(f"{m.name}: {exc}")
    return found
