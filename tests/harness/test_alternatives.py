"""What the RFCs leave open, in the case format: each construct parses (and its mistakes are
errors at file:line:column), and on the stack target (virtual time) a behaviour inside the
allowed set passes and one outside it fails."""

from __future__ import annotations

import pytest

from harness.convert import yaml_to_pkt
from harness.errors import CaseError
from harness.execute import run_one
from harness.grammar import parse_script
from harness.loader import load
from harness.model import EitherEvent, FlightEvent, PacketEvent
from harness.result import CHOICE, FAIL, FOLLOWS, PASS, Result
from harness.values import ValueSet

from tests.conftest import HANDSHAKE, case_yaml


def run(write_case, script: str, target: str = "stack", extra: str = "") -> Result:
    return run_one(load(write_case("case.yaml", case_yaml("case", script, extra=extra))), target)


def error(text: str) -> str:
    with pytest.raises(CaseError) as caught:
        parse_script(text, "x.yaml", 10, 3)
    return str(caught.value)


# -- the grammar ---------------------------------------------------------------------------

def test_sets_ranges_and_bounds_on_expected_fields() -> None:
    event, = parse_script("+0 > [ttl 1..255] . 1000|1001:1000|1002(0..1) ack >=1 win 0|1000..65535",
                          "x.yaml")
    assert event.seq == ValueSet(((1000, 1000), (1001, 1001)))
    assert 1 in event.length and 2 not in event.length
    assert 70000 in event.ack and 0 not in event.ack
    assert 0 in event.win and 500 not in event.win and 65535 in event.win
    assert 64 in event.ip["ttl"]
    assert str(event.win) == "0|1000..65535"


def test_sets_are_errors_where_they_mean_nothing() -> None:
    assert error("+0 < . 1:1(0) ack 1 win 1..2") == (
        "x.yaml:10:27: a range or set (1..2) is only allowed on an expected ('>') segment")
    assert error("+0 > S 0|1:1(0)") == ("x.yaml:10:3: the seq of a SYN is the ISN the other "
                                        "numbers count from: write it as one number")
    assert error("+0 > . 1:1(0) win 9..3") == "x.yaml:10:21: range 9..3 ends before it starts"


def test_optional_segments_flights_and_ratio_times() -> None:
    maybe, flight, again = parse_script(
        "+0 >? . 2:2(0) ack 2\n+0 > flight 1:* segments 1..3 mss 1460 ack 1\nx2~x2.5 > . 1:2(1)",
        "x.yaml")
    assert isinstance(maybe, PacketEvent) and maybe.optional
    assert isinstance(flight, FlightEvent) and flight.mss == 1460 and 3 in flight.segments
    assert (again.time.kind, again.time.start, again.time.end) == ("ratio", 2.0, 2.5)
    assert error("+0 >? flight 1:2") == ("x.yaml:10:6: expected '>' before 'flight' (a flight "
                                         "cannot be optional), found '>? flight 1:2'")
    assert error("x2 write(4, ..., 1) = 1") == (
        "x.yaml:10:3: time 'x2' is only allowed on expected ('>') segments")
    assert error("x0 > . 1:1(0)") == "x.yaml:10:5: a multiple of the previous interval must be above 0"


def test_errno_sets_return_ranges_and_time_windows_on_calls_and_asserts() -> None:
    call, ranged, blocking, held = parse_script(
        "+0 connect(3, ..., ...) = -1 ECONNREFUSED|ECONNRESET\n+0 write(4, ..., 9) = 1..9\n"
        "+0...1.0~1.5 read(4, ..., 9) = 9\n1~2 assert 4 state CLOSE", "x.yaml")
    assert call.errno == "ECONNREFUSED|ECONNRESET"
    assert ranged.ret.kind == "set" and 9 in ranged.ret.value
    assert (blocking.end_time.start, blocking.end_time.end) == (1.0, 1.5)
    assert held.time.kind == "range"
    assert error("+0 read(4, ..., 9) = -1 EAGAIN|") == (
        "x.yaml:10:34: expected an errno name after '|', found the end of the line")
    assert error("+0 read(4, ..., 9) = -1 EAGAIN|ENOPE") == "x.yaml:10:34: unknown errno 'ENOPE'"
    assert error("1~2 write(4, ..., 1) = 1") == (
        "x.yaml:10:3: time '1~2' is only allowed on expected ('>') segments and asserts")


EITHER = """\
+0 read(4, ..., 1) = -1 EAGAIN
either "RFC 793 3.9" {
  +0 > R 1:1(0)
} or follows "RFC 5961 4.2" {
  +0 > . 1:1(0) ack 1
} or choice "no answer" {
  +0 assert 4 state ESTABLISHED
}
"""


