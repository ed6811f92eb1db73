"""The bounds of what a case may say, in one place.

Theory of operation: every value a case file, a `.pkt` script, an expectations file, a
define or a command-line option gives is checked here before the runner sees it. A value
that would not fit its field on the wire is an error, never truncated: a case that writes
`win 70000` means something no segment can carry. Values that are legal on the wire but
unusual (wscale 15, a zero MSS, a TTL of 0) stay allowed, because cases test how targets
treat them. The parsers (harness.grammar, harness.loader, harness.source, harness.options,
the CLI) call these functions and turn their answer into `file:line:column: message`.

cases/CASE_FORMAT.md ("Limits") states the same bounds for people who write cases.
"""

from __future__ import annotations

import argparse
import math
import re
from typing import Callable

MAX_FILE_BYTES = 1 << 20          # a case, script or expectations file
MAX_NESTING = 32                  # brackets around a call's arguments (its own parentheses
                                  # included); collections in a YAML file
MAX_YAML_VALUES = 100_000         # values in a YAML file with every alias expanded
MAX_NUMBER_CHARS = 64             # characters of one number as written
MAX_TIME = 86_400.0               # seconds: any time, the timeline, a case's timeout
MAX_TOLERANCE_PERCENT = 100.0
MAX_TOLERANCE_SCALE = 1000.0      # rfcdrill run --tolerance-scale
MAX_JOBS = 256
MAX_REPEAT = 10_000
MAX_DEFINE_CHARS = 4096           # the value of one -D NAME=VALUE
TCP_OPTION_SPACE = 40             # RFC 9293 3.1: data offset is 4 bits, 15 words, 5 of them fixed
IP_OPTION_SPACE = 40              # RFC 791 3.1: IHL is 4 bits, 15 words, 5 of them fixed
# An injected segment is one IP packet: its total length (IPv4) or payload length (IPv6)
# is 16 bits (RFC 791 3.1, RFC 8200 3), so at most 65535 - 20 (IPv4 header) - 20 (TCP
# header) octets of data, less whatever options it carries.
MAX_INJECTED_PAYLOAD = 65_535 - 20 - 20

# The width in bits of each field a script writes, as the wire carries it.
FIELD_BITS: dict[str, int] = {
    "seq": 32, "ack": 32, "win": 16, "urg": 16,                 # RFC 9293 3.1
    "length": 32,                                               # within the sequence space
    "port": 16,
    "mss": 16, "wscale": 8, "TS val": 32, "TS ecr": 32,         # RFC 9293 3.2, RFC 7323 2-3
    "sack": 32,                                                 # RFC 2018 3
    "AccECN counter": 24,                                       # RFC 9768 3.2.3
    "option kind": 8, "option length": 8,                       # RFC 9293 3.2
    "tos": 8, "ttl": 8, "id": 16,                               # RFC 791 3.1
    "flowlabel": 20,                                            # RFC 8200 3
    "mtu": 16,                                                  # RFC 1191 4 (ICMP next-hop MTU)
}
# A system call's integer arguments and results are C longs (64 bits, either sign).
CALL_MIN, CALL_MAX = -(1 << 63), (1 << 64) - 1

SYSCTL_NAME = re.compile(r"net(\.[A-Za-z0-9_-]+)+")
_INTEGER = re.compile(r"-?(0x[0-9a-fA-F]+|[0-9]+)")
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.|$)", re.S)
_SIMPLE_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "a": "\a", "b": "\b", "f": "\f",
                   "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def parse_integer(text: str) -> int:
    """An integer as packetdrill's lexer reads it: decimal digits (leading zeros ignored,
    as C's atoll does: `ack 02` is 2, `win 065535` is 65535) or 0x and hex digits.
    Raises ValueError with what is wrong."""
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError(f"a number of {len(text)} characters (at most {MAX_NUMBER_CHARS})")
    if not _INTEGER.fullmatch(text):
        raise ValueError(f"{text!r} is not an integer (decimal, or hex after 0x)")
    negative = text.startswith("-")
    digits = text.lstrip("-")
    value = int(digits[2:], 16) if digits.startswith("0x") else int(digits, 10)
    return -value if negative else value


def field_error(field: str, value: int) -> str | None:
    """Why `value` does not fit the wire field `field` (None when it does)."""
    top = (1 << FIELD_BITS[field]) - 1
    if 0 <= value <= top:
        return None
    return f"{field} {value} does not fit its {FIELD_BITS[field]}-bit field (0..{top})"


def call_value_error(value: int) -> str | None:
    if CALL_MIN <= value <= CALL_MAX:
        return None
    return f"{value} does not fit a 64-bit system call argument or result"


def time_error(value: float, what: str = "a time") -> str | None:
    """Why a time in seconds is not usable: not finite, negative or past MAX_TIME."""
    if not math.isfinite(value) or value < 0:
        return f"{what} must be a finite number of seconds, not {value}"
    if value > MAX_TIME:
        return f"{what} of {value:g} s is past the limit of {MAX_TIME:g} s (one day)"
    return None


