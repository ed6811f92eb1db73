"""Errors a user can act on: each names the place (`file:line:column`) and what was expected."""

from __future__ import annotations

from dataclasses import dataclass

from harness.limits import brief

MAX_MESSAGE = 1000     # characters of an error message


@dataclass(frozen=True)
class Loc:
    """A position in a case file, 1-based like editors show it."""

    file: str
    line: int
    col: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class CaseError(Exception):
    """A case that cannot be loaded or run as written: a mistake in the case, not the target."""

    def __init__(self, loc: Loc | None, message: str) -> None:
        message = brief(message, MAX_MESSAGE)      # a 1 MiB name in a file stays out of it
        super().__init__(f"{loc}: {message}" if loc else message)
        self.loc = loc
        self.message = message


class NeedsRoot(SystemExit):
    """Raised when the harness lacks CAP_NET_ADMIN/CAP_SYS_ADMIN; the message is one line."""


class Malformed(ValueError):
    """A packet that is not a well-formed TCP segment in IPv4 or IPv6; the message says why."""