def test_either_blocks_name_each_branch_and_its_kind() -> None:
    _, block = parse_script(EITHER, "x.yaml")
    assert isinstance(block, EitherEvent)
    assert [(b.label, b.kind) for b in block.branches] == [
        ("RFC 793 3.9", ""), ("RFC 5961 4.2", "follows"), ("no answer", "choice")]
    assert [len(b.events) for b in block.branches] == [1, 1, 1]


def test_either_mistakes_are_errors_where_they_are() -> None:
    assert error('either "a" {\n+0 > R 1:1(0)\n}') == (
        "x.yaml:10:3: 'either' needs at least two branches ('} or \"...\" {')")
    assert error('either "a" {\n+0 read(4, ..., 1) = 1\n} or "b" {\n+0 read(4, ..., 1) = 1\n}') == (
        "x.yaml:12:8: only one branch of an 'either' may start with something other than an "
        "expected segment ('>' line): the runner tells the branches apart by the first segment "
        "the target sends")
    assert error('either RFC {') == ('x.yaml:10:10: expected the RFC text that allows this '
                                     'branch, in quotes (e.g. "RFC 793 3.9"), found \'RFC {\'')
    assert error('either "a" {\n+0 > R 1:1(0)\n') == (
        "x.yaml:12:3: expected '}' to close the branch, found the end of the line")


def test_steps_say_the_same_as_the_script(write_case) -> None:
    steps = """\
id: steps
requirements: [rfc793:transition:LISTEN:syn]
steps:
  - at: "+0"
    maybe: {flags: ".", seq: 2, ack: 2}
  - at: "+0"
    flight: {start: 1, end: "*", segments: "1..3", mss: 1460}
  - at: "+0"
    expect: {flags: ".", seq: "1000|1001", end: "1000|1002", len: "0..1", win: ">=1000"}
  - either:
      - allowed_by: RFC 793 3.9
        steps: ["+0 > R 1:1(0)"]
      - follows: RFC 5961 4.2
        steps: [{at: "+0", expect: {flags: ".", seq: 1, ack: 1}}]
"""
    maybe, flight, probe, block = load(write_case("s.yaml", steps)).events
    assert maybe.optional and maybe.text == "+0 >? . 2:2(0) ack 2"
    assert flight.text == "+0 > flight 1:* segments 1..3 mss 1460"
    assert 1002 in probe.end and 999 not in probe.win
    assert [(b.label, b.kind) for b in block.branches] == [("RFC 793 3.9", ""),
                                                          ("RFC 5961 4.2", "follows")]
    bad = write_case("bad2.yaml", steps.replace('len: "0..1", ', ""))
    with pytest.raises(CaseError) as caught:
        load(bad)
    assert str(caught.value) == (f"{bad}:8:5: a segment with a range or set in seq, end or len "
                                 "writes all three (e.g. seq: '1000|1001', end: '1000|1002', "
                                 "len: '0..1')")


def test_a_branch_with_a_misspelt_key_is_a_schema_error(write_case) -> None:
    text = ('id: s\nrequirements: [rfc793:transition:LISTEN:syn]\nsteps:\n  - either:\n'
            '      - allowd_by: x\n        steps: ["+0 > R 1:1(0)"]\n'
            '      - follows: y\n        steps: ["+0 > . 1:1(0)"]\n')
    path = write_case("typo.yaml", text)
    with pytest.raises(CaseError) as caught:
        load(path)
    assert str(caught.value).startswith(f"{path}:5:") and "allowd_by" in str(caught.value)


# only options: `rfcdrill convert --loose` can write them unchecked
LOOSE_HINT = " (--loose writes its options as <...>, unchecked)"


@pytest.mark.parametrize("line, what, hint", [
    ("+0 >? . 1:1(0) ack 1", "'>?' (a segment the target may or may not send)", ""),
    ("+0 > . 1:1(0) ack 1 <{TS val * ecr 1}>", "'<{...}>' (options in any layout)", LOOSE_HINT),
    ("+0 < R. acked:acked(0) ack 1 win 0", "'acked' (the seq where the target's last ACK points)",
     ""),
    ("+0 > R|R. 1:1(0)", "flag alternatives ('R|R.')", ""),
])
def test_convert_refuses_a_pkt_for_what_packetdrill_cannot_say(write_case, line: str,
                                                               what: str, hint: str) -> None:
    path = write_case("c.yaml", case_yaml("c", HANDSHAKE + line + "\n"))
    with pytest.raises(CaseError) as caught:
        yaml_to_pkt(str(path))
    assert str(caught.value) == (f"{path}:16:3: {what} has no packetdrill syntax: this case "
                                 "stays an rfcdrill YAML case and cannot be written as a .pkt" + hint)


