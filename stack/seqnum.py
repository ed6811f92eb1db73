"""Sequence-number arithmetic modulo 2**32 (RFC 9293 section 3.4).

Theory of operation: sequence numbers are plain ints in [0, 2**32). Every comparison goes
through `diff`, the signed distance from one number to another, so that the space wraps
correctly: "a < b" means b lies less than 2**31 octets after a. Nothing in the stack compares
sequence numbers with `<` directly.
"""

from __future__ import annotations

MOD = 1 << 32
MASK = MOD - 1
HALF = 1 << 31


def add(seq: int, n: int) -> int:
    """`seq + n` wrapped into the 32-bit space."""
    return (seq + n) & MASK


def diff(a: int, b: int) -> int:
    """Signed distance a - b in (-2**31, 2**31] (RFC 9293 3.4: comparisons are modulo 2**32)."""
    d = (a - b) & MASK
    return d - MOD if d > HALF else d


def lt(a: int, b: int) -> bool:
    return diff(a, b) < 0


def le(a: int, b: int) -> bool:
    return diff(a, b) <= 0


def gt(a: int, b: int) -> bool:
    return diff(a, b) > 0


def ge(a: int, b: int) -> bool:
    return diff(a, b) >= 0


def within(x: int, left: int, size: int) -> bool:
    """left =< x < left + size, in sequence space."""
    return 0 <= diff(x, left) < size
