"""The line grammar of packetdrill scripts, parsed into the Script model's events.

Theory of operation: one hand-written recursive-descent parser reads script text directly
(no separate tokenizer, because packetdrill's grammar is context-sensitive: `S.` is a flag
word after `<` but `.` is a number elsewhere). It is the only parser of the grammar; YAML
`script:` blocks, YAML `steps:` strings and `.pkt` files all come through `parse_script`.

Every error is a `CaseError` at `file:line:column` that says what was expected there.
Events may span lines (a long syscall, a `%{ }%` block); `//`, `/* */` and `#` are comments.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Callable

from harness import limits
from harness.constants import KNOWN_SYSCALLS, is_known_name
from harness.errors import CaseError, Loc
from harness.model import (ACKED, ANY, AssertEvent, Branch, EitherEvent, Event, Expr, FlightEvent,
                           PacketEvent, PythonEvent, ShellEvent, SyscallEvent, TimeSpec)
from harness.tcp import ACCECN_ORDERS, FIN, RST, SYN, flags_value
from harness.values import ValueSet

_NUMBER = re.compile(r"(0x[0-9a-fA-F]+|\d+\.(?!\.)\d*|\.\d+|\d+)")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FLAGS = re.compile(r"[SFRPUEWA.0-7\-]+")
_ASSERT_OPS = ("==", "!=", "<=", ">=", "<", ">")
BRANCH_KINDS = ("follows", "choice")    # `or follows "RFC 5961 3.2" {`, `or choice "..." {`
ICMP_TYPES = {"unreachable": 3, "source_quench": 4, "time_exceeded": 11,
              "parameter_problem": 12, "echo_request": 8, "echo_reply": 0}
ICMP_UNREACH_CODES = {"net_unreachable": 0, "host_unreachable": 1, "protocol_unreachable": 2,
                      "port_unreachable": 3, "frag_needed": 4, "source_route_failed": 5,
                      "net_unknown": 6, "host_unknown": 7, "net_prohibited": 9,
                      "host_prohibited": 10, "tos_net_unreachable": 11,
                      "tos_host_unreachable": 12, "prohibited": 13}
_ADDRESS = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![\d:])|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*")
_HEXBLOB = re.compile(r"0x(?:[0-9a-fA-F]{2})+\b")
_PORTS = re.compile(r"(\d+)>(\d+)")
# Beyond packetdrill: src/dst addresses, the IP id, and deliberately wrong checksums.
IP_FIELDS = ("tos", "ttl", "id", "flowlabel", "ect0", "ect1", "ect01", "ce", "noecn", "src", "dst",
             "ipopt", "bad_csum", "bad_ip_csum")
IP_ECN = {"noecn": 0, "ect1": 1, "ect0": 2, "ce": 3, "ect01": -1}   # ect01: ECT(0) or ECT(1)


class Parser:
    """A cursor over script text that knows where each character came from in its file."""

    def __init__(self, text: str, file: str, line: int = 1, col: int = 1,
                 defines: dict[str, str] | None = None) -> None:
        self.text = text
        self.file = file
        self.line0 = line
        self.col0 = col
        self.pos = 0
        self.last_end = 0     # just past the last token consumed: where an event ends
        self.init: ShellEvent | None = None
        self.cleanup: ShellEvent | None = None
        self.defines = defines or {}
        self.depth = 0        # brackets open around the cursor (limits.MAX_NESTING)
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    # -- positions and errors ------------------------------------------------------------
    def loc(self, pos: int | None = None) -> Loc:
        pos = self.pos if pos is None else pos
        lo, hi = 0, len(self._line_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._line_starts[mid] <= pos:
                lo = mid
            else:
                hi = mid - 1
        col = pos - self._line_starts[lo] + 1
        return Loc(self.file, self.line0 + lo, col + (self.col0 - 1))

    def fail(self, expected: str, pos: int | None = None) -> CaseError:
        pos = self.pos if pos is None else pos
        found = self.text[pos:pos + 20].split("\n")[0]
        seen = f"found {found!r}" if found else "found the end of the line"
        return CaseError(self.loc(pos), f"expected {expected}, {seen}")

    # -- low-level scanning --------------------------------------------------------------
    def skip(self, newlines: bool = True) -> None:
        """Skip blanks and comments (and newlines unless told not to)."""
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            rest = self.text[self.pos:self.pos + 2]
            if ch in " \t\r" or (newlines and ch == "\n"):
                self.pos += 1
            elif rest == "//" or ch == "#":
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            elif rest == "/*":
                end = self.text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.fail("'*/' to close the comment")
                self.pos = end + 2
            else:
                return

    def peek(self, token: str) -> bool:
        self.skip()
        return self.text.startswith(token, self.pos)

    def accept(self, token: str) -> bool:
        if self.peek(token):
            self.pos += len(token)
            self.last_end = self.pos
            return True
        return False

    def expect(self, token: str, what: str | None = None) -> None:
        if not self.accept(token):
            raise self.fail(what or repr(token))

    def match(self, pattern: re.Pattern[str]) -> str | None:
        self.skip()
        m = pattern.match(self.text, self.pos)
        if not m:
            return None
        self.pos = self.last_end = m.end()
        return m.group(0)

    def word(self, what: str = "a name") -> str:
        start = self.pos
        value = self.match(_WORD)
        if value is None:
            raise self.fail(what, start if self.text[start:start + 1].strip() else self.pos)
        return value

    def peek_word(self) -> str | None:
        self.skip()
        m = _WORD.match(self.text, self.pos)
        return m.group(0) if m else None

    def integer(self, what: str = "an integer", field: str | None = None) -> int:
        """An integer; with `field`, one that fits that wire field (limits.FIELD_BITS)."""
        self.skip()
        start = self.pos
        neg = self.accept("-")
        value = self.match(_NUMBER)
        if value is None:
            word = self.peek_word()
            if word not in self.defines:
                raise self.fail(what)
            try:
                number = limits.parse_integer(self.defines[word])
            except ValueError:
                raise self.fail(f"{what} ({word} is defined as "
                                f"{limits.brief(self.defines[word], 40)!r})") from None
            self.pos = self.last_end = self.pos + len(word)
        elif "." in value:
            raise self.fail(what + " (not a fraction)", self.pos - len(value))
        else:
            try:
                number = limits.parse_integer(value)
            except ValueError as exc:
                raise CaseError(self.loc(start), str(exc)) from None
        number = -number if neg else number
        problem = limits.field_error(field, number) if field else limits.call_value_error(number)
        if problem:
            raise CaseError(self.loc(start), problem)
        return number

    def number(self, what: str = "a number") -> float:
        """A time in seconds (limits.time_error says which are usable)."""
        self.skip()
        start = self.pos
        value = self.match(_NUMBER)
        if value is None:
            raise self.fail(what)
        if len(value) > limits.MAX_NUMBER_CHARS:
            raise CaseError(self.loc(start), f"a number of {len(value)} characters "
                            f"(at most {limits.MAX_NUMBER_CHARS})")
        seconds = float(int(value, 16)) if value.startswith("0x") else float(value)
        problem = limits.time_error(seconds)
        if problem:
            raise CaseError(self.loc(start), problem)
        return seconds

    def int_or_any(self, what: str, field: str | None = None) -> object:
        return ANY if self.accept("*") else self.integer(what, field)

    def value(self, what: str, sets: bool, wildcard: bool = True, field: str | None = None) -> object:
        """A field's value: a number, `*` (when `wildcard`), or on an expected field (`sets`)
        a set of them: `1000..65535`, `>=1000`, `<=5`, `1000|1001` or a mix. With `field`,
        every number fits that wire field (limits.FIELD_BITS)."""
        self.skip()
        start = self.pos
        if wildcard and self.accept("*"):
            return ANY
        parts: list[tuple[int | None, int | None]] = []
        while True:
            if self.accept(">="):
                parts.append((self.integer(what, field), None))
            elif self.accept("<="):
                parts.append((None, self.integer(what, field)))
            else:
                low = self.integer(what, field)
                high = low
                if self.text.startswith("..", self.pos) and not self.text.startswith("...", self.pos):
                    self.pos = self.last_end = self.pos + 2
                    high = self.integer(f"the end of the range {low}..", field)
                    if high < low:
                        raise CaseError(self.loc(start), f"range {low}..{high} ends before it starts")
                parts.append((low, high))
            self.skip(newlines=False)
            if not self.text.startswith("|", self.pos) or self.text.startswith("||", self.pos):
                break
            self.pos += 1
        if len(parts) == 1 and parts[0][0] is not None and parts[0][0] == parts[0][1]:
            return parts[0][0]
        if not sets:
            raise CaseError(self.loc(start), f"a range or set ({self.text[start:self.last_end]}) "
                            "is only allowed on an expected ('>') segment")
        return ValueSet(tuple(parts))

    # -- events --------------------------------------------------------------------------
    def events(self) -> list[Event]:
        """The timeline; an untimed backquoted command first is the init command, one last
        the cleanup command (packetdrill: `script: options init_command events cleanup`)."""
        out: list[Event] = []
        self.skip()
        while self.pos < len(self.text):
            if self.text.startswith("`", self.pos):
                command = self.untimed_command()
                if not out and self.init is None:
                    self.init = command
                else:
                    self.cleanup = command
                    self.skip()
                    if self.pos < len(self.text):
                        raise self.fail("the end of the script after the cleanup command "
                                        "(an untimed `command` may only come first or last)")
            else:
                out.append(self.either() if self.peek_word() == "either" else self.event())
            self.skip()
        return out

    def block(self) -> list[Event]:
        """The events of one `either` branch, up to its closing `}`."""
        out: list[Event] = []
        while not self.accept("}"):
            if self.pos >= len(self.text):
                raise self.fail("'}' to close the branch")
            out.append(self.either() if self.peek_word() == "either" else self.event())
        return out

    def either(self) -> EitherEvent:
        """`either "RFC 793 3.9" { ... } or follows "RFC 5961 3.2" { ... }`: alternatives
        the RFCs allow, each naming its text; `follows` marks what a later RFC requires,
        `choice` one option of a MAY."""
        start = self.pos
        self.word()
        event = EitherEvent(TimeSpec("rel"), self.loc(start), "")
        while True:
            self.skip()
            pos = self.pos
            kind = self.peek_word() if self.peek_word() in BRANCH_KINDS else ""
            if kind:
                self.word()
            if not self.accept('"'):
                raise self.fail('the RFC text that allows this branch, in quotes (e.g. "RFC 793 3.9")')
            close = self.text.find('"', self.pos)
            if close < 0 or "\n" in self.text[self.pos:close]:
                raise self.fail("a closing '\"' on the same line")
            label = self.text[self.pos:close].strip()
            if not label:
                raise self.fail("the RFC text that allows this branch, not an empty string")
            self.pos = self.last_end = close + 1
            self.expect("{", "'{' to open the branch")
            event.branches.append(Branch(label, kind, self.block(), self.loc(pos)))
            if self.peek_word() != "or":
                break
            self.word()
        if len(event.branches) < 2:
            raise CaseError(event.loc, "'either' needs at least two branches ('} or \"...\" {')")
        return checked_either(event)

    def untimed_command(self) -> ShellEvent:
        start = self.pos
        end = self.text.find("`", start + 1)
        if end < 0:
            raise self.fail("a closing backquote for the shell command")
        self.pos = self.last_end = end + 1
        return ShellEvent(TimeSpec("abs"), self.loc(start), self.text[start:self.pos],
                          command=self.text[start + 1:end])

    def event(self) -> Event:
        start = self.pos
        time = self.time()
        end_time = None
        if self.accept("..."):
            end_time = self.time(allow_any=False)
        self.skip()
        action_pos = self.pos
        if self.accept("<") or self.accept(">"):
            direction = self.text[self.pos - 1]
            optional = direction == ">" and self.text.startswith("?", self.pos)
            if optional:
                self.pos = self.last_end = self.pos + 1
            if direction == ">" and self.peek_word() == "flight":
                if optional:
                    raise self.fail("'>' before 'flight' (a flight cannot be optional)", action_pos)
                event = self.flight(time, start)
            else:
                event = self.packet(time, start, direction)
                event.optional = optional
        elif self.accept("%{"):
            end = self.text.find("}%", self.pos)
            if end < 0:
                raise self.fail("'}%' to close the Python block", action_pos)
            code = self.text[self.pos:end]
            self.pos = self.last_end = end + 2
            event = PythonEvent(time, self.loc(start), "", code=code)
        elif self.accept("`"):
            end = self.text.find("`", self.pos)
            if end < 0:
                raise self.fail("a closing backquote for the shell command", action_pos)
            command = self.text[self.pos:end]
            self.pos = self.last_end = end + 1
            event = ShellEvent(time, self.loc(start), "", command=command)
        elif self.peek_word() == "assert":
            self.word()
            event = self.assertion(time, start)
        elif self.peek_word():
            event = self.syscall(time, start, end_time)
        else:
            raise self.fail("an action: '<', '>', a system call, 'assert', '%{' or '`'")
        if end_time is not None and not isinstance(event, SyscallEvent):
            raise CaseError(event.loc, "'...' (a blocking call) is only allowed before a system call")
        expected = isinstance(event, FlightEvent) or (isinstance(event, PacketEvent)
                                                      and event.direction == ">")
        if time.kind in ("any", "ratio") and not expected:
            raise CaseError(event.loc, f"time '{time}' is only allowed on expected ('>') segments")
        if time.kind == "range" and not (expected or isinstance(event, AssertEvent)):
            raise CaseError(event.loc, f"time '{time}' is only allowed on expected ('>') "
                            "segments and asserts")
        self.pos = self.last_end
        event.text = " ".join(self.text[start:self.pos].split())
        self.skip(newlines=False)
        if self.pos < len(self.text) and self.text[self.pos] not in "\n;}":
            raise self.fail("the end of the event")
        self.accept(";")
        return event

    def time(self, allow_any: bool = True) -> TimeSpec:
        self.skip()
        if allow_any and self.accept("*"):
            return TimeSpec("any")
        if allow_any and self.text.startswith("x", self.pos):
            return self.ratio()
        relative = self.accept("+")
        start = self.number("a time (e.g. 0, +0.1, * or 0.1~0.2)")
        if not self.text.startswith("~", self.pos):
            return TimeSpec("rel" if relative else "abs", start)
        self.pos += 1
        end_relative = self.accept("+")
        if end_relative != relative:
            raise self.fail("both ends of a time range written the same way (a~b or +a~+b)")
        end = self.number("the end of the time range")
        if end < start:
            raise CaseError(self.loc(), f"time range {start:g}~{end:g} ends before it starts")
        return TimeSpec("range", start, end, end_relative=relative)

    def ratio(self) -> TimeSpec:
        """`x2` or `x1.5~x3`: the gap since the previous event, as a multiple of the gap
        before it (a retransmission timer that doubles, RFC 6298 5.5)."""
        self.pos += 1
        low = self.number("a multiple after 'x' (e.g. x2 or x1.5~x3)")
        high = low
        if self.text.startswith("~", self.pos):
            self.pos += 1
            if not self.accept("x"):
                raise self.fail("'x' and the upper multiple (e.g. x1.5~x3)")
            high = self.number("the upper multiple")
            if high < low:
                raise CaseError(self.loc(), f"ratio range x{low:g}~x{high:g} ends before it starts")
        if low <= 0:
            raise CaseError(self.loc(), "a multiple of the previous interval must be above 0")
        return TimeSpec("ratio", low, high)

    # -- packets (`<` injected, `>` expected) ---------------------------------------------
    def packet(self, time: TimeSpec, start: int, direction: str) -> PacketEvent:
        event = PacketEvent(time, self.loc(start), "", direction=direction)
        event.ip = self.ip_info(expected=direction == ">")
        if self.peek_word() == "icmp":
            self.icmp(event)
            self._check_payload(event, start)
            return event
        self.skip()
        ports_pos = self.pos
        ports = self.match(_PORTS)          # packetdrill's opt_port_info: `40001>8080`
        if ports is not None:
            src, dst = (self._port(p, ports_pos + offset) for p, offset
                        in zip(ports.split(">"), (0, ports.index(">") + 1)))
            event.ports = (src, dst)
        flags_pos = self.pos
        flags = self.match(_FLAGS)
        if flags is None:
            raise self.fail("TCP flags (S, ., F, R, P, U, E, W, A, an ACE digit 0-7, or - for none)")
        try:
            event.flags = flags_value(flags)
        except ValueError as exc:
            raise CaseError(self.loc(flags_pos), str(exc)) from None
        while self.text.startswith("|", self.pos) and not self.text.startswith("||", self.pos):
            event.flag_alternatives += (self.flag_alternative(event, flags, direction),)
        self.seq_range(event, sets=direction == ">", acked=direction == "<")
        if event.flags & 0x02 and not isinstance(event.seq, int):
            raise CaseError(event.loc, "the seq of a SYN is the ISN the other numbers count "
                            "from: write it as one number")
        self.packet_fields(event)
        if self.accept("<"):
            if self.peek("{"):
                event.options, event.may_lack = self.option_set(direction)
                event.any_layout = True
            else:
                event.options = self.tcp_options(direction)
        self._check_payload(event, start)
        return event

    def flag_alternative(self, event: PacketEvent, first: str, direction: str) -> int:
        """`R|R.`: after a `|`, other flags the expected segment may carry instead, where the
        RFC leaves a bit open (the ACK bit on a reset answering a segment with ACK: RFC 9293
        3.5.2 gives <SEQ=SEG.ACK><CTL=RST> and forbids neither). SYN, FIN and RST must agree:
        with those the segment would mean something else, which is an `either`."""
        bar = self.pos
        if direction != ">":
            raise CaseError(self.loc(bar), "flag alternatives ('R|R.') are only for expected "
                            "('>') segments: an injected segment is sent as written")
        self.pos = self.last_end = bar + 1
        pos = self.pos
        text = _FLAGS.match(self.text, pos)
        if text is None:
            raise self.fail("TCP flags after '|' (e.g. R|R.)", pos)
        self.pos = self.last_end = text.end()
        try:
            value = flags_value(text.group(0))
        except ValueError as exc:
            raise CaseError(self.loc(pos), str(exc)) from None
        differ = (value ^ event.flags) & (SYN | FIN | RST)
        if differ:
            names = "/".join(n for bit, n in ((SYN, "SYN"), (FIN, "FIN"), (RST, "RST")) if differ & bit)
            raise CaseError(self.loc(pos), f"flag alternatives {first}|{text.group(0)} differ in "
                            f"{names}: that is another segment, for an 'either' block")
        return value

    def _port(self, text: str, pos: int) -> int:
        try:
            port = limits.parse_integer(text)
        except ValueError as exc:
            raise CaseError(self.loc(pos), str(exc)) from None
        problem = limits.field_error("port", port)
        if problem:
            raise CaseError(self.loc(pos), problem)
        return port

    def _check_payload(self, event: PacketEvent, start: int) -> None:
        """An injected segment is one IP packet: its data and options fit its 16-bit length."""
        if event.direction != "<":
            return
        room = limits.MAX_INJECTED_PAYLOAD - sum(map(limits.option_size, event.options or []))
        if event.length > room:
            raise CaseError(self.loc(start), f"an injected segment of {event.length} data octets "
                            f"does not fit one IP packet (at most {room} with these options)")

    def flight(self, time: TimeSpec, start: int) -> FlightEvent:
        """`flight START:END [segments N] [mss N] [ack N] [win N]`: new data from START to
        END (which may be a set or `*`) in any split; each value may be a set."""
        self.word()
        event = FlightEvent(time, self.loc(start), "")
        event.start = self.integer("the first sequence number of the flight (START:END)", "seq")
        self.expect(":", "':' in START:END")
        event.end = self.value("the end of the flight (a number, a range or *)", sets=True, field="seq")
        while (word := self.peek_word()) in ("segments", "mss", "ack", "win"):
            self.word()
            if getattr(event, word) is not None:
                raise self.fail(f"'{word}' only once")
            if word == "mss":
                event.mss = self.integer("the largest payload a segment of the flight may carry", "mss")
            else:
                setattr(event, word, self.value(f"a value after '{word}'", sets=True, wildcard=False,
                                                field=None if word == "segments" else word))
        return event

    def seq_range(self, event: PacketEvent, sets: bool = False, acked: bool = False) -> None:
        self.skip()
        pos = self.pos
        if self.peek_word() == "acked":
            if not acked:
                raise CaseError(self.loc(pos), "'acked' (where the target's last ACK points) is only "
                                "for the seq of an injected ('<') TCP segment")
            self.acked_range(event, pos)
            return
        event.seq = self.value("a sequence range start:end(length)", sets, wildcard=sets, field="seq")
        self.expect(":", "':' in start:end(length)")
        event.end = self.value("the end of start:end(length)", sets, wildcard=sets, field="seq")
        self.expect("(", "'(' and the length in start:end(length)")
        event.length = self.value("the payload length", sets, wildcard=sets, field="length")
        self.expect(")")
        if not all(isinstance(v, int) for v in (event.seq, event.end, event.length)):
            return      # a set: the matcher checks that some start + length = end
        if (event.end - event.seq) & 0xFFFFFFFF != event.length:
            raise CaseError(self.loc(pos), f"sequence numbers do not add up: {event.seq}:{event.end}"
                            f"({event.length}) has end - start = {event.end - event.seq}, "
                            f"expected {event.length}")

    def acked_range(self, event: PacketEvent, pos: int) -> None:
        """`acked:acked+N(N)` (or `acked:acked(0)`): an injected segment at the sequence number
        the target's latest segment acknowledged, its RCV.NXT as it said, for a segment that
        must be at RCV.NXT where the case cannot know it (a reset into a zero window whose size
        is the target's, RFC 9293 3.4)."""
        self.word()
        self.expect(":", "':' in acked:acked+N(N)")
        end_pos = self.pos
        if self.peek_word() != "acked":
            raise self.fail("'acked' as the end too (acked:acked+N(N))", end_pos)
        self.word()
        extra = self.integer("the length after 'acked+'", "length") if self.accept("+") else 0
        self.expect("(", "'(' and the length in acked:acked+N(N)")
        length = self.integer("the payload length", "length")
        self.expect(")")
        if length != extra:
            raise CaseError(self.loc(pos), f"sequence numbers do not add up: acked:acked+{extra}"
                            f"({length}) has end - start = {extra}, expected {length}")
        event.seq, event.end, event.length = ACKED, ACKED, length

    def packet_fields(self, event: PacketEvent) -> None:
        while True:
            word = self.peek_word()
            if word not in ("ack", "win", "urg"):
                return
            self.word()
            if getattr(event, word) is not None:
                raise self.fail(f"'{word}' only once")
            value = self.value(f"a value after '{word}'", sets=event.direction == ">", field=word)
            setattr(event, word, None if value is ANY else value)

    def ip_info(self, expected: bool = False) -> dict[str, object]:
        info: dict[str, object] = {}
        for open_, close in (("[", "]"), ("(", ")")):
            if not self.accept(open_):
                continue
            while not self.accept(close):
                pos = self.pos
                name = self.word(f"an IP field ({', '.join(IP_FIELDS)}) or '{close}'")
                if name in IP_ECN:
                    info["ecn"] = IP_ECN[name]
                elif name == "ttl":
                    info[name] = self.value("a value after 'ttl'", sets=expected, field="ttl")
                elif name in ("tos", "id", "flowlabel"):
                    info[name] = self.int_or_any(f"a value after '{name}'", name)
                elif name in ("src", "dst"):
                    info[name] = self.address(name)
                elif name in ("bad_csum", "bad_ip_csum"):
                    info[name] = True
                elif name == "ipopt":           # raw IPv4 options, padded to 4 bytes
                    self.skip()
                    blob_pos = self.pos
                    blob = self.match(_HEXBLOB)
                    if blob is None:
                        raise self.fail("IP option bytes after 'ipopt', e.g. 0x01010100")
                    data = bytes.fromhex(blob[2:])
                    if len(data) > limits.IP_OPTION_SPACE:
                        raise CaseError(self.loc(blob_pos), f"{len(data)} octets of IP options; "
                                        f"an IPv4 header holds at most {limits.IP_OPTION_SPACE}")
                    info[name] = data + b"\0" * (-len(data) % 4)
                else:
                    raise CaseError(self.loc(pos), f"unknown IP field {name!r} "
                                    f"(expected {', '.join(IP_FIELDS)})")
                self.accept(",")
        return info

    def address(self, name: str) -> str:
        """An IPv4 or IPv6 address, in the form the wire decoder prints it."""
        pos = self.pos
        text = self.match(_ADDRESS)
        try:
            return str(ipaddress.ip_address(text or ""))
        except ValueError:
            raise CaseError(self.loc(pos), f"an IPv4 or IPv6 address after '{name}'") from None

    def icmp(self, event: PacketEvent) -> PacketEvent:
        self.word()
        pos = self.pos
        kind = self.word("an ICMP type (" + ", ".join(ICMP_TYPES) + ")")
        if kind not in ICMP_TYPES:
            raise CaseError(self.loc(pos), f"unknown ICMP type {kind!r} (expected one of "
                            + ", ".join(ICMP_TYPES) + ")")
        code = 0
        word = self.peek_word()
        if kind == "unreachable" and word:
            pos = self.pos
            self.word()
            word = self.defines.get(word, word)          # -D CODE=host_unreachable
            if word not in ICMP_UNREACH_CODES:
                raise CaseError(self.loc(pos), f"unknown unreachable code {word!r}")
            code = ICMP_UNREACH_CODES[word]
        event.icmp = {"type": ICMP_TYPES[kind], "code": code}
        if self.peek_word() == "mtu":
            self.word()
            event.icmp["mtu"] = self.integer("the MTU", "mtu")
        if self.accept("["):
            event.flags = 0
            self.seq_range(event)
            self.expect("]")
        return event

    def tcp_options(self, direction: str) -> list | None:
        start = self.pos - 1
        if self.accept("..."):
            self.expect(">", "'>' after '<...'")
            return None
        options: list = []
        while True:
            pos = self.pos
            name = self.word("a TCP option (mss, wscale, sackOK, sack, TS, nop, eol)")
            if self.text.startswith("?", self.pos):
                raise CaseError(self.loc(pos), f"'{name}?' (an option that may be absent) is "
                                "only for '<{...}>' (options in any layout), e.g. <{mss? <=1460}>")
            options.append(self.option_body(name, pos, direction))
            if self.accept(">"):
                problem = limits.options_error(options)
                if problem:
                    raise CaseError(self.loc(start), problem)
                return options
            self.expect(",", "',' or '>' in the TCP options")

    def option_set(self, direction: str) -> tuple[list, frozenset[int]]:
        """`<{mss 1460,TS val 100 ecr 0}>`: the options an expected segment carries, in any
        order and with any NOP or EOL padding (RFC 9293 3.1 and RFC 7323 Appendix A leave the
        layout to the sender); none may be missing and no other option may be there. `NAME?`
        marks one that may be absent (`<{mss? <=1460}>`: RFC 9293 3.7.1 lets a SYN go without
        MSS when the MSS is 536, MAY-3/SHLD-5); the indices of those come back with the list."""
        start = self.pos
        if direction != ">":
            raise CaseError(self.loc(start), "'<{...}>' (options in any layout) is only for "
                            "expected ('>') segments: an injected segment is sent as written")
        self.expect("{")
        options: list = []
        may_lack: set[int] = set()
        while True:
            self.skip()
            pos = self.pos
            name = self.word("a TCP option (mss, wscale, sackOK, sack, TS, nop, eol)")
            if name in ("nop", "eol"):
                raise CaseError(self.loc(pos), f"'{name}' is layout, which '<{{...}}>' leaves "
                                "to the sender: name only the options that must be there")
            if self.text.startswith("?", self.pos):
                self.pos = self.last_end = self.pos + 1
                may_lack.add(len(options))
            options.append(self.option_body(name, pos, direction))
            if self.accept("}"):
                self.expect(">", "'>' after '}' in the TCP options")
                problem = limits.options_error(options)
                if problem:
                    raise CaseError(self.loc(start), problem)
                return options, frozenset(may_lack)
            self.expect(",", "',' or '}' in the TCP options")

    def option_body(self, name: str, pos: int, direction: str) -> tuple:
        """The option `name` (read at `pos`) and its values. On an expected segment an MSS or
        window scale value may be a set (`mss <=1460`, `wscale 0..14`): RFC 9293 3.7.1 bounds
        the MSS a receiver announces without fixing it."""
        if name in ("nop", "eol", "sackOK"):
            return (name,)
        if name in ("mss", "wscale"):
            return (name, self.value(f"the {name} value", sets=direction == ">", field=name))
        if name == "sack":
            blocks = []
            while not (self.peek(",") or self.peek(">") or self.peek("}")):
                left = self.integer("a SACK block start:end", "sack")
                self.expect(":", "':' in a SACK block")
                blocks.append((left, self.integer("a SACK block end", "sack")))
            return ("sack", blocks)
        if name == "TS":
            if self.word("'val'") != "val":
                raise self.fail("'val' after 'TS'", self.pos - 3)
            val = self.int_or_any("the TS value", "TS val")
            if self.word("'ecr'") != "ecr":
                raise self.fail("'ecr' after the TS value", self.pos - 3)
            return ("TS", val, self.int_or_any("the TS echo reply", "TS ecr"))
        if name in ("FO", "FOEXP"):         # TCP Fast Open (RFC 7413 4.1.1), as packetdrill
            cookie = self.fast_open_cookie()
            return ("raw", 34, cookie) if name == "FO" else ("raw", 254, b"\xf9\x89" + cookie)
        if name == "md5":                   # TCP MD5 signature (RFC 2385): 16 bytes in hex
            pos = self.pos
            digest = self.match(re.compile(r"[0-9A-Fa-f]{32}\b"))
            if digest is None:
                raise self.fail("a 16-byte MD5 digest in hex (32 digits) after 'md5'", pos)
            return ("raw", 19, bytes.fromhex(digest))
        if name == "ECN":                   # Accurate ECN (RFC 9768 3.2.3), as packetdrill
            return self.accecn_option()
        if name == "opt":                   # any option: `opt 253 0x0102`, `opt 2 len 9`
            kind = self.integer("an option kind", "option kind")
            length = None
            if self.peek_word() == "len":
                self.word()
                length = self.integer("an option length", "option length")
            data = b""
            hexdata = self.match(_HEXBLOB)
            if hexdata is not None:
                data = bytes.fromhex(hexdata[2:])
            if length is None:
                return ("raw", kind, data)
            return ("bytes", bytes((kind, length)) + data)
        raise CaseError(self.loc(pos), f"unknown TCP option {name!r} "
                        "(expected mss, wscale, sackOK, sack, TS, nop, eol, FO, FOEXP, md5, ECN or opt KIND [len N] [0xDATA])")

    def accecn_option(self) -> tuple:
        """`ECN e0b N [ceb N [e1b N]]` or `ECN e1b N [ceb N [e0b N]]`: the AccECN option's
        24-bit byte counters. The first field chooses the kind and the order (172: ECT(0),
        CE, ECT(1); 174: ECT(1), CE, ECT(0)); fields come in that order, leading ones only."""
        self.skip()
        pos = self.pos
        first = self.word("e0b or e1b after ECN")
        if first not in ACCECN_ORDERS:
            raise self.fail("e0b or e1b after ECN (the first counter sets the option's order)", pos)
        kind, order = ACCECN_ORDERS[first]
        values = [self.integer(f"the {first} counter", "AccECN counter")]
        for field in order[1:]:
            if self.peek_word() != field:
                break
            self.word()
            values.append(self.integer(f"the {field} counter", "AccECN counter"))
        return ("raw", kind, b"".join(v.to_bytes(3, "big") for v in values))

    def fast_open_cookie(self) -> bytes:
        """An optional cookie after FO: hex digits, as such or a -D name (TFO_COOKIE)."""
        if self.peek(",") or self.peek(">") or self.peek("}"):
            return b""
        pos = self.pos
        word = self.match(re.compile(r"[A-Za-z0-9_]+"))
        text = self.defines.get(word or "", word or "")
        try:
            return bytes.fromhex(text.removeprefix("0x"))
        except ValueError:
            raise CaseError(self.loc(pos), f"a Fast Open cookie in hex after FO, got {text!r}") from None

    # -- system calls --------------------------------------------------------------------
    def syscall(self, time: TimeSpec, start: int, end_time: TimeSpec | None) -> SyscallEvent:
        pos = self.pos
        name = self.word()
        if name not in KNOWN_SYSCALLS:
            raise CaseError(self.loc(pos), f"not supported: {name} (supported: "
                            + ", ".join(sorted(KNOWN_SYSCALLS)) + ")")
        self.expect("(", f"'(' after {name}")
        args = self.arguments(")", {3: self.option_value} if name == "getsockopt" else {})
        self.expect("=", "'=' and the expected return value")
        ret = self.return_value()
        errno_name = None
        word = self.peek_word()
        if word and word.startswith("E"):
            names = []
            while True:
                errno_pos = self.pos
                name_ = self.word("an errno name after '|'")
                if not is_known_name(name_) or not name_.startswith("E"):
                    raise CaseError(self.loc(errno_pos), f"unknown errno {name_!r}")
                names.append(name_)
                if not self.accept("|"):
                    break
            errno_name = "|".join(names)
        if self.accept("("):           # strace-style note: (Operation now in progress)
            close = self.text.find(")", self.pos)
            if close < 0:
                raise self.fail("')' to close the note")
            self.pos = self.last_end = close + 1
        return SyscallEvent(time, self.loc(start), "", name=name, args=args, ret=ret,
                            errno=errno_name, end_time=end_time)

    def return_value(self) -> Expr:
        """The expected return value: an expression, or a range (`0..100`, `>=1`)."""
        return self.expected_value("a return value")

    def expected_value(self, what: str) -> Expr:
        """A value the target gives back: an expression, or a range (`0..100`, `>=1`)."""
        self.skip()
        loc = self.loc()
        if self.peek(">=") or self.peek("<="):
            return Expr("set", self.value(what, sets=True, wildcard=False), loc)
        ret = self.expr()
        if ret.kind == "int" and self.text.startswith("..", self.pos) \
                and not self.text.startswith("...", self.pos):
            self.pos = self.last_end = self.pos + 2
            high = self.integer(f"the end of the range {ret.value}..")
            if high < ret.value:
                raise CaseError(loc, f"range {ret.value}..{high} ends before it starts")
            return Expr("set", ValueSet(((ret.value, high),)), loc)
        return ret

    def option_value(self) -> Expr:
        """getsockopt's value argument: `[N]`, or a range the option may read (`[>=7200]`,
        `[1..255]`), for values the RFCs bound without fixing (RFC 1122 4.2.3.6's keep-alive
        interval of at least two hours; SO_ERROR: some error, `[>=1]`)."""
        self.skip()
        save, loc = self.pos, self.loc()
        if not self.accept("["):
            return self.expr()
        self.nest()
        self.skip()
        if self.peek(">=") or self.peek("<=") or self._range_ahead():
            value = self.expected_value("an option value")
            self.expect("]", "']' after the range")
            self.depth -= 1
            return Expr("array", [value], loc)
        self.depth -= 1
        self.pos = self.last_end = save
        return self.expr()

    def _range_ahead(self) -> bool:
        """An integer followed by `..` (not `...`) starts at the cursor."""
        digits = re.match(r"[0-9]+\.\.(?!\.)", self.text[self.pos:self.pos + 80])
        return digits is not None

    def arguments(self, close: str, special: dict[int, Callable[[], Expr]] | None = None) -> list[Expr]:
        """Comma-separated expressions up to `close`; `special` parses the argument at an
        index its own way (getsockopt's value may be a range)."""
        self.nest()
        args: list[Expr] = []
        if self.accept(close):
            self.depth -= 1
            return args
        while True:
            args.append((special or {}).get(len(args), self.expr)())
            if self.accept(close):
                self.depth -= 1
                return args
            self.expect(",", f"',' or '{close}'")

    def nest(self) -> None:
        """One more bracket level open; past limits.MAX_NESTING it is an error."""
        self.depth += 1
        if self.depth > limits.MAX_NESTING:
            raise CaseError(self.loc(self.pos - 1), f"brackets nested more than "
                            f"{limits.MAX_NESTING} deep")

    def expr(self) -> Expr:
        first = self.term()
        if not self.peek("|") or self.peek("||"):
            return first
        parts = [first]
        while self.accept("|"):
            parts.append(self.term())
        return Expr("or", parts, first.loc)

    def term(self) -> Expr:
        self.skip()
        loc = self.loc()
        if self.accept("..."):
            return Expr("ellipsis", loc=loc)
        if self.accept("*"):
            return Expr("any", loc=loc)
        if self.accept("["):
            return Expr("array", self.arguments("]"), loc)
        if self.accept("{"):
            return Expr("struct", self.fields(), loc)
        if self.accept('"'):
            end = self.text.find('"', self.pos)
            if end < 0:
                raise self.fail("a closing '\"'")
            try:
                value = limits.unescape(self.text[self.pos:end])
            except ValueError as exc:
                message, offset = exc.args
                raise CaseError(self.loc(self.pos + offset), message) from None
            self.pos = self.last_end = end + 1
            self.accept("...")          # "abc"... : the data continues (packetdrill)
            return Expr("string", value, loc)
        word = self.peek_word()
        if word is None:
            return Expr("int", self.integer("a value: a number, a name, '...', [..] or {..}"), loc)
        self.word()
        if word in self.defines:                 # -D NAME=value
            value = self.defines[word]
            try:
                number = limits.parse_integer(value)
            except ValueError:
                # a define naming a constant stands for it (-D CMSG_LEVEL_IP=SOL_IP)
                if is_known_name(value):
                    return Expr("name", value, loc)
                return Expr("string", limits.byte_text(value), loc)
            problem = limits.call_value_error(number)
            if problem:
                raise CaseError(loc, f"{word} (defined as {value}): {problem}")
            return Expr("int", number, loc)
        if self.accept("("):
            return Expr("call", (word, self.arguments(")")), loc)
        if not is_known_name(word):
            raise CaseError(loc, f"unknown name {word!r} (expected a constant such as "
                            "SOL_SOCKET, SO_REUSEADDR, TCP_NODELAY, O_NONBLOCK, POLLIN)")
        return Expr("name", word, loc)

    def fields(self) -> list[tuple[str | None, Expr]]:
        self.nest()
        out: list[tuple[str | None, Expr]] = []
        if self.accept("}"):
            self.depth -= 1
            return out
        while True:
            save = self.pos
            key = self.peek_word()
            if key is not None:
                self.word()
                if self.peek("(") and key.startswith("msg_"):   # msg_iov(1)=[...]
                    self.expect("(")
                    self.arguments(")")
                if self.accept("=") and not self.peek("="):
                    out.append((key, self.expr()))
                else:
                    self.pos = save
                    out.append((None, self.expr()))
            else:
                out.append((None, self.expr()))
            if self.accept("}"):
                self.depth -= 1
                return out
            self.expect(",", "',' or '}'")

    # -- assertions ------------------------------------------------------------------------
    def assertion(self, time: TimeSpec, start: int) -> AssertEvent:
        fd = self.integer("a file descriptor after 'assert'")
        event = AssertEvent(time, self.loc(start), "", fd=fd)
        if self.peek_word() == "state":
            self.word()
            event.checks.append(("state", "==", self.word("a TCP state name (e.g. ESTABLISHED)")))
            return event
        while True:
            pos = self.pos
            name = self.word("'state' or a tcpi_* field")
            if not name.startswith("tcpi_"):
                raise CaseError(self.loc(pos), f"expected 'state' or a tcpi_* field, found {name!r}")
            self.skip()
            op = next((o for o in _ASSERT_OPS if self.text.startswith(o, self.pos)), None)
            if op is None:
                raise self.fail("a comparison (==, !=, <, <=, >, >=)")
            self.pos = self.last_end = self.pos + len(op)
            word = self.peek_word()
            value: object = self.word() if word else self.integer("a number to compare with")
            event.checks.append((name, op, value))
            if not self.accept(","):
                return event


def checked_either(event: EitherEvent) -> EitherEvent:
    """An `either` the runner can decide (at most one branch not starting with an expected
    segment), with its text for the report."""
    defaults = [b for b in event.branches if b.guard is None]
    if len(defaults) > 1:
        raise CaseError(defaults[1].loc, "only one branch of an 'either' may start with "
                        "something other than an expected segment ('>' line): the runner "
                        "tells the branches apart by the first segment the target sends")
    event.text = "either " + " | ".join(
        f"{b.kind + ' ' if b.kind else ''}\"{b.label}\"" for b in event.branches)
    return event


@dataclass
class Program:
    """A whole script: its timeline and the untimed init and cleanup commands, if any."""

    events: list[Event]
    init: ShellEvent | None = None
    cleanup: ShellEvent | None = None


def parse_program(text: str, file: str, line: int = 1, col: int = 1,
                  defines: dict[str, str] | None = None) -> Program:
    """Parse script text; `line`/`col` say where the text starts in its file."""
    parser = Parser(text, file, line, col, defines)
    events = parser.events()
    return Program(events, parser.init, parser.cleanup)


def parse_script(text: str, file: str, line: int = 1, col: int = 1,
                 defines: dict[str, str] | None = None) -> list[Event]:
    """Parse timeline text (a step, a generated script): events only."""
    program = parse_program(text, file, line, col, defines)
    stray = program.init or program.cleanup
    if stray is not None:
        raise CaseError(stray.loc, "an untimed `command` belongs at the start or the end of a "
                        "whole script; here it needs a time (e.g. +0 `command`)")
    return program.events