# -- against the stack, both sides of each ----------------------------------------------------

DATA = HANDSHAKE + "+.01 < P. 1:11(10) ack 1 win 65535\n"


@pytest.mark.parametrize("line, verdict", [
    ("+0~+.5 >? . 1:1(0) ack 11", PASS),                              # sent, and taken
    ("+0 >? . 1:1(0) ack 99\n+0~+.5 > . 1:1(0) ack 11", PASS),       # not this: the next line's
    ("+0 >? . 1:1(0) ack 99", FAIL),                                  # nobody's: unexpected
])
def test_an_optional_segment_may_come_or_not(write_case, line: str, verdict: str) -> None:
    result = run(write_case, DATA + line + "\n+.6 read(4, ..., 10) = 10\n")
    assert result.verdict == verdict, result.failure


@pytest.mark.parametrize("fields, verdict", [
    ("ack 1 win 1000..65535", PASS), ("ack 0|1 win >=1000", PASS),
    ("ack 1 win 1..1000", FAIL), ("ack 2..5", FAIL)])
def test_a_set_on_a_field_passes_inside_and_fails_outside(write_case, fields: str,
                                                           verdict: str) -> None:
    script = HANDSHAKE.replace("> S. 0:0(0) ack 1 <mss 1460>", f"> S. 0:0(0) {fields} <mss 1460>")
    result = run(write_case, script)
    assert result.verdict == verdict, result.failure
    if verdict == FAIL:
        assert result.failure.diff[0]["expected"] in fields


RST = HANDSHAKE + """\
+.1 < R. {seq}:{seq}(0) ack 1 win 0
either "RFC 793 3.9" {{
  +.05 assert 4 state CLOSE
  +0   read(4, ..., 100) = -1 ECONNRESET
}} or follows "RFC 5961 3.2" {{
  +0   > . 1:1(0) ack {ack}
  +0   assert 4 state ESTABLISHED
  +.01 < R. 1:1(0) ack 1 win 0
  +0   read(4, ..., 100) = -1 ECONNRESET|ECONNREFUSED
}}
"""


@pytest.mark.parametrize("target", ["stack", "kernel"])
def test_either_takes_the_branch_the_target_takes_and_records_it(write_case, target: str) -> None:
    challenged = run(write_case, RST.format(seq=1001, ack=1), target)
    assert challenged.verdict == FOLLOWS, challenged.failure
    assert [(b.label, b.kind, b.index) for b in challenged.branches] == [
        ("RFC 5961 3.2", "follows", 2)]
    assert challenged.follows == "RFC 5961 3.2"
    aborted = run(write_case, RST.format(seq=1, ack=1), target)     # at RCV.NXT: both abort
    assert aborted.verdict == PASS, aborted.failure
    assert [(b.label, b.index) for b in aborted.branches] == [("RFC 793 3.9", 1)]


def test_a_segment_no_branch_expects_fails_with_each_branch_difference(write_case) -> None:
    result = run(write_case, RST.format(seq=1001, ack=7))
    assert result.verdict == FAIL
    assert result.failure.message == "the target's segment matches no branch"
    assert result.failure.diff == [{"field": 'branch 2 "RFC 5961 3.2"',
                                    "expected": "+0 > . 1:1(0) ack 7",
                                    "actual": "ack: expected 7, got 1"}]


def test_a_choice_branch_is_never_a_failure_and_says_which(write_case) -> None:
    script = DATA + ('either choice "acknowledged at once" {\n  +0 > . 1:1(0) ack 11\n'
                     '} or choice "acknowledged later (RFC 1122 4.2.3.2)" {\n'
                     '  +.5 read(4, ..., 10) = 10\n}\n')
    result = run(write_case, script)
    assert result.verdict == CHOICE, result.failure
    assert result.branches[0].kind == "choice"


WRITE = HANDSHAKE + "+0 write(4, ..., 6000) = 6000\n"


@pytest.mark.parametrize("flight, verdict", [
    ("1:* segments 1..3 mss 1460", PASS), ("1:1461..4381 mss 1460", PASS),
    ("1:* segments 4..10 mss 1460", FAIL), ("1:* mss 1000", FAIL), ("1:2921 segments 1..2", PASS)])
def test_a_flight_checks_bounds_not_a_split(write_case, flight: str, verdict: str) -> None:
    result = run(write_case, WRITE + f"+0 > flight {flight} ack 1\n+.1 < . 1:1(0) ack 1 win 65535\n")
    if "2921" in flight:     # the rest of the initial window is then unexpected
        assert result.verdict == FAIL and "unexpected" in result.failure.message
        return
    assert result.verdict == verdict, result.failure
    if verdict == FAIL:
        assert result.failure.message == "the flight does not match"


