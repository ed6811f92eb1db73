"""The requirement catalogue: what RFC 793, 1122, 2873, 5681 and 9293 require of a TCP peer.

`requirements.yaml` is the project's own copy (corrections are made there); each entry has an
id, rfc, section, level (MUST, MUST NOT, SHOULD, SHOULD NOT, MAY), summary and wire_testable.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Requirement:
    id: str
    rfc: str
    section: str
    level: str
    summary: str
    wire_testable: bool
    title: str = ""


@lru_cache(maxsize=1)
def catalogue() -> dict[str, Requirement]:
    text = resources.files("harness.catalog").joinpath("requirements.yaml").read_text()
    data = yaml.load(text, Loader=_Loader)
    return {entry["id"]: Requirement(entry["id"], str(entry["rfc"]), str(entry.get("section", "")),
                                     entry["level"], entry.get("summary", ""),
                                     bool(entry.get("wire_testable")),
                                     entry.get("section_title", ""))
            for entry in data["requirements"]}


def requirement_ids() -> frozenset[str]:
    return frozenset(catalogue())


def level_marker(level: str) -> str:
    """A pytest marker name for a level: MUST NOT -> must_not."""
    return level.lower().replace(" ", "_")