def tolerance_error(usecs: object, percent: object) -> str | None:
    """Why a timing tolerance (microseconds, percent of the gap) is not usable."""
    for name, value, top in (("usecs", usecs, MAX_TIME * 1e6),
                             ("percent", percent, MAX_TOLERANCE_PERCENT)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"tolerance {name} must be a number, not {value!r}"
        if not math.isfinite(value) or not 0 <= value <= top:
            return f"tolerance {name} must be a finite number in 0..{top:g}, not {value}"
    return None


def scale_error(value: float) -> str | None:
    if not math.isfinite(value) or not 0 < value <= MAX_TOLERANCE_SCALE:
        return f"must be a finite number above 0 and at most {MAX_TOLERANCE_SCALE:g}, not {value}"
    return None


def option_size(option: tuple) -> int:
    """Octets a TCP option takes in the header (RFC 9293 3.2, RFC 7323, RFC 2018)."""
    name = option[0]
    fixed = {"nop": 1, "eol": 1, "sackOK": 2, "mss": 4, "wscale": 3, "TS": 10}
    if name in fixed:
        return fixed[name]
    if name == "sack":
        return 2 + 8 * len(option[1])
    if name == "raw":                   # kind, computed length, data
        return 2 + len(option[2])
    return len(option[1])               # "bytes": kind, length as written, data


def options_error(options: list[tuple]) -> str | None:
    size = sum(option_size(o) for o in options)
    if size <= TCP_OPTION_SPACE:
        return None
    return (f"the TCP options take {size} octets; a TCP header holds at most "
            f"{TCP_OPTION_SPACE} (RFC 9293 3.1: a 4-bit data offset)")


def sysctl_name_error(name: object) -> str | None:
    """A case's sysctls are the network namespace's own: `net.` names in dotted form."""
    if isinstance(name, str) and SYSCTL_NAME.fullmatch(name):
        return None
    return (f"sysctl name {str(name)[:80]!r}: a case sets only its network namespace's "
            "sysctls, named in dotted form under net. (e.g. net.ipv4.tcp_sack)")


def unescape(text: str) -> str:
    """A quoted string of a script as the bytes it stands for, one character per byte (how
    harness.syscalls sends it): the text as UTF-8, with the escapes \\n \\t \\r \\a \\b \\f \\v
    \\\\ \\" \\' and \\xHH or octal \\ooo (one byte each). Raises ValueError(message, offset)
    for an escape that is incomplete, unknown, or names no byte."""
    out: list[str] = []
    last = 0
    for m in _ESCAPE.finditer(text):
        out.append(byte_text(text[last:m.start()], last))
        out.append(chr(_escaped_byte(m.group(1), m.start())))
        last = m.end()
    out.append(byte_text(text[last:], last))
    return "".join(out)


def byte_text(text: str, offset: int = 0) -> str:
    """Text as its UTF-8 bytes, one character per byte. A lone surrogate (which a YAML
    escape can make) is no text: ValueError(message, offset)."""
    try:
        return text.encode("utf-8").decode("latin-1")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{text[exc.start]!r} is not a character (a lone surrogate)",
                         offset + exc.start) from None


def _escaped_byte(body: str, offset: int) -> int:
    if body in _SIMPLE_ESCAPES:
        return ord(_SIMPLE_ESCAPES[body])
    if body[:1] == "x":
        if len(body) == 1:
            raise ValueError("incomplete escape '\\x': it needs 2 hex digits", offset)
        return int(body[1:], 16)
    if body and body[0] in "01234567":
        if int(body, 8) > 0xFF:
            raise ValueError(f"'\\{body}' names no byte (octal escapes go up to \\377)", offset)
        return int(body, 8)
    raise ValueError(f"unknown escape '\\{body}' in a string of bytes (known: \\n \\t \\r \\0 "
                     "\\xHH \\ooo \\\\ \\\"; other characters stand for their UTF-8 bytes)", offset)


def brief(text: str, limit: int = 120) -> str:
    """Text shortened for an error message: a message never carries a huge value."""
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


# -- command-line values (argparse types; pytest's options take them too) -------------------------
def tolerance_scale(text: str) -> float:
    """--tolerance-scale: a finite factor above 0, at most MAX_TOLERANCE_SCALE."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{brief(text, 40)!r} is not a number") from None
    problem = scale_error(value)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return value


def count(top: int) -> Callable[[str], int]:
    """An argparse type: a whole number from 1 to `top` (--jobs, --repeat)."""
    def parse(text: str) -> int:
        try:
            value = parse_integer(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        if not 1 <= value <= top:
            raise argparse.ArgumentTypeError(f"must be from 1 to {top}, not {value}")
        return value
    parse.__name__ = "count"      # argparse names the type in its messages
    return parse


def define_error(item: str) -> str | None:
    """Why a -D NAME=VALUE is not usable (None when it is)."""
    name, sep, value = item.partition("=")
    if not sep or not name.isidentifier():
        return "expected NAME=VALUE, NAME a C identifier"
    if len(value) > MAX_DEFINE_CHARS:
        return f"the value has {len(value)} characters (at most {MAX_DEFINE_CHARS})"
    if "\0" in value:
        return "the value holds a NUL character"
    return None