BACKOFF = HANDSHAKE + """\
+0 write(4, ..., 10) = 10
+0 > P. 1:11(10) ack 1
+.2~+3 > P. 1:11(10) ack 1
{time} > P. 1:11(10) ack 1
"""


@pytest.mark.parametrize("time, verdict", [("x2", PASS), ("x1.8~x2.2", PASS), ("x3", FAIL),
                                           ("x1", FAIL)])
def test_a_ratio_time_checks_backoff_without_an_rto_floor(write_case, time: str,
                                                          verdict: str) -> None:
    result = run(write_case, BACKOFF.format(time=time))
    assert result.verdict == verdict, result.failure


@pytest.mark.parametrize("call, verdict", [
    ("read(4, ..., 100) = -1 ECONNREFUSED|ECONNRESET", PASS),
    ("read(4, ..., 100) = -1 EAGAIN|ECONNREFUSED", FAIL)])
def test_an_errno_set(write_case, call: str, verdict: str) -> None:
    result = run(write_case, HANDSHAKE + f"+.1 < R. 1:1(0) ack 1 win 0\n+0 {call}\n")
    assert result.verdict == verdict, result.failure
    if verdict == FAIL:
        assert "expected one of EAGAIN|ECONNREFUSED" in result.failure.message


@pytest.mark.parametrize("ret, verdict", [("1..10", PASS), (">=10", PASS), ("11..20", FAIL)])
def test_a_return_value_range(write_case, ret: str, verdict: str) -> None:
    result = run(write_case, DATA + f"+0 read(4, ..., 100) = {ret}\n+0~+.5 > . 1:1(0) ack 11\n")
    assert result.verdict == verdict, result.failure


@pytest.mark.parametrize("window, verdict", [("0.05~0.2", PASS), ("0.15~0.3", FAIL)])
def test_a_blocking_call_returns_inside_its_window(write_case, window: str, verdict: str) -> None:
    script = HANDSHAKE + (f"+0...{window} read(4, ..., 10) = 10\n+.1 < P. 1:11(10) ack 1 win 65535\n"
                          "+0~+.5 > . 1:1(0) ack 11\n")
    result = run(write_case, script)
    assert result.verdict == verdict, result.failure


TIMEOUT = HANDSHAKE + """\
+0 setsockopt(4, IPPROTO_TCP, TCP_USER_TIMEOUT, [500], 4) = 0
+0 write(4, ..., 10) = 10
+0 > P. 1:11(10) ack 1
{window} assert 4 state CLOSE
"""


@pytest.mark.parametrize("window, verdict", [("+.3~+2", PASS), ("+0~+.1", FAIL),
                                             ("+2~+3", FAIL)])
def test_an_assert_comes_true_inside_its_window(write_case, window: str, verdict: str) -> None:
    result = run(write_case, TIMEOUT.format(window=window),
                 extra="options: {fail_on_unexpected: false}\n")
    assert result.verdict == verdict, result.failure


def test_python_blocks_see_every_segment_and_which_were_matched(write_case) -> None:
    script = DATA + ("+.6 %{\nprint([(o.flags, o.matched, o.line) for o in outbound])\n"
                     "assert [o.matched for o in outbound] == [True, False]\n}%\n")
    result = run(write_case, script, extra="options: {fail_on_unexpected: false}\n")
    assert result.verdict == PASS, result.failure
    assert [s.note for s in result.timeline if s.kind == "python"][-1] == (
        "[('S.', True, 14), ('.', False, None)]")



@pytest.mark.parametrize("option, verdict", [(("mss", 1460), PASS), (("mss", 536), FAIL)])
def test_python_blocks_see_each_segments_options(write_case, option: tuple,
                                                 verdict: str) -> None:
    script = HANDSHAKE + ("+.01 %{\nprint(outbound[0].options)\n"
                          f"assert {option!r} in outbound[0].options\n}}%\n")
    result = run(write_case, script)
    assert result.verdict == verdict, result.failure
    assert "(('mss', 1460),)" in (result.failure.actual if result.failure else
                                  [s.note for s in result.timeline if s.kind == "python"][-1])


def test_when_several_branches_match_the_first_written_is_taken(write_case) -> None:
    script = RST.format(seq=1001, ack=1).replace(
        'either "RFC 793 3.9" {\n  +.05 assert 4 state CLOSE\n  +0   read(4, ..., 100) = -1 ECONNRESET\n}',
        'either "any ack" {\n  +0 > . 1:1(0) ack 0..5\n}')
    assert 'either "any ack"' in script
    result = run(write_case, script)
    assert [(b.label, b.index) for b in result.branches] == [("any ack", 1)]
    assert result.verdict == PASS, result.failure
