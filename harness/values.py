"""Sets of allowed values on an expected field: what the RFC leaves open, written down.

An expected segment's seq, end, length, ack, win, urg and ttl, and a call's return value, may
be a set instead of one number: `1000..65535` (a closed range), `>=1000`, `<=5`, `1000|1001`
(alternatives), or a mix (`0|1000..2000`). A field written as one number stays an int; only
a real set becomes a `ValueSet`, so every exact comparison elsewhere is untouched.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ValueSet:
    """The union of closed ranges; None for an open end (`>=N` has no upper bound)."""

    parts: tuple[tuple[int | None, int | None], ...]

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int):
            return False
        return any((low is None or value >= low) and (high is None or value <= high)
                   for low, high in self.parts)

    def __str__(self) -> str:
        return "|".join(_part_text(low, high) for low, high in self.parts)


def _part_text(low: int | None, high: int | None) -> str:
    if low is None:
        return f"<={high}"
    if high is None:
        return f">={low}"
    return str(low) if low == high else f"{low}..{high}"


def matches(expected: object, actual: int) -> bool:
    """Whether `actual` is the one value or in the set written for a field."""
    if isinstance(expected, ValueSet):
        return actual in expected
    return expected == actual
